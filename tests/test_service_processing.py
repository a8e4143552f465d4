"""Processing recorded events: prompts once per ticket, feedback once per comment,
completions and reopenings, retries after a failure."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from itsm_change_sdk import Workspace, load_program
from itsm_change_sdk.demo import SimClock
from itsm_change_sdk.hookspecs import hookimpl
from itsm_change_sdk.model import Comment, TicketEvent, TicketEventKind
from itsm_change_sdk.sandbox.platform import SandboxPlatform
from itsm_change_sdk.sandbox.store import SandboxStore
from itsm_change_sdk.service.codec import event_from_payload, event_to_payload
from itsm_change_sdk.service.processor import Processor

NOW = datetime(2027, 1, 12, 9, 0, tzinfo=UTC)

PROGRAM = """
id: svc
title: Service test
platforms: [sandbox]
goals:
  - {id: share, title: Portal share, metric: channel_share, params: {channel: portal},
     filter: {kinds: [incident]}, baseline: 0.2, target: 0.6}
waves:
  - {id: pilot, title: Pilot, starts: 2027-01-11, go_live: 2027-01-18}
  - {id: later, title: Later, starts: 2027-05-01, go_live: 2027-05-08}
units:
  - {id: desk, title: Desk, wave: pilot, platform: sandbox, group: Desk}
  - {id: field, title: Field, wave: later, platform: sandbox, group: Field}
training:
  - {id: basics, title: Basics, objectives: [Log a portal ticket], audience: [desk],
     due_days: 7}
communications:
  - {id: kickoff, title: Kickoff, channel: announcement, audience: [desk],
     at: 2027-01-04 09:00, template: "{program} starts for {unit}."}
surveys:
  - {id: pulse, title: Pulse, question: How is it going?}
prompts:
  - id: reset
    title: Password reset
    filter: {categories: [password reset]}
    text: Point the caller to self-service reset.
    active: {from: 2027-01-11, until: 2027-06-30}
  - id: phone
    title: Phone tickets
    filter: {channels: [phone]}
    text: Send the caller the portal link.
    active: {from: 2027-01-11, until: 2027-06-30}
"""


class Observer:
    def __init__(self):
        self.feedback = []
        self.completed = []

    @hookimpl
    def itsm_change_feedback_captured(self, program, response):
        self.feedback.append(response.id)

    @hookimpl
    def itsm_change_training_completed(self, program, key, completed):
        self.completed.append((key, completed))


class Decorator:
    @hookimpl
    def itsm_change_compose_prompt(self, prompt, ticket, text):
        return f"{text}\nTicket: {ticket.title}"


@pytest.fixture
def clock():
    return SimClock(NOW)


@pytest.fixture
def store(tmp_path: Path, clock):
    store = SandboxStore(f"sqlite:///{tmp_path / 'sandbox.db'}", clock=clock)
    desk = [store.add_person(f"Desk {i}", f"desk{i}@example.com") for i in range(2)]
    field = [store.add_person(f"Field {i}", f"field{i}@example.com") for i in range(2)]
    store.add_group("Desk", desk)
    store.add_group("Field", field)
    return store


@pytest.fixture
def program(tmp_path: Path):
    path = tmp_path / "program.yaml"
    path.write_text(PROGRAM)
    return load_program(path)


@pytest.fixture
def observer():
    return Observer()


@pytest.fixture
def ws(tmp_path: Path, clock, store, observer):
    with Workspace(str(tmp_path / "ledger.db"), clock=clock) as workspace:
        workspace.platforms.add("sandbox", SandboxPlatform(store))
        workspace.add_observer(observer, "observer")
        yield workspace


@pytest.fixture
def processor(ws, program):
    return Processor(program, ws.platforms, ws.ledger, ws.clock)


def record(ws, event: TicketEvent, program: str = "svc") -> int | None:
    return ws.ledger.add_event(event, event_to_payload(event), NOW, program)


def created(ticket_id: str, event_id: str = "e1", **extra) -> TicketEvent:
    return TicketEvent("sandbox", event_id, TicketEventKind.TICKET_CREATED, NOW,
                       ticket_id=ticket_id, needs_refresh=True, **extra)


def prompt_notes(store, number):
    return [n for n in store.notes(number) if n.author == "itsm-change"]


class TestPrompts:
    def test_new_ticket_gets_each_applicable_prompt_once(self, ws, store, processor):
        ticket = store.add_ticket(title="Locked out", category="password reset",
                                  channel="phone", group="Desk")
        record(ws, created(ticket.number, "e1"))
        record(ws, created(ticket.number, "e1"))  # a re-delivery
        record(ws, TicketEvent("sandbox", "e2", TicketEventKind.TICKET_UPDATED, NOW,
                               ticket_id=ticket.number, needs_refresh=True))
        assert processor.run_once() == 2
        texts = sorted(n.text for n in prompt_notes(store, ticket.number))
        assert texts == ["Point the caller to self-service reset.",
                         "Send the caller the portal link."]
        assert all(n.internal for n in prompt_notes(store, ticket.number))
        assert ws.ledger.event_counts() == {"received": 2, "processed": 2, "dead": 0}

    def test_processing_an_event_twice_posts_once(self, ws, store, processor):
        ticket = store.add_ticket(title="Locked out", category="password reset", group="Desk")
        event = created(ticket.number)
        processor.handle(event)
        processor.handle(event)
        assert len(prompt_notes(store, ticket.number)) == 1

    def test_no_prompt_before_the_units_wave_or_when_not_matching(self, ws, store,
                                                                   processor):
        later = store.add_ticket(title="Locked out", category="password reset", group="Field")
        other = store.add_ticket(title="Printer", category="hardware", group="Desk")
        for number in (later.number, other.number):
            processor.handle(created(number, number))
        assert prompt_notes(store, later.number) == []
        assert prompt_notes(store, other.number) == []

    def test_ticket_in_the_event_is_used_unless_it_needs_a_refresh(self, ws, store,
                                                                   processor):
        stored = store.add_ticket(title="Locked out", category="hardware", group="Desk")
        carried = dataclasses.replace(stored, category="password reset")
        processor.handle(TicketEvent("sandbox", "e", TicketEventKind.TICKET_CREATED, NOW,
                                     ticket=carried, needs_refresh=True))
        assert prompt_notes(store, stored.number) == [], "re-read: hardware has no prompt"
        processor.handle(TicketEvent("sandbox", "e", TicketEventKind.TICKET_CREATED, NOW,
                                     ticket=carried))
        assert len(prompt_notes(store, stored.number)) == 1

    def test_markup_in_a_ticket_title_stays_text_and_compose_can_decorate(
            self, ws, store, processor):
        ws.add_observer(Decorator(), "decorator")
        title = '<script>alert("x")</script> <b>locked</b> [link](http://evil) {{7*7}}'
        ticket = store.add_ticket(title=title, category="password reset", group="Desk")
        processor.handle(created(ticket.number))
        [note] = prompt_notes(store, ticket.number)
        assert note.text == f"Point the caller to self-service reset.\nTicket: {title}"

    def test_deleted_ticket_is_done(self, ws, processor):
        record(ws, created("INC9999999"))
        assert processor.run_once() == 1
        assert ws.ledger.event_counts()["processed"] == 1


class TestFeedback:
    def comment_event(self, event_id, comment_id="N0000042", text="#feedback aw=4 de=2 slow"):
        comment = Comment("sandbox", comment_id, "INC0001001", "u-0001", NOW, text)
        return TicketEvent("sandbox", event_id, TicketEventKind.COMMENT_ADDED, NOW,
                           ticket_id="INC0001001", comment=comment)

    def test_marked_comment_is_captured_once(self, ws, processor, observer, program):
        record(ws, self.comment_event("c1"))
        record(ws, self.comment_event("c1"))
        record(ws, self.comment_event("c2"))  # the same comment under another event id
        processor.run_once()
        [response] = list(ws.ledger.feedback(program.id))
        assert response.scores == {"awareness": 4, "desire": 2}
        assert response.text == "slow" and response.person == "u-0001"
        assert response.program == program.id and response.survey == "pulse"
        assert observer.feedback == ["comment:N0000042"]

    def test_unit_is_linked_through_the_persons_training(self, ws, processor, program, store):
        ws.apply(program)
        person = store.group_members("Desk")[0]
        comment = Comment("sandbox", "N1", "INC0001001", person.id, NOW, "#feedback ab=2")
        processor.handle(TicketEvent("sandbox", "c", TicketEventKind.COMMENT_ADDED, NOW,
                                     comment=comment))
        [response] = list(ws.ledger.feedback(program.id))
        assert response.unit == "desk"

    def test_unmarked_comment_is_ignored(self, ws, processor, observer, program):
        processor.handle(self.comment_event("c", text="just a note"))
        assert list(ws.ledger.feedback(program.id)) == [] and observer.feedback == []

    def test_unmarked_feedback_from_staff_is_inferred_when_the_program_asks(
            self, ws, store, observer, tmp_path):
        pytest.importorskip("sklearn")
        path = tmp_path / "unmarked.yaml"
        path.write_text(PROGRAM + "feedback: {unmarked: true}\n")
        program = load_program(path)
        ws.apply(program)
        processor = Processor(program, ws.platforms, ws.ledger, ws.clock)
        person = store.group_members("Desk")[0]
        for number, (author, text) in enumerate([
                (person.id, "Nobody told us the phone line closes Friday, mail desk0@example.com"),
                (person.id, "Reset the password, user confirmed it works."),
                ("requester-7", "The new portal form takes twice as long as the phone")]):
            comment = Comment("sandbox", f"N{number}", "INC0001001", author, NOW, text)
            processor.handle(TicketEvent("sandbox", f"c{number}",
                                         TicketEventKind.COMMENT_ADDED, NOW, comment=comment))
        assert list(ws.ledger.feedback(program.id)) == []  # nothing marked
        [found] = list(ws.ledger.feedback(program.id, inferred=True))
        assert found.inferred and found.unit == "desk" and found.dimension == "awareness"
        assert "example.com" not in found.text and found.confidence is not None
        assert observer.feedback == ["comment:N0"]

    def test_trigger_without_the_comment_reads_the_tickets_marked_comments(
            self, ws, processor, store, program):
        ticket = store.add_ticket(title="x", group="Desk")
        store.add_note(ticket.number, "u-0002", "#feedback re=5 great", internal=False)
        store.add_note(ticket.number, "u-0002", "no marker", internal=False)
        processor.handle(TicketEvent("sandbox", "t", TicketEventKind.COMMENT_ADDED, NOW,
                                     ticket_id=ticket.number, needs_refresh=True))
        [response] = list(ws.ledger.feedback(program.id))
        assert response.scores == {"reinforcement": 5}


class TestCompletion:
    def test_completed_then_reopened(self, ws, processor, program, store, observer):
        ws.apply(program)
        task = store.all_tasks(kind="training")[0]
        done = TicketEvent("sandbox", "t1", TicketEventKind.TASK_COMPLETED, NOW,
                           effect_key=task["key"])
        processor.handle(done)
        processor.handle(done)
        assert ws.ledger.get(task["key"]).completed
        processor.handle(TicketEvent("sandbox", "t2", TicketEventKind.TASK_REOPENED, NOW,
                                     effect_key=task["key"]))
        assert not ws.ledger.get(task["key"]).completed
        assert observer.completed == [(task["key"], True), (task["key"], False)]

    def test_key_of_another_program_is_ignored(self, ws, processor, observer):
        processor.handle(TicketEvent("sandbox", "t", TicketEventKind.TASK_COMPLETED, NOW,
                                     effect_key="chg:other:training:x:y"))
        assert observer.completed == []


class TestFailures:
    def test_failed_event_is_retried_after_its_lease(self, ws, processor, store, clock,
                                                     monkeypatch):
        ticket = store.add_ticket(title="Locked out", category="password reset", group="Desk")
        record(ws, created(ticket.number))
        real = store.ticket
        monkeypatch.setattr(store, "ticket", lambda number: 1 / 0)
        assert processor.run_once() == 1
        assert ws.ledger.event_counts()["processed"] == 0
        assert processor.stats.failed == 1 and "ZeroDivisionError" in processor.stats.last_error
        monkeypatch.setattr(store, "ticket", real)
        assert processor.run_once() == 0, "the lease is the back-off"
        clock.now = NOW + timedelta(minutes=6)
        assert processor.run_once() == 1
        assert ws.ledger.event_counts()["processed"] == 1
        assert len(prompt_notes(store, ticket.number)) == 1

    def test_event_of_a_platform_not_enabled_is_done(self, ws, processor):
        record(ws, TicketEvent("jira", "j", TicketEventKind.TICKET_CREATED, NOW,
                               ticket_id="10001", needs_refresh=True))
        processor.run_once()
        assert ws.ledger.event_counts()["processed"] == 1


def test_codec_round_trip(store):
    ticket = store.add_ticket(title="t", group="Desk")
    comment = Comment("sandbox", "N1", ticket.number, "u", NOW, "hi", internal=True)
    event = TicketEvent("sandbox", "e", TicketEventKind.COMMENT_ADDED, NOW, ticket=ticket,
                        ticket_id=ticket.number, comment=comment, effect_key="k",
                        needs_refresh=True)
    assert event_from_payload(event_to_payload(event)) == event
