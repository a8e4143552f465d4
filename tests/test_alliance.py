"""The management alliance at work: check-in briefs, leaders, quoted results, no silence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from itsm_change_sdk import Workspace, load_program
from itsm_change_sdk.demo import SimClock
from itsm_change_sdk.model import BUILTIN_CHANNELS, EffectKind
from itsm_change_sdk.planner import plan
from itsm_change_sdk.sandbox.platform import SandboxPlatform
from itsm_change_sdk.sandbox.store import SandboxStore

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "portal-rollout" / "program.yaml"
PILOT_START = datetime(2027, 1, 11, 8, 0, tzinfo=UTC)
FIRST_BRIEF = datetime(2027, 2, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def program():
    return load_program(EXAMPLE)


@pytest.fixture
def clock():
    return SimClock(PILOT_START)


@pytest.fixture
def store(tmp_path, clock):
    return SandboxStore(f"sqlite:///{tmp_path / 'sandbox.db'}", clock=clock)


@pytest.fixture
def org(store, program):
    store.add_ticket(title="Portal rollout", kind="change", channel=None,
                     opened_at=PILOT_START - timedelta(days=30))
    for member in program.alliance:
        store.add_person(member.name, member.email or f"{member.id}@example.com", member.id)
    for sponsor in program.sponsors:
        store.add_person(sponsor.name, sponsor.email or f"{sponsor.id}@example.com",
                         sponsor.id)
    people = {}
    for unit in program.units:
        members = [store.add_person(f"{unit.title} agent {i}", f"{unit.id}.{i}@example.com")
                   for i in range(3)]
        store.add_group(unit.group, members)
        people[unit.id] = members
    return people


@pytest.fixture
def ws(tmp_path, clock, store, org):
    workspace = Workspace(str(tmp_path / "ledger.db"), clock=clock)
    workspace.platforms.add("sandbox", SandboxPlatform(store))
    yield workspace
    workspace.close()


def briefs(store):
    return [t for t in store.all_tasks() if "check-in brief" in (t.get("body") or "")]


def brief_rows(ws, program):
    return [r for r in ws.ledger.effects(program.id) if r.meta.get("checkin")]


class TestCheckIns:
    def test_no_brief_before_the_first_occurrence(self, ws, program):
        planned = ws.plan(program)
        assert not [a for a in planned.actions if a.key.startswith(
            f"chg:{program.id}:checkin:")]

    def test_each_member_gets_one_brief_per_occurrence_shown_by_plan(self, ws, program,
                                                                      clock):
        clock.now = FIRST_BRIEF
        planned = ws.plan(program)
        keys = [a.key for a in planned.actions if a.action == "create"
                and a.key.startswith(f"chg:{program.id}:checkin:alliance-brief:20270201T0800")]
        assert len(keys) == len(program.alliance)
        assert "Portal rollout brief (2027-02-01)" in planned.render()

    def test_brief_is_delivered_once_and_recorded(self, ws, program, clock, store):
        ws.apply(program)
        clock.now = FIRST_BRIEF
        first = ws.apply(program)
        assert first.ok
        rows = brief_rows(ws, program)
        assert len(rows) == len(program.alliance)
        assert {r.recipient for r in rows} == {m.id for m in program.alliance}
        assert all(r.state == "done" and r.kind == EffectKind.MESSAGE for r in rows)
        tasks = briefs(store)
        assert len(tasks) == len(program.alliance)
        clock.now = FIRST_BRIEF + timedelta(days=3)
        assert not [a for a in ws.plan(program).actions if "checkin" in a.key]
        ws.apply(program)
        assert len(briefs(store)) == len(program.alliance)

    def test_next_occurrence_is_a_new_brief(self, ws, program, clock, store):
        clock.now = FIRST_BRIEF
        ws.apply(program)
        clock.now = FIRST_BRIEF + timedelta(days=14)
        ws.apply(program)
        occurrences = {r.meta["occurrence"] for r in brief_rows(ws, program)}
        assert occurrences == {"2027-02-01T08:00:00+00:00", "2027-02-15T08:00:00+00:00"}
        assert len(briefs(store)) == 2 * len(program.alliance)

    def test_brief_speaks_of_the_members_own_units_with_report_numbers(
            self, ws, program, clock, store, org):
        clock.now = PILOT_START
        ws.apply(program)
        # Two weeks later, one pilot agent has closed a training task, the rest are overdue.
        first = store.all_tasks(kind="training")[0]
        store.set_task_state(first["number"], "closed", PILOT_START + timedelta(days=1))
        clock.now = FIRST_BRIEF + timedelta(days=14)
        ws.sync(program)
        report = ws.runner(program).measures()
        ws.apply(program)
        by_member = {t["assignee"]: t["body"] for t in briefs(store)}
        dana = by_member["dana-reyes"]
        assert "Service Desk Tier 1" in dana
        assert "Service Desk Tier 2" not in dana
        cell = report.training.by_unit["sd-tier1"]
        assert f"Training: {cell.completed} of {cell.assigned} done, {cell.overdue} overdue" \
            in dana
        overdue_agent = org["sd-tier1"][1].name
        assert overdue_agent in dana
        # People overdue are named to their own manager only.
        assert all(overdue_agent not in body for member, body in by_member.items()
                   if member != "dana-reyes")
        portal = next(g for g in report.goals if g.goal.id == "portal-share")
        assert portal.goal.title in dana
        assert "Next gate" in by_member["priya-nair"]
        assert "sign-off by priya-nair" in by_member["priya-nair"]

    def test_timeouts_while_sending_leave_one_brief_each(self, tmp_path, program, clock,
                                                          store, org):
        platform = SandboxPlatform(store)
        with Workspace(str(tmp_path / "faults.db"), clock=clock) as workspace:
            workspace.platforms.add("sandbox", platform)
            workspace.apply(program)
            clock.now = FIRST_BRIEF
            platform.faults.extend(["after", "before", "after", "after", "before"] * 3)
            for _ in range(4):
                workspace.apply(program)
            rows = brief_rows(workspace, program)
        assert len(briefs(store)) == len(program.alliance)
        assert all(r.state == "done" for r in rows)

    def test_overdue_occurrences_are_skipped_for_the_latest(self, ws, program, clock, store):
        clock.now = FIRST_BRIEF + timedelta(days=29)
        report = ws.apply(program)
        assert report.skipped >= len(program.alliance)
        assert len(briefs(store)) == len(program.alliance)

    def test_without_the_report_a_due_brief_is_held_with_the_reason(self, program):
        channels = {c.name: c for c in BUILTIN_CHANNELS}
        planned = plan(program, {}, {}, FIRST_BRIEF, channels)
        held = [a for a in planned.actions if a.action == "hold"]
        assert len(held) == len(program.alliance)
        assert "held" in planned.render()


class TestCheckInFile:
    def test_checkin_needs_a_person_channel(self, tmp_path):
        text = EXAMPLE.read_text().replace(
            "every: {days: 14, from: 2027-02-01 08:00, until: 2027-06-30}\n",
            "every: {days: 14, from: 2027-02-01 08:00, until: 2027-06-30}\n"
            "    channel: announcement\n", 1)
        path = tmp_path / "p.yaml"
        path.write_text(text)
        from itsm_change_sdk.errors import ProgramError
        with pytest.raises(ProgramError) as err:
            load_program(path)
        assert "checkins.0.channel" in str(err.value)
        assert "use 'task'" in str(err.value)

    def test_checkin_needs_an_alliance(self, tmp_path, program):
        import yaml
        data = yaml.safe_load(EXAMPLE.read_text())
        data.pop("alliance")
        data["communications"] = [c for c in data["communications"]
                                  if "alliance" not in c["audience"]]
        path = tmp_path / "p.yaml"
        path.write_text(yaml.safe_dump(data))
        from itsm_change_sdk.errors import ProgramError
        with pytest.raises(ProgramError) as err:
            load_program(path)
        assert "checkins.0" in str(err.value)

