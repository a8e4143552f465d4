"""The management alliance at work: check-in briefs, leaders, quoted results, no silence."""

from __future__ import annotations

import dataclasses
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



LEADERS_DUE = datetime(2027, 3, 1, tzinfo=UTC).date()
LEADERS_ASSIGNED = datetime(2027, 2, 22, 8, 0, tzinfo=UTC)


def leader_training(ws, program):
    return {r.meta["leader"]: r for r in ws.ledger.effects(program.id, kind="training")
            if "leader" in r.meta}


class TestLeaders:
    def test_the_sponsor_is_read_from_the_file(self, program):
        assert [s.id for s in program.sponsors] == ["morgan-lee"]

    def test_leaders_get_their_peoples_module_due_when_their_wave_starts(
            self, ws, program, clock):
        clock.now = LEADERS_ASSIGNED - timedelta(days=1)
        ws.apply(program)
        assert leader_training(ws, program) == {}
        clock.now = LEADERS_ASSIGNED
        ws.apply(program)
        rows = leader_training(ws, program)
        # Wave 2's managers speak for its units; the pilot's and wave 3's do not.
        assert set(rows) == {"priya-nair", "tom-becker", "morgan-lee"}
        assert all(r.meta["module"] == "portal-escalations" for r in rows.values())
        assert all(r.due == LEADERS_DUE for r in rows.values())

    def test_leader_training_stays_out_of_the_units_figures(self, ws, program, clock):
        clock.now = LEADERS_ASSIGNED
        ws.apply(program)
        report = ws.runner(program).measures()
        assigned = sum(c.assigned for c in report.training.by_unit.values())
        unit_rows = [r for r in ws.ledger.effects(program.id, kind="training")
                     if "unit" in r.meta]
        assert assigned == len(unit_rows)
        assert report.training.leaders[("priya-nair", "portal-escalations")].assigned == 1

    def test_report_shows_what_each_leader_did(self, ws, program, clock, store):
        clock.now = LEADERS_ASSIGNED
        ws.apply(program)
        ws.ledger.sign_off(program.id, "pilot", "dana-reyes", "", PILOT_START - timedelta(days=2))
        ws.ledger.sign_off(program.id, "wave-2", "priya-nair", "",
                           datetime(2027, 2, 26, tzinfo=UTC))
        for task in store.all_tasks():
            if task["assignee"] in ("priya-nair", "morgan-lee"):
                store.set_task_state(task["number"], "closed", LEADERS_ASSIGNED)
        clock.now = datetime(2027, 3, 2, 9, 0, tzinfo=UTC)
        ws.sync(program)
        report = ws.runner(program).measures()
        rows = {r.id: r for r in report.leaders}
        assert set(rows) == {m.id for m in program.alliance} | {"morgan-lee"}
        priya, tom, morgan, dana = (rows[k] for k in ("priya-nair", "tom-becker",
                                                      "morgan-lee", "dana-reyes"))
        assert (priya.training_done, priya.training_assigned) == (1, 1)
        assert (tom.training_done, tom.training_assigned) == (0, 1)
        assert (morgan.training_done, morgan.role) == (1, "sponsor")
        # Briefs closed count as check-ins held.
        assert priya.checkins == 1 and priya.checkins_held == 1
        assert tom.checkins == 1 and tom.checkins_held == 0
        # Sign-offs: before the wave started is on time; a started wave unsigned is missing.
        assert (dana.signoffs_on_time, dana.signoffs) == (1, 1)
        assert (priya.signoffs_on_time, priya.signoffs) == (1, 1)
        assert tom.late == ["wave-2"]
        from itsm_change_sdk.report.html import render_html
        from itsm_change_sdk.report.terminal import render_text
        text = "\n".join(render_text(report))
        assert "Leaders (what they do" in text
        assert "late or missing: wave-2" in text
        assert 'id="leaders"' in render_html(report)

    def test_a_message_task_a_leader_closed_counts_as_acknowledged(self, ws, program,
                                                                      clock, store):
        events = tuple(dataclasses.replace(e, channel="task", record={})
                       if e.id == "kickoff-alliance" else e for e in program.communications)
        tasked = dataclasses.replace(program, communications=events)
        clock.now = datetime(2027, 1, 4, 10, 0, tzinfo=UTC)
        ws.apply(tasked)
        dana = next(t for t in store.all_tasks() if t["assignee"] == "dana-reyes")
        store.set_task_state(dana["number"], "closed", clock.now)
        ws.sync(tasked)
        rows = {r.id: r for r in ws.runner(tasked).measures().leaders}
        assert (rows["dana-reyes"].acknowledged, rows["dana-reyes"].messages) == (1, 1)
        assert (rows["tom-becker"].acknowledged, rows["tom-becker"].messages) == (0, 1)

    def test_a_brief_closed_by_its_reader_is_read_back(self, ws, program, clock, store):
        clock.now = FIRST_BRIEF
        ws.apply(program)
        dana = next(t for t in briefs(store) if t["assignee"] == "dana-reyes")
        store.set_task_state(dana["number"], "closed", FIRST_BRIEF + timedelta(hours=2))
        clock.now = FIRST_BRIEF + timedelta(hours=3)
        ws.sync(program)
        row = next(r for r in brief_rows(ws, program) if r.recipient == "dana-reyes")
        assert row.completed


class TestLeadersGate:
    def test_wave_two_waits_for_its_managers_training(self, ws, program, clock, store):
        clock.now = LEADERS_ASSIGNED
        ws.apply(program)
        gate = ws.runner(program).measures().gate("wave-2")
        leaders = [c for c in gate.conditions if c.check == "leaders"]
        assert [c.ok for c in leaders] == [False, False]
        assert "not yet: portal-escalations" in leaders[0].text
        for task in store.all_tasks(kind="training"):
            if task["assignee"] in ("priya-nair", "tom-becker"):
                store.set_task_state(task["number"], "closed", LEADERS_ASSIGNED)
        clock.now = LEADERS_ASSIGNED + timedelta(hours=1)
        ws.sync(program)
        gate = ws.runner(program).measures().gate("wave-2")
        assert all(c.ok for c in gate.conditions if c.check == "leaders")

    def test_without_the_setting_the_gate_does_not_ask(self, ws, program, clock):
        relaxed = dataclasses.replace(program, waves=tuple(
            dataclasses.replace(w, leaders_trained=False) for w in program.waves))
        clock.now = LEADERS_ASSIGNED
        gate = ws.runner(relaxed).measures().gate("wave-2")
        assert not [c for c in gate.conditions if c.check == "leaders"]

    def test_a_gate_asking_for_leaders_with_no_leader_module_says_what_to_add(
            self, ws, program, clock):
        modules = tuple(dataclasses.replace(m, audience=tuple(
            a for a in m.audience if a != "alliance")) for m in program.training)
        bare = dataclasses.replace(program, training=modules)
        gate = ws.runner(bare).measures().gate("wave-2")
        texts = [c.text for c in gate.conditions if c.check == "leaders"]
        assert texts and all("'alliance' in its audience" in t for t in texts)


RESULTS_DAY = datetime(2027, 2, 15, 9, 0, tzinfo=UTC)


def results_rows(ws, program):
    return [r for r in ws.ledger.effects(program.id) if r.meta.get("event") == "pilot-results"]


def pilot_tickets(store, count, portal):
    """``count`` incidents in the pilot's group since go-live, ``portal`` of them by portal,
    each resolved ten hours after it was opened."""
    for n in range(count):
        opened = datetime(2027, 1, 19, 9, 0, tzinfo=UTC) + timedelta(hours=20 * n)
        ticket = store.add_ticket(title=f"Ticket {n}", opened_at=opened,
                                  group="Service Desk Tier 1",
                                  channel="portal" if n < portal else "phone")
        store.update_ticket(ticket.number, state="resolved", at=opened + timedelta(hours=10))


class TestQuotedResults:
    def test_a_number_not_measurable_yet_holds_the_message_and_plan_says_why(
            self, ws, program, clock, store):
        pilot_tickets(store, 5, portal=3)
        clock.now = RESULTS_DAY
        planned = ws.plan(program)
        held = [a for a in planned.actions if a.action == "hold" and "pilot-results" in a.key]
        assert len(held) == 1
        assert "{{ goal.portal-share.sd-tier1.value }} cannot be measured yet" in held[0].detail
        assert "min_sample" in held[0].detail
        assert "held" in planned.render()
        ws.apply(program)
        assert results_rows(ws, program) == []

    def test_measured_numbers_are_sent_and_recorded_with_the_message(
            self, ws, program, clock, store):
        ws.apply(program)
        pilot_tickets(store, 24, portal=12)
        clock.now = RESULTS_DAY
        report = ws.apply(program)
        assert report.ok
        [row] = results_rows(ws, program)
        [sent] = [a for a in store.announcements() if a["key"] == row.key]
        assert "raised\n50% of its incidents" in sent["body"] or \
            "raised 50% of its incidents" in " ".join(sent["body"].split())
        assert "(baseline 18%, target 50%)" in " ".join(sent["body"].split())
        assert "resolved them in 10.0h" in " ".join(sent["body"].split())
        assert "{{" not in sent["body"] and "\u27e6" not in sent["body"]
        assert "goal.portal-share.sd-tier1.value=50%" in row.meta["quoted"]
        assert "training.sd-tier1.completion=" in row.meta["quoted"]

    def test_sent_once_then_history(self, ws, program, clock, store):
        ws.apply(program)
        pilot_tickets(store, 24, portal=12)
        clock.now = RESULTS_DAY
        ws.apply(program)
        assert len(results_rows(ws, program)) == 1
        pilot_tickets(store, 10, portal=10)
        clock.now = RESULTS_DAY + timedelta(days=1)
        planned = ws.plan(program)
        assert not [a for a in planned.actions if "pilot-results" in a.key]

    def test_a_quote_naming_no_goal_is_refused_by_validate(self, tmp_path):
        text = EXAMPLE.read_text().replace("{{ goal.portal-share.baseline }}",
                                           "{{ goal.portal-shares.baseline }}")
        path = tmp_path / "p.yaml"
        path.write_text(text)
        from itsm_change_sdk.errors import ProgramError
        with pytest.raises(ProgramError) as err:
            load_program(path)
        message = str(err.value)
        assert ".template" in message and "names no goal" in message

    def test_a_quote_naming_no_unit_is_refused(self, tmp_path):
        text = EXAMPLE.read_text().replace("{{ training.sd-tier1.completion }}",
                                           "{{ training.sd-tier9.completion }}")
        path = tmp_path / "p.yaml"
        path.write_text(text)
        from itsm_change_sdk.errors import ProgramError
        with pytest.raises(ProgramError) as err:
            load_program(path)
        assert "names no unit" in str(err.value)


GO_LIVE = datetime(2027, 1, 18, 9, 0, tzinfo=UTC)


def without(program, *events):
    return dataclasses.replace(program, communications=tuple(
        e for e in program.communications if e.id not in events))


class TestNoRadioSilence:
    def test_the_example_validates_without_warnings(self):
        from click.testing import CliRunner

        from itsm_change_sdk.cli import cli
        result = CliRunner().invoke(cli, ["validate", str(EXAMPLE)])
        assert result.exit_code == 0
        assert "warning" not in result.output

    def test_validate_warns_on_each_kind_of_silence(self, tmp_path):
        import yaml
        from click.testing import CliRunner

        from itsm_change_sdk.cli import cli
        data = yaml.safe_load(EXAMPLE.read_text())
        data.pop("checkins")
        data["communications"] = [c for c in data["communications"]
                                  if c["id"] not in ("golive-wave-3", "checkin-wave-3")]
        for c in data["communications"]:
            if c["id"] == "pilot-review":
                c["template"] = "Please review the pilot's results and sign off."
        path = tmp_path / "quiet.yaml"
        path.write_text(yaml.safe_dump(data))
        result = CliRunner().invoke(cli, ["validate", str(path)])
        assert result.exit_code == 0, result.output
        warnings = [line for line in result.output.splitlines() if line.startswith("warning")]
        assert len(warnings) == 3, result.output
        assert any("app-support has no communication on or after its go-live" in w
                   for w in warnings)
        assert any("(pilot-review): offers no way to answer" in w for w in warnings)
        assert any("no check-in is planned for the management alliance" in w
                   for w in warnings)

    def test_report_flags_a_live_unit_gone_quiet(self, ws, program, clock):
        quiet = without(program, "checkin-pilot", "pilot-results")
        clock.now = GO_LIVE
        ws.apply(quiet)
        clock.now = GO_LIVE + timedelta(days=15)
        report = ws.runner(quiet).measures()
        [silent] = report.silent
        assert (silent.unit, silent.days, str(silent.last_message)) == (
            "sd-tier1", 15, "2027-01-18")
        from itsm_change_sdk.report.terminal import render_text
        text = "\n".join(render_text(report))
        assert "Radio silence (live units without a message for more than 14 days)" in text
        assert "Service Desk Tier 1" in text.split("Radio silence")[1]

    def test_regular_check_ins_keep_a_unit_from_being_flagged(self, ws, program, clock):
        clock.now = GO_LIVE
        ws.apply(program)
        clock.now = datetime(2027, 1, 25, 10, 30, tzinfo=UTC)
        ws.apply(program)
        clock.now = GO_LIVE + timedelta(days=15)
        assert ws.runner(program).measures().silent == []

    def test_the_number_of_days_is_a_program_setting(self, ws, program, clock):
        quiet = dataclasses.replace(without(program, "checkin-pilot", "pilot-results"),
                                    silence_days=30)
        clock.now = GO_LIVE
        ws.apply(quiet)
        clock.now = GO_LIVE + timedelta(days=20)
        assert ws.runner(quiet).measures().silent == []


class TestLeaderTrainingKept:
    def test_an_earlier_plan_keeps_leader_tasks_and_a_dropped_leader_is_retired(
            self, ws, program, clock):
        clock.now = LEADERS_ASSIGNED
        ws.apply(program)
        clock.now = LEADERS_ASSIGNED - timedelta(days=3)
        assert not [a for a in ws.plan(program).actions if a.action == "retire"]
        clock.now = LEADERS_ASSIGNED + timedelta(days=1)
        modules = tuple(dataclasses.replace(m, audience=tuple(
            a for a in m.audience if a != "sponsors")) for m in program.training)
        retired = [a for a in ws.plan(dataclasses.replace(program, training=modules)).actions
                   if a.action == "retire"]
        assert [a.detail for a in retired] == [
            "morgan-lee no longer takes 'portal-escalations' as a leader"]
