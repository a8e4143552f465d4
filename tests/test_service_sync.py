"""The polling fallback (``itsm-change sync``): incremental, and it resumes where it stopped."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from itsm_change_sdk import Workspace, load_program
from itsm_change_sdk.cli import cli
from itsm_change_sdk.demo import SimClock
from itsm_change_sdk.errors import InvalidRequest
from itsm_change_sdk.hookspecs import hookimpl
from itsm_change_sdk.model import TicketFilter
from itsm_change_sdk.sandbox.platform import SandboxPlatform
from itsm_change_sdk.sandbox.store import SandboxStore

NOW = datetime(2027, 1, 12, 9, 0, tzinfo=UTC)

PROGRAM = """
id: poll
title: Polling test
platforms: [sandbox]
goals:
  - {id: share, title: Portal share, metric: channel_share, params: {channel: portal},
     filter: {kinds: [incident]}, baseline: 0.2, target: 0.6}
waves:
  - {id: pilot, title: Pilot, starts: 2027-01-11, go_live: 2027-01-18}
units:
  - {id: desk, title: Desk, wave: pilot, platform: sandbox, group: Desk}
training:
  - {id: basics, title: Basics, objectives: [Log a portal ticket], audience: [desk],
     due_days: 7}
communications: []
surveys:
  - {id: pulse, title: Pulse, question: How is it going?}
prompts:
  - id: reset
    title: Password reset
    filter: {categories: [password reset]}
    text: Point the caller to self-service reset.
    active: {from: 2027-01-11, until: 2027-06-30}
"""


class CrashingSandbox(SandboxPlatform):
    """Dies (as a killed process would, with no result recorded) after ``survive`` notes."""

    survive: int | None = None
    refuse_kinds = False
    """Answer a search by kind as Jira answers an issue type the project lacks: 400."""

    @hookimpl
    def itsm_change_find_tickets(self, filter, since, open_only):
        if self.refuse_kinds and filter.kinds:
            raise InvalidRequest("The value 'request' does not exist for the field "
                                 "'issuetype'.", platform="sandbox", status_code=400)
        return super().itsm_change_find_tickets(filter, since, open_only)

    def _note(self, effect, internal):
        if self.survive is not None:
            if self.survive == 0:
                raise RuntimeError("killed")
            self.survive -= 1
        return super()._note(effect, internal)


@pytest.fixture
def clock():
    return SimClock(NOW)


@pytest.fixture
def store(tmp_path: Path, clock):
    store = SandboxStore(f"sqlite:///{tmp_path / 'sandbox.db'}", clock=clock)
    store.add_group("Desk", [store.add_person(f"Desk {i}", f"d{i}@example.com")
                             for i in range(2)])
    return store


@pytest.fixture
def program(tmp_path: Path):
    path = tmp_path / "program.yaml"
    path.write_text(PROGRAM)
    return load_program(path)


@pytest.fixture
def platform(store):
    return CrashingSandbox(store)


@pytest.fixture
def ws(tmp_path: Path, clock, platform):
    with Workspace(str(tmp_path / "ledger.db"), clock=clock) as workspace:
        workspace.platforms.add("sandbox", platform)
        yield workspace


def reset_ticket(store, title="Locked out"):
    return store.add_ticket(title=title, category="password reset", group="Desk")


def prompt_count(store, number):
    return sum(1 for n in store.notes(number) if n.author == "itsm-change")


def test_second_sync_picks_up_only_the_new(ws, store, program, clock, monkeypatch):
    ws.apply(program)
    first = [reset_ticket(store) for _ in range(3)]
    store.add_note(first[0].number, "u-0001", "#feedback aw=3 ok so far", internal=False)
    report = ws.sync(program)
    assert (report.prompts, report.feedback) == (3, 1)

    clock.now += timedelta(hours=1)
    assert ws.sync(program).summary().startswith("0 trainings completed")

    reads = []
    real = store.tickets
    monkeypatch.setattr(store, "tickets", lambda f=None, since=None, open_only=False: (
        reads.append(since) or real(f, since, open_only)))
    clock.now += timedelta(hours=1)
    new = reset_ticket(store, "New one")
    store.add_note(new.number, "u-0002", "#feedback de=4 better", internal=False)
    task = store.all_tasks(kind="training")[0]
    store.set_task_state(task["number"], "closed")
    report = ws.sync(program)
    assert (report.prompts, report.feedback, report.completed) == (1, 1, 1)
    assert reads and all(s is not None and s >= NOW - timedelta(minutes=1) for s in reads), \
        "an updated-since read from the cursor, not a full read"
    assert all(prompt_count(store, t.number) == 1 for t in [*first, new])


def test_interrupted_sync_resumes_without_duplicates(ws, store, program, platform, clock):
    tickets = [reset_ticket(store, f"Locked out {i}") for i in range(5)]
    platform.survive = 2
    with pytest.raises(RuntimeError, match="killed"):
        ws.sync(program)
    assert sum(prompt_count(store, t.number) for t in tickets) == 2

    platform.survive = None
    clock.now += timedelta(minutes=6)  # the dead run's claims have expired
    ws.sync(program)
    assert [prompt_count(store, t.number) for t in tickets] == [1] * 5
    rows = ws.ledger.effects(program.id, kind="prompt")
    assert len(rows) == 5 and {r.state for r in rows} == {"done"}


def test_a_refused_prompt_query_fails_alone(ws, store, program, platform):
    """One prompt's filter the platform refuses (a 400 from its search) costs that prompt,
    named with the platform's message; the other prompts are still posted."""
    refused = dataclasses.replace(program.prompts[0], id="bad-kind",
                                  filter=TicketFilter(kinds=("request",)))
    program = dataclasses.replace(program, prompts=(refused, *program.prompts))
    platform.refuse_kinds = True
    tickets = [reset_ticket(store, f"Locked out {i}") for i in range(3)]
    report = ws.sync(program)
    assert report.prompts == 3
    assert [prompt_count(store, t.number) for t in tickets] == [1, 1, 1]
    (error,) = report.errors
    assert "bad-kind" in error and "'request' does not exist" in error


def test_status_shows_matched_and_prompted_per_prompt(ws, store, program, tmp_path):
    tickets = [reset_ticket(store, f"Locked out {i}") for i in range(4)]
    ws.sync(program)
    key = f"chg:{program.id}:prompt:reset:sandbox:{tickets[0].number}"
    ws.ledger.mark(key, "failed", error="503 from the platform")
    result = CliRunner().invoke(cli, ["status", str(tmp_path / "program.yaml"),
                                      "--db", str(tmp_path / "ledger.db")])
    assert result.exit_code == 0, result.output
    assert "prompt reset: 4 tickets matched, 3 prompted" in result.output


def test_a_quiet_sync_moves_its_cursors(ws, store, program, clock, monkeypatch):
    """Nothing found is still a successful pass: the next sync reads from there, not from
    the beginning of the program's history."""
    asked = []
    real = store.notes_containing
    monkeypatch.setattr(store, "notes_containing",
                        lambda marker, since: asked.append(since) or real(marker, since))
    ws.sync(program)
    clock.now += timedelta(hours=1)
    ws.sync(program)
    first_wave = min(w.starts for w in program.waves)
    # The first pass reads the program's time only (from the day before its first wave,
    # its first write or now, whichever is earliest: this rehearsal's clock runs ahead of
    # the real one), never the platform's whole history; the second, from where the first
    # ended.
    assert asked[0] is not None and asked[0].date() < first_wave
    assert asked[0] > min(clock.now, datetime.now(UTC)) - timedelta(days=2)
    assert asked[1] is not None and asked[1] >= asked[0]


def test_training_status_is_read_for_open_assignments_only(ws, store, program, clock,
                                                           monkeypatch):
    ws.apply(program)
    tasks = store.all_tasks(kind="training")
    store.set_task_state(tasks[0]["number"], "closed")
    assert ws.sync(program).completed == 1
    asked = []
    real = store.tasks_by_numbers
    monkeypatch.setattr(store, "tasks_by_numbers",
                        lambda numbers: asked.extend(numbers) or real(numbers))
    clock.now += timedelta(hours=1)
    ws.sync(program)
    assert sorted(asked) == sorted(t["number"] for t in tasks[1:])
