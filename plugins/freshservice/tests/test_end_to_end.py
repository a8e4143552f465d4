"""The real CLI against the Freshservice fake: ``doctor``, then ``apply`` of the portal-rollout
example with ``--platform freshservice``, as a user would run them with the plugin installed
and ``ITSM_CHANGE_FRESHSERVICE_*`` set. The call lists asserted here are the ones the README's
"What apply calls" section documents.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from click.testing import CliRunner, Result
from itsm_change_freshservice.mapping import MANAGED_TAG, kind_tag

from itsm_change_sdk import load_program
from itsm_change_sdk.cli import cli
from itsm_change_sdk.model import Effect, EffectKind, Person

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "portal-rollout" / "program.yaml"
RECORD = 'freshservice: "#SR-1001"'
PILOT = "2027-01-12T09:00"
"""The pilot (Service Desk Tier 1) started on 2027-01-11; kickoff messages are due."""
GO_LIVE = "2027-01-18T09:00"
CHECK_IN = "2027-01-25T10:30"
"""The first ``checkin-pilot`` occurrence (2027-01-25 10:00) is due."""

Call = tuple[str, str]
WRITES = {"POST", "PUT", "DELETE"}


class World:
    """The Freshservice account the example program needs."""

    def __init__(self, fake: Any) -> None:
        self.fake = fake
        self.program = load_program(EXAMPLE)
        self.group_ids: dict[str, int] = {}
        self.members: dict[str, list[Person]] = {}
        for unit in self.program.units:
            assert unit.group
            slug = unit.id
            people = [fake.add_person(f"{first} {slug.title()}",
                                      f"{first.lower()}.{slug}@acme.example")
                      for first in ("Alex", "Sam", "Kim")]
            if unit.id == "sd-tier1":
                # A former member: still in the group, but inactive, so never assigned.
                gone = fake.add_person("Former Agent", "former@acme.example")
                fake.agents[int(gone.id)]["active"] = False
                fake.add_group(unit.group, [*people, gone])
            else:
                fake.add_group(unit.group, people)
            self.members[unit.id] = people
            self.group_ids[unit.group] = next(
                g["id"] for g in fake.groups.values() if g["name"] == unit.group)
        # The alliance are agents too; the file names them by slug (``dana-reyes``), not by
        # Freshservice agent id, so the plugin finds them by email.
        self.alliance = {m.id: fake.add_person(m.name, m.email) for m in self.program.alliance}
        # The change record the ``ticket_note`` communications are posted on.
        self.record = fake.add_ticket(title="CHG: self-service portal rollout",
                                      opened_at=datetime(2026, 12, 1, tzinfo=UTC),
                                      kind="service_request")
        self.record_id = int(self.record.id.lstrip("#").split("-")[-1])

    def program_file(self, tmp_path: Path) -> Path:
        """The example, its Freshservice record pointing at this fake's change ticket."""
        text = EXAMPLE.read_text(encoding="utf-8")
        assert text.count(RECORD) == 2
        text = text.replace(RECORD, f"freshservice: '{self.record.id}'")
        path = tmp_path / "program.yaml"
        path.write_text(text, encoding="utf-8")
        return path


@pytest.fixture
def world(fake: Any) -> World:
    return World(fake)


@pytest.fixture
def env(fake: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    settings = fake.settings()
    monkeypatch.setenv("ITSM_CHANGE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ITSM_CHANGE_CONFIG", str(tmp_path / "config.toml"))
    for name in ("ITSM_CHANGE_DB", "ITSM_CHANGE_AS_OF", "ITSM_CHANGE_SANDBOX_DB"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ITSM_CHANGE_FRESHSERVICE_DOMAIN", settings["domain"])
    monkeypatch.setenv("ITSM_CHANGE_FRESHSERVICE_API_KEY", settings["api_key"])
    monkeypatch.setenv("ITSM_CHANGE_FRESHSERVICE_WEBHOOK_SECRET", settings["webhook_secret"])
    monkeypatch.setenv("ITSM_CHANGE_FRESHSERVICE_PLAN", "enterprise")
    return settings


class Session:
    def __init__(self, fake: Any, settings: dict[str, str]) -> None:
        self.fake = fake
        self.secrets = [settings["api_key"], settings["webhook_secret"]]
        self.runner = CliRunner()
        self.outputs: list[str] = []

    def run(self, *args: str, code: int = 0) -> Result:
        """Run the CLI; return its result with ``.calls``: the (method, path) it sent."""
        start = len(self.fake.requests)
        result = self.runner.invoke(cli, list(args), catch_exceptions=False)
        self.outputs.append(result.output)
        for secret in self.secrets:
            assert secret not in result.output
        assert result.exit_code == code, result.output
        result.calls = [(r.method, urlsplit(r.url).path)  # type: ignore[attr-defined]
                        for r in self.fake.requests[start:]]
        result.sent = self.fake.requests[start:]  # type: ignore[attr-defined]
        return result


@pytest.fixture
def session(fake: Any, env: dict[str, str]) -> Session:
    return Session(fake, env)


def writes(calls: list[Call]) -> list[Call]:
    return [c for c in calls if c[0] in WRITES]


def body(request: Any) -> dict[str, Any]:
    return json.loads(request.body)


MEMBER_READS: Counter[Call] = Counter({("GET", "/api/v2/agent_groups"): 1,
                                       ("GET", "/api/v2/agents"): 1})
"""Resolving the started units' members: the groups (by name), then the active agents."""


def test_doctor_makes_only_the_documented_reads(world: World, session: Session) -> None:
    """Reads, and one empty ticket that Freshservice refuses as incomplete (it writes
    nothing) to learn whether the key may create tickets."""
    result = session.run("doctor", "--platform", "freshservice")
    assert result.calls == [
        ("GET", "/api/v2/agents/me"),
        ("GET", "/api/v2/tickets"),
        ("GET", "/api/v2/agent_groups"),
        ("GET", "/api/v2/agents"),
        ("GET", "/api/v2/announcements"),
        ("GET", "/api/v2/tickets/filter"),
        ("POST", "/api/v2/tickets"),
    ]
    assert result.sent[-1].body in (b"{}", "{}")
    for request in result.sent[1:5]:
        assert dict(parse_qsl(urlsplit(request.url).query))["per_page"] == "1"
    assert "[FAIL]" not in result.output
    assert "api key: the key belongs to agent Api Integration" in result.output


def test_a_program_without_a_freshservice_record_is_refused_before_any_call(
        world: World, session: Session, tmp_path: Path) -> None:
    """A ``ticket_note`` that names no record on Freshservice: the core says so, exits 2."""
    copy = tmp_path / "no-record.yaml"
    copy.write_text(EXAMPLE.read_text(encoding="utf-8").replace(f", {RECORD}", ""),
                    encoding="utf-8")
    result = session.run("--as-of", PILOT, "apply", str(copy), "--platform", "freshservice",
                         code=2)
    assert result.calls == []
    assert "communication 'kickoff-alliance' has no record on 'freshservice'" in result.output
    assert "communication 'pilot-review' has no record on 'freshservice'" in result.output


def test_apply_makes_the_documented_calls_and_a_reapply_writes_nothing(
        world: World, session: Session, fake: Any, tmp_path: Path) -> None:
    program = str(world.program_file(tmp_path))
    pilot = [int(p.id) for p in world.members["sd-tier1"]]
    modules = len([m for m in world.program.training if "sd-tier1" in m.audience])
    assert modules == 3

    # 1. The pilot has started: training for its three active agents, the kickoff
    #    announcement to every unit's group, the alliance kickoff note on the change record.
    first = session.run("--as-of", PILOT, "apply", program, "--platform", "freshservice")
    assert Counter(first.calls) == MEMBER_READS + Counter({
        ("POST", "/api/v2/tickets"): modules * len(pilot),            # one per assignment
        ("GET", "/api/v2/agent_groups"): 1,                            # announcement groups
        ("POST", "/api/v2/announcements"): 1,
        ("POST", f"/api/v2/tickets/{world.record_id}/notes"): 1,
    })
    assert "Applied portal-rollout: 11 created, 0 updated, 0 retired" in first.output
    tickets = [body(r) for r in first.sent
               if (r.method, urlsplit(r.url).path) == ("POST", "/api/v2/tickets")]
    assert Counter(t["responder_id"] for t in tickets) == Counter({a: modules for a in pilot})
    assert all({MANAGED_TAG, kind_tag("training")} <= set(t["tags"]) for t in tickets)
    assert {t["subject"] for t in tickets} == {f"Training: {m.title}"
                                               for m in world.program.training
                                               if "sd-tier1" in m.audience}
    [announcement] = [body(r) for r in first.sent if r.url.endswith("/announcements")]
    assert sorted(announcement["groups"]) == sorted(world.group_ids.values())
    assert announcement["title"] == "The self-service portal is coming"
    [note] = [body(r) for r in first.sent if r.url.endswith("/notes")]
    assert note["private"] is True and "Kickoff of Self-service portal rollout" in note["body"]

    # 2. Again at the same moment: the members are read, nothing is written.
    again = session.run("--as-of", PILOT, "apply", program, "--platform", "freshservice")
    assert Counter(again.calls) == MEMBER_READS
    assert writes(again.calls) == []
    assert "0 created, 0 updated, 0 retired, 0 skipped, 0 recovered, 11 unchanged" \
        in again.output

    status = session.run("--as-of", PILOT, "status", program, "--platform", "freshservice")
    assert status.calls == []
    lines = {" ".join(line.split()) for line in status.output.splitlines()}
    assert "training done 9" in lines
    assert "message done 2" in lines
    assert "training completed: 0/9 (0%)" in lines
    assert "failed" not in status.output

    # 3. Go-live of the pilot: exactly its announcement, to the pilot's group.
    golive = session.run("--as-of", GO_LIVE, "apply", program, "--platform", "freshservice")
    assert Counter(golive.calls) == MEMBER_READS + Counter({
        ("GET", "/api/v2/agent_groups"): 1, ("POST", "/api/v2/announcements"): 1})
    [announcement] = [body(r) for r in golive.sent if r.method == "POST"]
    assert announcement["groups"] == [world.group_ids["Service Desk Tier 1"]]

    # 4. The first check-in is due: exactly one feedback-request ticket per pilot agent.
    checkin = session.run("--as-of", CHECK_IN, "apply", program, "--platform", "freshservice")
    assert Counter(checkin.calls) == MEMBER_READS + Counter(
        {("POST", "/api/v2/tickets"): len(pilot)})
    requests = [body(r) for r in checkin.sent if r.method == "POST"]
    assert sorted(t["responder_id"] for t in requests) == sorted(pilot)
    assert all(kind_tag("feedback_request") in t["tags"] for t in requests)
    assert all(t["subject"] == "Portal check-in (pilot)" for t in requests)
    assert "Applied portal-rollout: 3 created, 0 updated" in checkin.output

    settled = session.run("--as-of", CHECK_IN, "apply", program, "--platform", "freshservice")
    assert Counter(settled.calls) == MEMBER_READS
    status = session.run("--as-of", CHECK_IN, "status", program, "--platform", "freshservice")
    lines = {" ".join(line.split()) for line in status.output.splitlines()}
    assert {"training done 9", "message done 3", "feedback_request done 3"} <= lines

    # What Freshservice now holds, and nowhere a secret.
    created = [t for t in fake.tickets.values() if MANAGED_TAG in t["tags"]]
    assert len(created) == modules * len(pilot) + len(pilot)
    assert len(fake.announcements) == 2
    assert len(fake.conversations[world.record_id]) == 1
    for path in (tmp_path / "home").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert all(s.encode() not in data for s in session.secrets), path


def _effect(key: str, **fields: Any) -> Effect:
    return Effect(key=key, kind=EffectKind.MESSAGE, platform="freshservice",
                  program="portal-rollout", title="Pilot results", body="Please review.",
                  **fields)


def test_an_alliance_member_named_by_slug_is_found_by_email(world: World, platform: Any,
                                                            fake: Any) -> None:
    """A ``task`` to the alliance carries the file's slug (``dana-reyes``) as the recipient id:
    the plugin finds the agent by email, once per email, or fails that item alone."""
    dana = next(m for m in world.program.alliance if m.id == "dana-reyes")
    due = date(2099, 1, 8)
    effects = [
        _effect(f"chg:portal-rollout:comm:ack:20270104T0900:freshservice:{who.id}",
                channel="task", due=due, recipient=who)
        for who in (Person(dana.id, dana.name, "freshservice", dana.email),
                    Person("no-one", "No One", "freshservice", "no.one@example.com"),
                    Person("no-email", "No Email", "freshservice"))
    ]
    results = platform.itsm_change_deliver_communication(effects=effects, known={})
    assert [r.ok for r in results] == [True, False, False]
    assert "'no-one' (no.one@example.com) is not a Freshservice agent" in results[1].error
    assert "'no-email' (no email) is not a Freshservice agent" in results[2].error
    [create] = fake.calls("POST", "/api/v2/tickets")
    assert body(create)["responder_id"] == int(world.alliance["dana-reyes"].id)
    lookups = fake.calls("GET", "/api/v2/agents")
    assert [dict(parse_qsl(urlsplit(r.url).query))["email"] for r in lookups] == [
        "dana.reyes@example.com", "no.one@example.com"]

    platform.itsm_change_deliver_communication(effects=effects[:1], known={})
    assert len(fake.calls("GET", "/api/v2/agents")) == 2          # the email is remembered


def test_a_note_without_a_record_fails_that_item_only(world: World, platform: Any,
                                                       fake: Any) -> None:
    """What the core would hand over for a ``ticket_note`` with no record on this platform
    (``ticket_id`` None): a clear per-item failure, no call, and the other items still go."""
    effects = [_effect("chg:portal-rollout:comm:kickoff-alliance:20270104T0900:freshservice",
                       channel="ticket_note"),
               _effect(f"chg:portal-rollout:comm:kickoff-alliance:20270104T0900:freshservice:"
                       f"{world.record_id}", channel="ticket_note", ticket_id=world.record.id)]
    start = len(fake.requests)
    results = platform.itsm_change_deliver_communication(effects=effects, known={})
    assert results[0].ok is False and not results[0].retryable
    assert "needs the ticket to post on" in results[0].error
    assert "record: {freshservice: <ticket id>}" in results[0].error
    assert results[1].ok is True
    assert [(r.method, urlsplit(r.url).path) for r in fake.requests[start:]] == [
        ("POST", f"/api/v2/tickets/{world.record_id}/notes")]
