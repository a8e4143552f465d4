"""The installed plugin behind the real CLI: ``doctor``, ``apply``, a re-apply and ``status``
on the example program, against the fake site, with the calls each makes asserted exactly.

These are the calls listed under "What apply calls" in the plugin's README. Settings come
from ``ITSM_CHANGE_JIRA_*`` only, as for a user who installed the plugin; the ledger and the
config file live in the test's temporary directory.

The example's ``ticket_note`` communications name their record on each platform; on Jira it
is ``HELP-1``, a JSM request. A program without a Jira record is refused before any call
(exit 2, naming the missing record).
"""

from __future__ import annotations

import os
from collections import Counter
from math import ceil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from jira_fake import SITE, FakeJira

from itsm_change_sdk import load_program
from itsm_change_sdk.cli import cli
from itsm_change_sdk.model import Effect, EffectKind, Program

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "portal-rollout" / "program.yaml"
RECORD = "jira: HELP-1, "
PILOT_SIZE = 20
"""Service Desk Tier 1's size: three modules for 20 people is 60 issues, two bulk creates."""
OTHER_SIZE = 3
PILOT_STARTED = "2027-01-12T09:00"
PILOT_LIVE = "2027-01-18T09:00"
FIRST_CHECKIN = "2027-01-25T10:00"

Call = tuple[str, str]


@pytest.fixture
def program() -> Program:
    return load_program(EXAMPLE)


@pytest.fixture
def site(double: FakeJira, program: Program) -> FakeJira:
    """The fake site with what the example needs: its groups, their people, the alliance,
    the change record (a JSM request in HELP) and the issue announcements are comments on."""
    double.announcement = double._new_issue(
        "OPS", {"summary": "Self-service portal rollout: announcements",
                "issuetype": {"name": "Task"}})
    double.change_record = double._new_issue(
        "HELP", {"summary": "Self-service portal rollout", "issuetype": {"name": "Change"}})
    double.members = {}
    for unit in program.units:
        assert unit.group
        size = PILOT_SIZE if unit.wave == "pilot" else OTHER_SIZE
        people = [double.add_person(f"{unit.title} agent {n}",
                                    f"{unit.id}.agent{n}@example.com") for n in range(size)]
        double.add_group(unit.group, people)
        double.members[unit.id] = people
    for member in program.alliance:
        double.users[member.id] = {
            "accountId": member.id, "accountType": "atlassian", "displayName": member.name,
            "emailAddress": member.email, "active": True, "timeZone": double.timezone,
            "self": f"{SITE}/rest/api/3/user?accountId={member.id}",
        }
    return double


@pytest.fixture
def env(site: FakeJira, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("ITSM_CHANGE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ITSM_CHANGE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ITSM_CHANGE_CONFIG", str(tmp_path / "config.toml"))
    settings = {
        "site_url": SITE, "email": "bot@example.com",
        "api_token": "ATATT3xFfGF0-secret-token-value", "project": "OPS",
        "ticket_projects": "HELP", "webhook_secret": "whsec-0123456789",
        "announcement_issue": site.announcement["key"], "group_field": "customfield_10070",
    }
    for key, value in settings.items():
        monkeypatch.setenv(f"ITSM_CHANGE_JIRA_{key.upper()}", value)


@pytest.fixture
def program_file() -> Path:
    """The example as shipped: it names its change record on Jira (``HELP-1``)."""
    assert EXAMPLE.read_text(encoding="utf-8").count(RECORD) == 2
    return EXAMPLE


class Calls:
    """The (method, path) of every request the fake site receives after ``mark()``."""

    def __init__(self, site: FakeJira) -> None:
        self.site = site
        self.mark()

    def mark(self) -> None:
        self.start = len(self.site.requests_log)
        self.writes = self.site.writes

    def since(self) -> list[Call]:
        return [(m, p) for m, p, _ in self.site.requests_log[self.start:]]

    def bodies(self, method: str, path: str) -> list[Any]:
        return [b for m, p, b in self.site.requests_log[self.start:] if (m, p) == (method, path)]

    def writes_since(self) -> int:
        """Writes as the fake counts them (every non-GET but searches and bulk fetches)."""
        return self.site.writes - self.writes


@pytest.fixture
def calls(site: FakeJira) -> Calls:
    return Calls(site)


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


MEMBERS: Counter[Call] = Counter({("GET", "/rest/api/3/groups/picker"): 1,
                                  ("GET", "/rest/api/3/group/member"): 1})
"""Resolving the started units' members: the pilot's group by name, then its one page."""


def announcement_calls(site: FakeJira) -> Counter[Call]:
    issue = site.announcement["key"]
    return Counter({("POST", f"/rest/api/3/issue/{issue}/comment"): 1,
                    ("GET", f"/rest/api/3/issue/{issue}"): 1})


# -- doctor -----------------------------------------------------------------------------------


def test_doctor_checks_the_site_the_credentials_and_the_permissions(env, calls):
    result = run("doctor", "--platform", "jira")

    assert result.exit_code == 0, result.output
    assert "FAIL" not in result.output and "warn" not in result.output
    assert "[ok  ] jira: credentials: signed in as Change Bot" in result.output
    assert calls.since() == [("GET", "/rest/api/3/serverInfo"),
                             ("GET", "/rest/api/3/myself"),
                             ("GET", "/rest/api/3/mypermissions")]


# -- the record decision ----------------------------------------------------------------------


def test_a_program_without_a_jira_record_is_refused_before_any_call(env, calls, tmp_path):
    """A program whose ``ticket_note`` names no record on Jira is refused for
    ``--platform jira`` (exit 2) with what to add; nothing reaches the site."""
    copy = tmp_path / "program.yaml"
    copy.write_text(EXAMPLE.read_text(encoding="utf-8").replace(RECORD, ""), encoding="utf-8")
    result = run("--as-of", PILOT_STARTED, "apply", str(copy), "--platform", "jira")

    assert result.exit_code == 2, result.output
    assert "communication 'kickoff-alliance' has no record on 'jira'" in result.output
    assert "record: {jira: <the change record's number or key>}" in result.output
    assert calls.since() == []


def test_a_note_that_names_no_issue_fails_alone_and_calls_nothing(site, platform, calls):
    """Should a note ever reach the plugin without a record (a core that let it through),
    that item fails with a plain reason and the others in the call are delivered."""
    note = Effect(key="chg:portal-rollout:comm:kickoff-alliance:20270104T0900:jira",
                  kind=EffectKind.MESSAGE, platform="jira", program="portal-rollout",
                  title="Kickoff", body="Kickoff.", channel="ticket_note")
    other = Effect(key="chg:portal-rollout:comm:other:20270104T0900:jira:HELP-1",
                   kind=EffectKind.MESSAGE, platform="jira", program="portal-rollout",
                   title="Kickoff", body="Kickoff.", channel="ticket_note",
                   ticket_id=site.change_record["key"])

    results = platform.itsm_change_deliver_communication(effects=[note, other], known={})

    assert [r.ok for r in results] == [False, True]
    assert not results[0].uncertain and not results[0].retryable
    assert "names no issue" in (results[0].error or "")
    assert "record" in (results[0].error or "")
    record = site.change_record
    assert calls.since() == [  # the other note's calls only
        ("GET", f"/rest/api/3/issue/{record['key']}"),
        ("POST", f"/rest/api/3/issue/{record['id']}/comment")]
    assert record["comments"][0]["jsdPublic"] is False


# -- apply, re-apply, status, and the next occurrences ----------------------------------------


def test_apply_makes_exactly_the_documented_calls_and_a_reapply_writes_nothing(
        env, site, calls, program_file):
    path = str(program_file)
    pilot = site.members["sd-tier1"]
    record = site.change_record

    # 1. The pilot has started: three modules for each pilot member, the kickoff note on the
    #    change record and the kickoff announcement (both overdue since 4 and 5 January).
    result = run("--as-of", PILOT_STARTED, "apply", path, "--platform", "jira")

    assert result.exit_code == 0, result.output
    trainings = 3 * len(pilot)
    assert (f"Applied portal-rollout: {trainings + 2} created, 0 updated, 0 retired, "
            "0 skipped, 0 recovered, 0 unchanged.") in result.stdout
    assert len(record["comments"]) == 1
    note = record["comments"][0]
    expected = MEMBERS + announcement_calls(site) + Counter({
        ("POST", "/rest/api/3/issue/bulk"): ceil(trainings / 50),
        ("GET", f"/rest/api/3/issue/{record['key']}"): 1,
        ("POST", f"/rest/api/3/issue/{record['id']}/comment"): 1,
    })
    assert Counter(calls.since()) == expected
    sizes = [len(b["issueUpdates"]) for b in calls.bodies("POST", "/rest/api/3/issue/bulk")]
    assert sorted(sizes, reverse=True) == [50, trainings - 50]
    assert note["jsdPublic"] is False
    assert note["properties"]["itsm-change"]["kind"] == "message"
    announcement = site.announcement["comments"]
    assert len(announcement) == 1 and "visibility" not in announcement[0]  # four groups
    assignees = Counter(i["fields"]["assignee"]["accountId"] for i in site.issues.values()
                        if i["fields"].get("assignee"))
    assert assignees == Counter({p.id: 3 for p in pilot})

    # 2. The same apply again: only the reads that resolve the pilot's members.
    calls.mark()
    result = run("--as-of", PILOT_STARTED, "apply", path, "--platform", "jira")

    assert result.exit_code == 0, result.output
    assert (f"Applied portal-rollout: 0 created, 0 updated, 0 retired, 0 skipped, "
            f"0 recovered, {trainings + 2} unchanged.") in result.stdout
    assert Counter(calls.since()) == MEMBERS
    assert calls.writes_since() == 0

    # 3. status reads the ledger only.
    calls.mark()
    result = run("--as-of", PILOT_STARTED, "status", path, "--platform", "jira")

    assert result.exit_code == 0, result.output
    lines = [" ".join(line.split()) for line in result.stdout.splitlines()]
    assert f"training done {trainings}" in lines
    assert "message done 2" in lines
    assert f"training completed: 0/{trainings} (0%)" in lines
    assert not any("failed" in line for line in lines)
    assert calls.since() == []

    # 4. Go-live for the pilot: one announcement, to its one group.
    calls.mark()
    result = run("--as-of", PILOT_LIVE, "apply", path, "--platform", "jira")

    assert result.exit_code == 0, result.output
    assert Counter(calls.since()) == MEMBERS + announcement_calls(site)
    golive = site.announcement["comments"][-1]
    assert golive["visibility"] == {"type": "group", "value": "Service Desk Tier 1"}

    # 5. The first check-in: one feedback request per pilot member, in one bulk create.
    calls.mark()
    result = run("--as-of", FIRST_CHECKIN, "apply", path, "--platform", "jira")

    assert result.exit_code == 0, result.output
    assert f"Applied portal-rollout: {len(pilot)} created," in result.stdout
    assert Counter(calls.since()) == MEMBERS + Counter(
        {("POST", "/rest/api/3/issue/bulk"): ceil(len(pilot) / 50)})
    created = calls.bodies("POST", "/rest/api/3/issue/bulk")[0]["issueUpdates"]
    assert sorted(u["fields"]["assignee"]["id"] for u in created) == sorted(p.id for p in pilot)
    assert all(u["fields"]["duedate"] == "2027-02-01" for u in created)

    # 6. And once more: nothing to write.
    calls.mark()
    result = run("--as-of", FIRST_CHECKIN, "apply", path, "--platform", "jira")

    assert result.exit_code == 0, result.output
    assert Counter(calls.since()) == MEMBERS
    assert calls.writes_since() == 0

    result = run("--as-of", FIRST_CHECKIN, "status", path, "--platform", "jira")
    lines = [" ".join(line.split()) for line in result.stdout.splitlines()]
    assert f"feedback_request done {len(pilot)}" in lines
    assert "message done 3" in lines


# -- filters checked against the site ----------------------------------------------------------


def test_validate_with_a_platform_names_a_kind_that_is_no_issue_type(env, calls, tmp_path):
    """``validate --platform jira`` reads the ticket project and says which filter value to
    change before a sync meets Jira's 400; a file whose values all exist passes."""
    fine = run("validate", str(EXAMPLE), "--platform", "jira")
    assert fine.exit_code == 0, fine.output
    assert ("GET", "/rest/api/3/project/HELP") in calls.since()
    copy = tmp_path / "program.yaml"
    text = EXAMPLE.read_text(encoding="utf-8")
    marker = "      kinds: [incident]\n      categories: [password reset]"
    assert marker in text
    copy.write_text(text.replace(marker, marker.replace("incident", "request")),
                    encoding="utf-8")
    result = run("validate", str(copy), "--platform", "jira")
    assert result.exit_code == 1, result.output
    assert "[FAIL] jira: filters: prompt 'password-reset-selfservice'" in result.output
    assert "did you mean 'Service Request'?" in result.output
    doctor = run("doctor", "--platform", "jira", "--program", str(copy))
    assert doctor.exit_code == 1 and "prompt 'password-reset-selfservice'" in doctor.output
