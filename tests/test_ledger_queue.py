"""The event queue stays small and honest: an event that keeps failing becomes a dead letter
that status, /healthz and the log show with its reason, until it is retried or dropped; and
processed events are deleted after the retention period."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from itsm_change_sdk import Workspace, load_program
from itsm_change_sdk.cli import cli
from itsm_change_sdk.demo import SimClock
from itsm_change_sdk.model import TicketEvent, TicketEventKind
from itsm_change_sdk.sandbox.platform import SandboxPlatform
from itsm_change_sdk.sandbox.store import SandboxStore
from itsm_change_sdk.service.codec import event_to_payload
from itsm_change_sdk.service.processor import Processor
from itsm_change_sdk.service.server import EventService, ServeOptions

NOW = datetime(2027, 1, 12, 9, 0, tzinfo=UTC)
PROGRAM = """
id: svc
title: Queue test
platforms: [sandbox]
goals: []
waves:
  - {id: pilot, title: Pilot, starts: 2027-01-11, go_live: 2027-01-18}
units:
  - {id: desk, title: Desk, wave: pilot, platform: sandbox, group: Desk}
prompts:
  - id: reset
    title: Password reset
    filter: {categories: [password reset]}
    text: Point the caller to self-service reset.
    active: {from: 2027-01-11, until: 2027-06-30}
"""


@pytest.fixture
def clock():
    return SimClock(NOW)


@pytest.fixture
def store(tmp_path: Path, clock):
    store = SandboxStore(f"sqlite:///{tmp_path / 'sandbox.db'}", clock=clock)
    store.add_group("Desk", [store.add_person("Desk 1", "desk1@example.com")])
    return store


@pytest.fixture
def program_file(tmp_path: Path) -> Path:
    path = tmp_path / "program.yaml"
    path.write_text(PROGRAM)
    return path


@pytest.fixture
def ws(tmp_path: Path, clock, store):
    with Workspace(str(tmp_path / "ledger.db"), clock=clock) as workspace:
        workspace.platforms.add("sandbox", SandboxPlatform(store))
        yield workspace


def poison(ws, store, monkeypatch, event_id: str = "e1") -> int:
    """An event whose processing fails for as long as the platform cannot return its
    ticket."""
    monkeypatch.undo()
    ticket = store.add_ticket(title="Locked out", category="password reset", group="Desk")
    event = TicketEvent("sandbox", event_id, TicketEventKind.TICKET_CREATED, NOW,
                        ticket_id=ticket.number, needs_refresh=True)
    monkeypatch.setattr(store, "ticket", lambda number: {}["ticket field is an object"])
    event_row = ws.ledger.add_event(event, event_to_payload(event), NOW, "svc")
    assert event_row is not None
    return event_row


def fail_until_dead(processor, clock, attempts: int) -> None:
    for _ in range(attempts):
        assert processor.run_once() == 1
        clock.now = clock.now + timedelta(hours=1)  # past every back-off


def cli_run(*args: object):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


class TestDeadLetters:
    def test_an_event_failing_n_times_is_set_aside_with_its_reason(
            self, ws, store, clock, monkeypatch, program_file, caplog):
        poison(ws, store, monkeypatch)
        processor = Processor(load_program(program_file), ws.platforms, ws.ledger, ws.clock,
                              max_attempts=3)
        with caplog.at_level(logging.ERROR, logger="itsm_change_sdk.service.processor"):
            fail_until_dead(processor, clock, 3)
        assert processor.run_once() == 0, "a dead letter is no longer claimed"
        assert ws.ledger.event_counts("svc") == {"received": 1, "processed": 0, "dead": 1}
        [dead] = ws.ledger.dead_events("svc")
        assert dead.attempts == 3 and "ticket field is an object" in dead.error
        last = caplog.records[-1].getMessage()
        assert "dead letter" in last and "ticket field is an object" in last
        assert "itsm-change events retry" in last

    def test_healthz_shows_dead_letters_and_their_reasons(
            self, ws, store, clock, monkeypatch, program_file):
        poison(ws, store, monkeypatch)
        service = EventService(ws, load_program(program_file), ServeOptions(max_attempts=2))
        fail_until_dead(service.processor, clock, 2)
        healthy, document = service.health()
        assert healthy, "a dead letter needs a person, not a restart"
        events = document["events"]
        assert (events["dead"], events["backlog"]) == (1, 0)
        assert "ticket field is an object" in events["dead_letters"][0]["reason"]

    def test_status_and_events_list_show_them_then_retry_puts_them_back(
            self, ws, store, clock, monkeypatch, program_file, tmp_path):
        first = poison(ws, store, monkeypatch, "e1")
        poison(ws, store, monkeypatch, "e2")
        processor = Processor(load_program(program_file), ws.platforms, ws.ledger, ws.clock,
                              max_attempts=1)
        assert processor.run_once() == 2
        db = tmp_path / "ledger.db"
        status = cli_run("status", program_file, "--db", db, "--json")
        assert json.loads(status.stdout)["events"]["dead"] == 2
        listed = cli_run("events", "list", program_file, "--db", db)
        assert "2 dead letters" in listed.output and "ticket field is an object" in listed.output

        retried = cli_run("events", "retry", program_file, str(first), "--db", db)
        assert retried.exit_code == 0 and "1 dead letters of svc back" in retried.output
        monkeypatch.undo()  # the cause is fixed
        assert processor.run_once() == 1
        assert ws.ledger.event_counts("svc") == {"received": 2, "processed": 1, "dead": 1}

    def test_drop_gives_them_up_and_a_redelivery_stays_ignored(
            self, ws, store, clock, monkeypatch, program_file, tmp_path):
        poison(ws, store, monkeypatch)
        processor = Processor(load_program(program_file), ws.platforms, ws.ledger, ws.clock,
                              max_attempts=1)
        processor.run_once()
        dropped = cli_run("events", "drop", program_file, "--all", "--db",
                          tmp_path / "ledger.db")
        assert dropped.exit_code == 0 and "1 dead letters of svc dropped" in dropped.output
        assert ws.ledger.event_counts("svc") == {"received": 1, "processed": 1, "dead": 0}
        again = TicketEvent("sandbox", "e1", TicketEventKind.TICKET_CREATED, NOW,
                            ticket_id="INC0000001", needs_refresh=True)
        assert ws.ledger.add_event(again, event_to_payload(again), NOW, "svc") is None

    def test_retry_needs_ids_or_all_and_names_unknown_ids(self, ws, program_file, tmp_path):
        db = tmp_path / "ledger.db"
        assert cli_run("events", "retry", program_file, "--db", db).exit_code == 2
        unknown = cli_run("events", "retry", program_file, "999", "--db", db)
        assert unknown.exit_code == 1 and "not dead letters" in unknown.output


class TestRetention:
    def test_processed_events_older_than_the_retention_are_deleted(
            self, ws, clock, program_file):
        for n in range(3):
            event = TicketEvent("sandbox", f"old{n}", TicketEventKind.TICKET_UPDATED, NOW,
                                ticket_id="X")
            ws.ledger.add_event(event, event_to_payload(event), NOW, "svc")
        rows = ws.ledger.claim_events(10, NOW, "svc")
        ws.ledger.finish_events([rows[0].id, rows[1].id], NOW)
        processor = Processor(load_program(program_file), ws.platforms, ws.ledger, ws.clock,
                              retention=timedelta(days=30))
        clock.now = NOW + timedelta(days=29)
        assert processor.sweep() == 0, "still within the retention"
        clock.now = NOW + timedelta(days=31)
        assert processor.sweep() == 2
        assert ws.ledger.event_counts("svc") == {"received": 1, "processed": 0, "dead": 0}
        ws.ledger.finish_events([rows[2].id], NOW)
        clock.now = NOW + timedelta(days=31, minutes=5)
        assert processor.sweep() == 0, "a sweep at most every ten minutes"
        clock.now = NOW + timedelta(days=31, minutes=11)
        assert processor.sweep() == 1
