"""The installed plugin behind the real CLI: ``doctor``, ``apply``, a re-apply and ``status``
on the example program, against the fake instance, with the calls each makes asserted exactly.

These are the calls listed under "What doctor and apply call" in the plugin's README. Settings
come from ``ITSM_CHANGE_SERVICENOW_*`` only, as for a user who installed the plugin; the ledger
and the config file live in the test's temporary directory.

The example's ``ticket_note`` communications name their record on each platform; on ServiceNow
it is the change ``CHG0030001``. A program without a ServiceNow record is refused before any
call (exit 2, naming the missing record).
"""

from __future__ import annotations

import base64
import json
import os
from collections import Counter
from math import ceil
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner, Result

from itsm_change_sdk import load_program
from itsm_change_sdk.cli import cli
from itsm_change_sdk.model import Person, Program

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "portal-rollout" / "program.yaml"
RECORD = "servicenow: CHG0030001, "
PILOT_SIZE = 20
"""Service Desk Tier 1's active members: three modules for 20 people is 60 tasks, two
batches."""
OTHER_SIZE = 3
PILOT_STARTED = "2027-01-12T09:00"
"""The pilot started on 2027-01-11; the kickoff note and announcement (4 and 5 January) are
due."""
PILOT_LIVE = "2027-01-18T09:00"
FIRST_CHECKIN = "2027-01-25T10:30"
"""The first ``checkin-pilot`` occurrence (2027-01-25 10:00) is due."""

TABLE = "/api/now/table"
BATCH = ("POST", "/api/now/v1/batch")
Call = tuple[str, str]


@pytest.fixture
def program() -> Program:
    return load_program(EXAMPLE)


@pytest.fixture
def instance(double: Any, program: Program) -> Any:
    """The fake instance with what the example needs: an API user with the ``itil`` role, a
    ``sys_user_group`` per unit named as its ``group``, active members in each (and one
    former, inactive member of the pilot's group), the alliance as users, and the change
    record ``CHG0030001``."""
    itil = double.insert("sys_user_role", {"name": "itil"})
    double.insert("sys_user_has_role", {"user": double.api_user.id, "role": itil["sys_id"]})
    double.members = {}
    for unit in program.units:
        assert unit.group
        size = PILOT_SIZE if unit.wave == "pilot" else OTHER_SIZE
        people = [double.add_person(f"{unit.title} agent {n}",
                                    f"{unit.id}.agent{n}@example.com") for n in range(size)]
        members = list(people)
        if unit.wave == "pilot":
            gone = double.add_person("Former Agent", "former.agent@example.com")
            double.tables["sys_user"][gone.id]["active"] = "false"
            members.append(gone)
        double.add_group(unit.group, members)
        double.members[unit.id] = people
    double.alliance = {m.id: double.add_person(m.name, m.email) for m in program.alliance}
    double.add_ticket(title="Self-service portal rollout", kind="change",
                      opened_at=double.clock, number="CHG0030001")
    double.change_record = next(r for r in double.tables["change_request"].values()
                                if r["number"] == "CHG0030001")
    return double


@pytest.fixture
def env(instance: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name in list(os.environ):
        if name.startswith("ITSM_CHANGE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ITSM_CHANGE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ITSM_CHANGE_CONFIG", str(tmp_path / "config.toml"))
    settings: dict[str, str] = instance.settings()
    for key, value in settings.items():
        monkeypatch.setenv(f"ITSM_CHANGE_SERVICENOW_{key.upper()}", value)
    return settings


class Calls:
    """The HTTP requests the fake instance receives after ``mark()``."""

    def __init__(self, double: Any) -> None:
        self.double = double
        self.mark()

    def mark(self) -> None:
        self.start = len(self.double.rsps.calls)
        self.writes = self.double.writes

    def requests(self) -> list[Any]:
        return [c.request for c in list(self.double.rsps.calls)[self.start:]]

    def since(self) -> list[Call]:
        return [(r.method, urlsplit(r.url).path) for r in self.requests()]

    def params(self, call: Call) -> list[dict[str, str]]:
        return [{k: v[0] for k, v in parse_qs(urlsplit(r.url).query).items()}
                for r in self.requests() if (r.method, urlsplit(r.url).path) == call]

    def batches(self) -> list[list[dict[str, Any]]]:
        """Each batch call's sub-requests, their bodies decoded."""
        out = []
        for request in self.requests():
            if (request.method, urlsplit(request.url).path) == BATCH:
                items = json.loads(request.body)["rest_requests"]
                out.append([{**item, "body": json.loads(base64.b64decode(item["body"]))}
                            for item in items])
        return out

    def sub_requests(self) -> Counter[Call]:
        return Counter((item["method"], urlsplit(item["url"]).path)
                       for batch in self.batches() for item in batch)

    def writes_since(self) -> int:
        """Writes as the fake counts them: every non-GET Table API call and every batch."""
        return self.double.writes - self.writes


@pytest.fixture
def calls(instance: Any) -> Calls:
    return Calls(instance)


class Runner:
    """The real CLI; no output may carry a secret."""

    def __init__(self, settings: dict[str, str]) -> None:
        self.secrets = [settings["password"], settings["webhook_secret"]]
        self.runner = CliRunner()

    def __call__(self, *args: str) -> Result:
        result = self.runner.invoke(cli, list(args), catch_exceptions=False)
        for secret in self.secrets:
            assert secret not in result.output
        return result


@pytest.fixture
def run(env: dict[str, str]) -> Runner:
    return Runner(env)


def table(name: str, sys_id: str | None = None) -> str:
    return f"{TABLE}/{name}" + (f"/{sys_id}" if sys_id else "")


MEMBERS: Counter[Call] = Counter({("GET", table("sys_user_group")): 1,
                                  ("GET", table("sys_user_grmember")): 1})
"""Resolving the started units' members: the pilot's group by name, then its active members
(one page; the inactive former member is filtered out by the query)."""

ANNOUNCEMENT_GROUPS: Counter[Call] = Counter({("GET", table("sys_user_group")): 1})
"""The announcements' audience groups, by name, once per run that delivers announcements."""


# -- doctor -----------------------------------------------------------------------------------


def test_doctor_makes_only_the_documented_reads(run, calls, instance):
    result = run("doctor", "--platform", "servicenow")

    assert result.exit_code == 0, result.output
    assert "FAIL" not in result.output and "warn" not in result.output
    assert "[ok  ] servicenow: credentials: signed in as svc_itsm" in result.output
    assert "[ok  ] servicenow: write access: roles: itil" in result.output
    readable = ["vtb_task", "task", "incident", "sc_request", "change_request", "announcement",
                "sys_journal_field", "sys_user", "sys_user_group", "sys_user_grmember",
                "sys_dictionary"]
    assert calls.since() == [
        ("GET", table("sys_user")),                       # who am I (gs.getUserID())
        *[("GET", table(name)) for name in readable],     # one row of each table
        ("GET", table("sys_dictionary")),                 # every column the plugin uses
        ("GET", table("sys_user_has_role")),              # the API user's roles
    ]
    requests = calls.requests()
    assert parse_qs(urlsplit(requests[0].url).query)["sysparm_query"] == [
        "sys_id=javascript:gs.getUserID()"]
    for request in requests[:12]:
        assert parse_qs(urlsplit(request.url).query)["sysparm_limit"] == ["1"]
    assert calls.writes_since() == 0


# -- the record decision ----------------------------------------------------------------------


def test_a_program_without_a_servicenow_record_is_refused_before_any_call(run, calls, tmp_path):
    copy = tmp_path / "program.yaml"
    text = EXAMPLE.read_text(encoding="utf-8")
    assert text.count(RECORD) == 2
    copy.write_text(text.replace(RECORD, ""), encoding="utf-8")
    result = run("--as-of", PILOT_STARTED, "apply", str(copy), "--platform", "servicenow")

    assert result.exit_code == 2, result.output
    assert "communication 'kickoff-alliance' has no record on 'servicenow'" in result.output
    assert "communication 'pilot-review' has no record on 'servicenow'" in result.output
    assert calls.since() == []


# -- apply, re-apply, status, and the next occurrences ----------------------------------------


def _assignees(batches: list[list[dict[str, Any]]]) -> Counter[str]:
    return Counter(item["body"]["assigned_to"] for batch in batches for item in batch
                   if item["body"].get("assigned_to"))


def test_apply_makes_the_documented_calls_and_a_reapply_writes_nothing(
        run, calls, instance, program, tmp_path):
    path = str(EXAMPLE)
    pilot: list[Person] = instance.members["sd-tier1"]
    record = instance.change_record
    modules = len([m for m in program.training if "sd-tier1" in m.audience])
    assert modules == 3
    trainings = modules * len(pilot)

    # 1. The pilot has started: three modules for each active pilot member, the kickoff
    #    announcement (to all four groups) and the alliance kickoff note on CHG0030001.
    result = run("--as-of", PILOT_STARTED, "apply", path, "--platform", "servicenow")

    assert result.exit_code == 0, result.output
    assert (f"Applied portal-rollout: {trainings + 2} created, 0 updated, 0 retired, "
            "0 skipped, 0 recovered, 0 unchanged.") in result.output
    assert Counter(calls.since()) == MEMBERS + ANNOUNCEMENT_GROUPS + Counter({
        ("GET", table("task")): 1,                         # CHG0030001 by number
        BATCH: ceil(trainings / 100) + ceil(2 / 100),      # training; communications
    })
    assert calls.sub_requests() == Counter({
        ("POST", table("vtb_task")): trainings,
        ("POST", table("announcement")): 1,
        ("PATCH", table("change_request", record["sys_id"])): 1,
    })
    assert sorted(len(b) for b in calls.batches()) == sorted([2, trainings])
    assert {tuple(sorted(p["sysparm_query"].split("^")[0].removeprefix("nameIN").split(",")))
            for p in calls.params(("GET", table("sys_user_group")))} == {
        ("Service Desk Tier 1",),
        tuple(sorted(u.group for u in program.units if u.group))}
    [task_lookup] = calls.params(("GET", table("task")))
    assert task_lookup["sysparm_query"] == "numberINCHG0030001^ORDERBYsys_id"
    assert _assignees(calls.batches()) == Counter({p.id: modules for p in pilot})
    tasks = [i["body"] for b in calls.batches() for i in b if i["url"].startswith(
        table("vtb_task"))]
    assert {t["short_description"] for t in tasks} == {f"Training: {m.title}"
                                                  for m in program.training
                                                  if "sd-tier1" in m.audience}
    assert all(t["correlation_display"] == "itsm_change_sdk" for t in tasks)
    [note] = [i["body"] for b in calls.batches() for i in b if i["method"] == "PATCH"]
    assert "Kickoff of Self-service portal rollout" in note["work_notes"]
    assert "[itsm-change:" in note["work_notes"]
    journal = [j for j in instance.tables["sys_journal_field"].values()
               if j["element_id"] == record["sys_id"]]
    assert [j["element"] for j in journal] == ["work_notes"]
    [announcement] = instance.tables["announcement"].values()
    assert announcement["title"] == "The self-service portal is coming"
    assert announcement["active"] == "true"

    # 2. The same apply again: only the reads that resolve the pilot's members.
    calls.mark()
    result = run("--as-of", PILOT_STARTED, "apply", path, "--platform", "servicenow")

    assert result.exit_code == 0, result.output
    assert (f"Applied portal-rollout: 0 created, 0 updated, 0 retired, 0 skipped, "
            f"0 recovered, {trainings + 2} unchanged.") in result.output
    assert Counter(calls.since()) == MEMBERS
    assert calls.writes_since() == 0

    # 3. status reads the ledger only.
    calls.mark()
    result = run("--as-of", PILOT_STARTED, "status", path, "--platform", "servicenow")

    assert result.exit_code == 0, result.output
    lines = [" ".join(line.split()) for line in result.output.splitlines()]
    assert f"training done {trainings}" in lines
    assert "message done 2" in lines
    assert f"training completed: 0/{trainings} (0%)" in lines
    assert "failed" not in result.output
    assert calls.since() == []

    # 4. Go-live of the pilot: exactly its announcement, in one batch.
    calls.mark()
    result = run("--as-of", PILOT_LIVE, "apply", path, "--platform", "servicenow")

    assert result.exit_code == 0, result.output
    assert "Applied portal-rollout: 1 created, 0 updated" in result.output
    assert Counter(calls.since()) == MEMBERS + ANNOUNCEMENT_GROUPS + Counter({BATCH: 1})
    assert calls.sub_requests() == Counter({("POST", table("announcement")): 1})
    [[golive]] = calls.batches()
    assert golive["body"]["title"] == "The portal is live for the pilot"
    assert len(instance.tables["announcement"]) == 2

    # 5. The first check-in: one feedback-request task per active pilot member.
    calls.mark()
    result = run("--as-of", FIRST_CHECKIN, "apply", path, "--platform", "servicenow")

    assert result.exit_code == 0, result.output
    assert f"Applied portal-rollout: {len(pilot)} created, 0 updated" in result.output
    assert Counter(calls.since()) == MEMBERS + Counter({BATCH: ceil(len(pilot) / 100)})
    assert calls.sub_requests() == Counter({("POST", table("vtb_task")): len(pilot)})
    assert _assignees(calls.batches()) == Counter({p.id: 1 for p in pilot})
    requests = [i["body"] for b in calls.batches() for i in b]
    assert all(r["short_description"] == "Portal check-in (pilot)" for r in requests)
    assert all(r["due_date"].startswith("2027-02-01") for r in requests)

    # 6. And once more: nothing to write.
    calls.mark()
    result = run("--as-of", FIRST_CHECKIN, "apply", path, "--platform", "servicenow")

    assert result.exit_code == 0, result.output
    assert Counter(calls.since()) == MEMBERS
    assert calls.writes_since() == 0
    result = run("--as-of", FIRST_CHECKIN, "status", path, "--platform", "servicenow")
    lines = [" ".join(line.split()) for line in result.output.splitlines()]
    assert {f"training done {trainings}", "message done 3",
            f"feedback_request done {len(pilot)}"} <= set(lines)

    # What the instance now holds, and nowhere a secret.
    ours = [t for t in instance.tables["vtb_task"].values()
            if t.get("correlation_display") == "itsm_change_sdk"]
    assert len(ours) == trainings + len(pilot)
    assert not any(t["assigned_to"] not in {p.id for p in pilot} for t in ours)
    secrets = [s.encode() for s in run.secrets]
    files = [p for p in (tmp_path / "home").rglob("*") if p.is_file()]
    assert files, "the ledger lives under ITSM_CHANGE_HOME"
    for file in files:
        data = file.read_bytes()
        assert not any(s in data for s in secrets), file
