"""The scheduler: communications fire on time, once per occurrence, with one replica or two
sharing a PostgreSQL ledger."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from itsm_change_sdk import Workspace, load_program
from itsm_change_sdk.demo import SimClock
from itsm_change_sdk.hookspecs import hookimpl
from itsm_change_sdk.ledger import Ledger
from itsm_change_sdk.sandbox.platform import SandboxPlatform
from itsm_change_sdk.sandbox.store import SandboxStore
from itsm_change_sdk.service.scheduler import Scheduler, TickLock

START = datetime(2027, 1, 10, 8, 0, tzinfo=UTC)
DAYS = 30

PROGRAM = """
id: sched
title: Scheduler test
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
communications:
  - {id: kickoff, title: Kickoff, channel: announcement, audience: [desk],
     at: 2027-01-11 09:00, template: "{program} starts for {unit}."}
  - {id: weekly, title: Weekly update, channel: announcement, audience: [desk],
     every: {days: 7, from: 2027-01-12 10:00, until: 2027-02-28},
     template: "Week {occurrence} for {unit}."}
  - {id: checkin, title: Check-in, channel: task, audience: [desk],
     every: {days: 7, from: 2027-01-13 10:00, until: 2027-02-28}, survey: pulse,
     template: "Check-in {occurrence}: {survey}"}
surveys:
  - {id: pulse, title: Pulse, question: How is it going?}
prompts: []
"""

# Occurrences before START + DAYS: weekly Jan 12, 19, 26, Feb 2; check-ins Jan 13 ... Feb 3.
WEEKLY = 4
CHECKINS = 4


def seed(store: SandboxStore) -> None:
    store.add_group("Desk", [store.add_person(f"Desk {i}", f"d{i}@example.com")
                             for i in range(3)])


def write_program(tmp_path: Path) -> Path:
    path = tmp_path / "program.yaml"
    path.write_text(PROGRAM)
    return path


class Sent:
    def __init__(self):
        self.keys = []

    @hookimpl
    def itsm_change_communication_sent(self, program, effect):
        self.keys.append(effect.key)


def assert_each_occurrence_once(store: SandboxStore, skipped: frozenset[str] = frozenset()
                                ) -> None:
    """Each occurrence is on the sandbox exactly once, or (only where replicas' simulated
    clocks ran apart) recorded as superseded by a later one and never sent."""
    announcements = Counter(a["key"] for a in store.announcements())
    tasks = Counter(t["key"] for t in store.all_tasks())
    assert max(announcements.values()) == 1 and max(tasks.values()) == 1
    assert not skipped & (set(announcements) | set(tasks))
    weekly = [k for k in [*announcements, *skipped] if ":comm:weekly:" in k]
    checkins = [k for k in [*tasks, *skipped] if ":comm:checkin:" in k]
    assert len(weekly) == WEEKLY
    assert len(checkins) == CHECKINS * 3
    assert sum(":comm:kickoff:" in k for k in announcements) == 1


def test_ticks_fire_every_occurrence_once_on_time(tmp_path):
    clock = SimClock(START)
    store = SandboxStore(f"sqlite:///{tmp_path / 'sandbox.db'}", clock=clock)
    seed(store)
    program = load_program(write_program(tmp_path))
    sent = Sent()
    with Workspace(str(tmp_path / "ledger.db"), clock=clock) as ws:
        ws.platforms.add("sandbox", SandboxPlatform(store))
        ws.add_observer(sent, "sent")
        scheduler = Scheduler(ws, program)
        first_seen: dict[str, datetime] = {}
        for hour in range(0, DAYS * 24, 6):
            clock.now = START + timedelta(hours=hour)
            for _ in range(2):  # ticks closer together than occurrences
                report = scheduler.tick()
                assert report.ran and report.error is None
            for announcement in store.announcements():
                first_seen.setdefault(announcement["key"], clock.now)
    assert_each_occurrence_once(store)
    assert Counter(sent.keys) and max(Counter(sent.keys).values()) == 1
    # On time: each weekly occurrence appeared within one tick interval (6 h) of its time.
    weekly = sorted(v for k, v in first_seen.items() if ":comm:weekly:" in k)
    expected = [datetime(2027, 1, 12, 10, tzinfo=UTC) + timedelta(days=7 * i)
                for i in range(WEEKLY)]
    assert all(timedelta(0) <= got - want <= timedelta(hours=6)
               for got, want in zip(weekly, expected, strict=True))


def assert_one_holder_at_a_time(ledger: Ledger) -> None:
    first, second = TickLock(ledger, "p"), TickLock(ledger, "p")
    with first.hold() as held:
        assert held
        with second.hold() as also:
            assert not also
    with second.hold() as held:
        assert held


def test_tick_lock_lets_one_replica_run(tmp_path):
    assert_one_holder_at_a_time(Ledger(f"sqlite:///{tmp_path / 'ledger.db'}"))


@pytest.mark.postgres
def test_tick_lock_on_postgres(postgres_url):
    ledger = Ledger(postgres_url)
    try:
        assert_one_holder_at_a_time(ledger)
    finally:
        ledger.close()


REPLICA = textwrap.dedent('''
    """One replica: waits for the go file, then ticks through the calendar."""
    import json, sys, time
    from datetime import datetime, timedelta
    from pathlib import Path

    from itsm_change_sdk import Workspace, load_program
    from itsm_change_sdk.demo import SimClock
    from itsm_change_sdk.hookspecs import hookimpl
    from itsm_change_sdk.sandbox.platform import SandboxPlatform
    from itsm_change_sdk.sandbox.store import SandboxStore
    from itsm_change_sdk.service.scheduler import Scheduler

    program_file, ledger, sandbox, log, go, start, days, mode = sys.argv[1:9]
    clock = SimClock(datetime.fromisoformat(start))
    out = open(log, "a", buffering=1)

    class LoggingSandbox(SandboxPlatform):
        def _write(self, effect, apply):
            def logged():
                number = apply()
                out.write(json.dumps({"write": effect.key}) + "\\n")
                return number
            return super()._write(effect, logged)

    class Sent:
        @hookimpl
        def itsm_change_communication_sent(self, program, effect):
            out.write(json.dumps({"sent": effect.key}) + "\\n")

    program = load_program(program_file)
    with Workspace(ledger, clock=clock, concurrency=2) as ws:
        ws.platforms.add("sandbox", LoggingSandbox(SandboxStore(sandbox, clock=clock)))
        ws.add_observer(Sent(), "sent")
        scheduler = Scheduler(ws, program)
        print("READY", flush=True)
        while not Path(go).exists():
            time.sleep(0.01)
        for hour in range(0, int(days) * 24, 6):
            clock.now = datetime.fromisoformat(start) + timedelta(hours=hour)
            if mode == "scheduler":
                scheduler.tick()
            else:
                ws.apply(program)
    print("DONE", flush=True)
''')


def run_replicas(tmp_path: Path, ledger_url: str, mode: str) -> tuple[SandboxStore, list]:
    script = tmp_path / "replica.py"
    script.write_text(REPLICA)
    sandbox = f"sqlite:///{tmp_path / 'shared-sandbox.db'}"
    store = SandboxStore(sandbox, clock=SimClock(START))
    seed(store)
    Ledger(ledger_url).close()  # create the schema once, before the replicas race
    program_file = write_program(tmp_path)
    log, go = tmp_path / "writes.jsonl", tmp_path / "go"
    args = [str(program_file), ledger_url, sandbox, str(log), str(go), START.isoformat(),
            str(DAYS), mode]
    procs = [subprocess.Popen([sys.executable, str(script), *args], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        for proc in procs:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "READY", proc.stderr.read()
        go.touch()
        deadline = time.monotonic() + 180
        for proc in procs:
            proc.wait(timeout=max(1, deadline - time.monotonic()))
            assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    return store, entries


@pytest.mark.slow
@pytest.mark.postgres
def test_two_replicas_on_postgres_fire_each_occurrence_once(tmp_path, postgres_url):
    store, entries = run_replicas(tmp_path, postgres_url, "scheduler")
    ledger = Ledger(postgres_url)
    try:
        rows = ledger.effects("sched")
    finally:
        ledger.close()
    assert_each_occurrence_once(store, frozenset(r.key for r in rows if r.state == "skipped"))
    writes = Counter(e["write"] for e in entries if "write" in e)
    sent = Counter(e["sent"] for e in entries if "sent" in e)
    assert writes and max(writes.values()) == 1, [k for k, n in writes.items() if n > 1]
    assert sent and max(sent.values()) == 1
    assert {r.state for r in rows} <= {"done", "skipped"}
    assert {r.key for r in rows if r.state == "done"} == set(writes)
