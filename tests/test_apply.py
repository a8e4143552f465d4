"""Plan and apply against the sandbox: reconcile, update in place, retire, fire once."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from itsm_change_sdk import Workspace, hookimpl, load_program
from itsm_change_sdk.demo import SimClock
from itsm_change_sdk.model import EffectKind
from itsm_change_sdk.sandbox.platform import SandboxPlatform
from itsm_change_sdk.sandbox.store import SandboxStore, memberships

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "portal-rollout" / "program.yaml"
PILOT_DAY = datetime(2027, 1, 12, 8, 0, tzinfo=UTC)


@pytest.fixture
def program():
    return load_program(EXAMPLE)


@pytest.fixture
def clock():
    return SimClock(PILOT_DAY)


@pytest.fixture
def store(tmp_path, clock):
    return SandboxStore(f"sqlite:///{tmp_path / 'sandbox.db'}", clock=clock)


@pytest.fixture
def org(store, program):
    """Each unit's group with three agents, managers, and the change record."""
    store.add_ticket(title="Portal rollout", kind="change", channel=None,
                     opened_at=PILOT_DAY - timedelta(days=30))
    for member in program.alliance:
        store.add_person(member.name, member.email or f"{member.id}@example.com", member.id)
    people = {}
    for unit in program.units:
        members = [store.add_person(f"{unit.id} agent {i}", f"{unit.id}.{i}@example.com")
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


def training_tasks(store):
    return store.all_tasks(kind="training")


class TestPlan:
    def test_plan_writes_nothing(self, ws, program, store):
        plan = ws.plan(program)
        assert plan.count("create") > 0
        assert training_tasks(store) == []
        assert ws.ledger.effects(program.id) == []

    def test_pilot_units_get_training_later_waves_do_not(self, ws, program):
        plan = ws.plan(program)
        units = {a.effect.meta["unit"] for a in plan.actions
                 if a.kind == "training" and a.effect is not None}
        assert units == {"sd-tier1"}

    def test_render_shows_each_action_and_a_summary(self, ws, program):
        text = ws.plan(program).render()
        assert "+ create  training" in text
        assert text.splitlines()[-1].startswith(f"Plan for {program.id} at 2027-01-12 08:00")


class TestApply:
    def test_apply_creates_each_effect_once(self, ws, program, store, org):
        report = ws.apply(program)
        assert report.ok and report.created > 0
        tasks = training_tasks(store)
        pilot = {p.id for p in org["sd-tier1"]}
        modules = [m for m in program.training if "sd-tier1" in m.audience]
        assert len(tasks) == len(pilot) * len(modules)
        assert {t["assignee"] for t in tasks} == pilot

    def test_reapply_unchanged_makes_no_writes(self, ws, program, store):
        ws.apply(program)
        before = (len(store.all_tasks()), len(store.announcements()))
        plan = ws.plan(program)
        assert plan.writes == 0
        report = ws.apply(program)
        assert report.created == report.updated == report.retired == 0
        assert (len(store.all_tasks()), len(store.announcements())) == before

    def test_edited_due_date_updates_tasks_in_place(self, ws, program, store):
        ws.apply(program)
        count = len(training_tasks(store))
        module = program.training[0]
        edited = dataclasses.replace(program, training=(
            dataclasses.replace(module, due_days=module.due_days + 7),
            *program.training[1:]))
        plan = ws.plan(edited)
        assert {a.action for a in plan.actions} == {"update"}
        ws.apply(edited)
        tasks = training_tasks(store)
        assert len(tasks) == count
        wave = program.wave("pilot")
        updated = [t for t in tasks if t["key"].split(":")[3] == module.id]
        assert {t["due"] for t in updated} == {wave.starts + timedelta(days=module.due_days + 7)}

    def test_removed_module_retires_open_tasks_but_keeps_completed(self, ws, program, store):
        ws.apply(program)
        module = next(m for m in program.training if "sd-tier1" in m.audience)
        tasks = [t for t in training_tasks(store) if f":{module.id}:" in t["key"]]
        store.set_task_state(tasks[0]["number"], "closed")
        ws.sync(program)
        trimmed = dataclasses.replace(
            program, training=tuple(m for m in program.training if m.id != module.id))
        report = ws.apply(trimmed)
        assert report.retired == len(tasks) - 1
        states = {t["number"]: t["state"] for t in training_tasks(store)}
        assert states[tasks[0]["number"]] == "closed"
        assert all(states[t["number"]] == "cancelled" for t in tasks[1:])

    def test_each_retirement_says_why(self, ws, program, store, org):
        ws.apply(program)
        module = next(m for m in program.training if "sd-tier1" in m.audience)
        trimmed = dataclasses.replace(
            program, training=tuple(m for m in program.training if m.id != module.id))
        reasons = {a.detail for a in ws.plan(trimmed).actions if a.action == "retire"}
        assert reasons == {f"training module {module.id!r} was removed from the program"}
        leaver = org["sd-tier1"][0]
        with store.engine.begin() as conn:
            conn.execute(memberships.delete().where(memberships.c.person == leaver.id))
        retired = [a for a in ws.plan(program).actions if a.action == "retire"]
        assert retired and all(a.key.endswith(f":{leaver.id}") for a in retired)
        assert {a.detail for a in retired} == {f"{leaver.id} is no longer a member of sd-tier1"}

    def test_a_plan_dated_before_the_wave_keeps_its_tasks(self, ws, program, clock):
        """The ledger ahead of the plan's clock (a rehearsal): nothing changed, nothing retired."""
        ws.apply(program)
        clock.now = datetime(2026, 12, 1, tzinfo=UTC)
        assert [a for a in ws.plan(program).actions if a.action == "retire"] == []

    def test_cadenced_check_in_fires_once_per_occurrence(self, ws, program, store, clock):
        checkin = next(e for e in program.communications if e.cadence is not None)
        first, second = checkin.cadence.occurrences()[:2]
        clock.now = first + timedelta(hours=1)
        ws.apply(program)
        ws.apply(program)
        keys = {r.key for r in ws.ledger.effects(program.id) if f":{checkin.id}:" in r.key}
        assert keys and all(f":{first:%Y%m%dT%H%M}:" in k for k in keys)
        clock.now = second + timedelta(hours=1)
        ws.apply(program)
        ws.apply(program)
        rows = [r for r in ws.ledger.effects(program.id) if f":{checkin.id}:" in r.key]
        occurrences = {r.key.split(":")[4] for r in rows}
        assert occurrences == {f"{first:%Y%m%dT%H%M}", f"{second:%Y%m%dT%H%M}"}
        recipients_per_occurrence = {o: sum(1 for r in rows if r.key.split(":")[4] == o)
                                     for o in occurrences}
        assert len(set(recipients_per_occurrence.values())) == 1

    def test_overdue_occurrences_are_skipped_not_sent(self, ws, program, clock):
        checkin = next(e for e in program.communications if e.cadence is not None)
        occurrences = checkin.cadence.occurrences()
        clock.now = occurrences[3] + timedelta(hours=1)
        report = ws.apply(program)
        assert report.skipped > 0
        rows = [r for r in ws.ledger.effects(program.id) if f":{checkin.id}:" in r.key]
        sent = {r.key.split(":")[4] for r in rows if r.state == "done"}
        assert sent == {f"{occurrences[3]:%Y%m%dT%H%M}"}
        assert {r.state for r in rows} == {"done", "skipped"}

    def test_observer_sees_each_communication_once(self, ws, program):
        sent = []

        class Recorder:
            @hookimpl
            def itsm_change_communication_sent(self, program, effect):
                sent.append(effect.key)

        ws.add_observer(Recorder())
        ws.apply(program)
        ws.apply(program)
        assert sent and len(sent) == len(set(sent))
        messages = [r.key for r in ws.ledger.effects(program.id, kind=str(EffectKind.MESSAGE))]
        assert sorted(sent) == sorted(messages)


class TestRecovery:
    def test_write_applied_but_unanswered_is_recorded_not_repeated(self, ws, program, store):
        platform = ws.platforms.instances["sandbox"]
        platform.faults.extend(["after"] * 3)
        ws.apply(program)
        ws.apply(program)
        keys = [t["key"] for t in store.all_tasks()]
        assert len(keys) == len(set(keys))
        assert ws.plan(program).writes == 0

    def test_pending_rows_from_a_dead_run_are_looked_up(self, ws, program, store, clock):
        runner = ws.runner(program)
        plan = runner.plan()
        action = next(a for a in plan.actions if a.kind == "training")
        ws.ledger.claim(action.effect, clock.now - timedelta(hours=1))
        store.upsert_task(key=action.effect.key, kind="training", title=action.effect.title,
                          body=action.effect.body, assignee=action.effect.recipient.id,
                          due=action.effect.due)
        report = ws.apply(program)
        assert report.recovered == 1
        assert sum(1 for t in store.all_tasks() if t["key"] == action.effect.key) == 1
        assert ws.ledger.get(action.effect.key).state == "done"


class TestSync:
    def test_completion_feedback_and_prompts_are_read_back_once(self, ws, program, store, org):
        ws.apply(program)
        task = training_tasks(store)[0]
        store.set_task_state(task["number"], "closed")
        agent = org["sd-tier1"][0]
        ticket = store.add_ticket(title="Reset my password", category="password reset",
                                  group=program.unit("sd-tier1").group, channel="phone")
        store.add_note(ticket.number, agent.id,
                       "#feedback knowledge=2 ability=3 callers ask for a guide", internal=True)
        first = ws.sync(program)
        second = ws.sync(program)
        assert (first.completed, first.feedback) == (1, 1)
        assert first.prompts >= 1
        assert (second.completed, second.feedback, second.prompts) == (0, 0, 0)
        (response,) = list(ws.ledger.feedback(program.id))
        assert response.scores == {"knowledge": 2, "ability": 3}
        assert response.text == "callers ask for a guide"
        assert response.unit == "sd-tier1"
        notes = [n for n in store.notes(ticket.number) if n.author == "itsm-change"]
        assert len(notes) == len({n.text for n in notes}) >= 1

    def test_prompts_skip_units_whose_wave_has_not_started(self, ws, program, store):
        ticket = store.add_ticket(title="Password", category="password reset",
                                  group=program.unit("app-support").group, channel="phone")
        ws.sync(program)
        assert [n for n in store.notes(ticket.number) if n.author == "itsm-change"] == []


def test_apply_works_the_same_on_a_postgres_ledger(postgres_url, clock, store, org, program):
    with Workspace(postgres_url, clock=clock) as ws:
        ws.platforms.add("sandbox", SandboxPlatform(store))
        first = ws.apply(program)
        assert first.ok and first.created > 0
        assert ws.apply(program).created == 0
        assert ws.plan(program).writes == 0
    keys = [t["key"] for t in store.all_tasks()]
    assert len(keys) == len(set(keys)) > 0
