"""The contract every platform plugin passes, run against the plugin itself.

A plugin's tests provide two pytest fixtures and one class::

    @pytest.fixture
    def platform(double):  # the plugin's platform instance, pointed at the double
        ...

    @pytest.fixture
    def double():          # a PlatformDouble: the platform as seen from the test
        ...

    class TestMyPlatformContract(PlatformContract):
        pass

Each test drives the plugin through its hooks, called through the plugin manager exactly as
the core calls them (:func:`call_hook`), and checks the outcome on the double, so the
same behaviour holds on every platform: idempotent publishing, in-place updates, recovery
from a write whose answer was lost, completion read-back, feedback collection, pagination,
queries no value can widen, prompts posted once per ticket, survey answers, install plans
that write nothing, and that every ``@hookimpl`` the platform carries is one a test would miss.
Tests for a feature the platform lacks are skipped through
:class:`~itsm_change_sdk.testing.double.Capabilities`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
from collections import Counter
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from ..errors import (
    APIError,
    AuthenticationError,
    ITSMError,
    PermissionDenied,
    PluginError,
    UnsupportedOperation,
    WebhookRejected,
)
from ..hookspecs import PLATFORM_HOOKS
from ..ledger import Ledger
from ..model import (
    Check,
    CheckStatus,
    Effect,
    EffectKind,
    EffectRef,
    InstallStep,
    Person,
    Program,
    Prompt,
    Survey,
    Ticket,
    TicketEventKind,
    TicketFilter,
    TrainingModule,
    Unit,
    Wave,
    WebhookRequest,
)
from ..plugins import Platforms, get_plugin_manager, implemented_hooks, platform_registry
from ..runner import Runner
from ..sync import Syncer
from .double import PlatformDouble, RemoteRecord

__all__ = ["HOSTILE_VALUES", "PlatformContract", "call_hook", "without_hookimpl"]

BASE = datetime(2027, 1, 11, 9, 0, tzinfo=UTC)
PROGRAM = "contract"
UNDER_TEST = "under-test"

HOSTILE_VALUES = (
    "x^ORactive=true",
    "x^NQsys_id!=0",
    'x" OR project = SECRET OR labels = "y',
    "x' OR 1=1 OR 'a'='a",
    "x) OR (status:2",
    "x\\\" OR 1=1",
)


def _training(double: PlatformDouble, person: Person, module: str = "portal-basics",
              due: date = date(2027, 1, 25), title: str = "Training: Portal basics") -> Effect:
    return Effect(
        key=f"chg:{PROGRAM}:training:{module}:{double.name}:{person.id}",
        kind=EffectKind.TRAINING, platform=double.name, program=PROGRAM, title=title,
        body="After this module you can:\n  - log a portal ticket\nClose this task when done.",
        channel="task", recipient=person, due=due,
        meta={"unit": "sd-tier1", "module": module},
    )


def call_hook(platform: object, hook: str, **kwargs: Any) -> Any:
    """Call ``hook`` on ``platform`` exactly as the core does.

    The instance is registered with a fresh plugin manager (which refuses it when a required
    hook lacks ``@hookimpl``) and reached through pluggy, so a method that is not marked as a
    hook answers nothing here, as it would in production. An optional hook the instance does
    not implement answers None, as the core sees it.
    """
    platforms = Platforms(get_plugin_manager(load_entry_points=False))
    platforms.add(UNDER_TEST, platform)
    try:
        return platforms.call(UNDER_TEST, hook, **kwargs)
    finally:
        platforms.pm.unregister(name=Platforms.plugin_name(UNDER_TEST))


def _bytes(body: str | bytes | None) -> bytes:
    return body.encode() if isinstance(body, str) else body or b""


def without_hookimpl(platform: object, hook: str) -> object:
    """A copy of ``platform`` whose ``hook`` method is no longer marked ``@hookimpl``.

    The copy shares the original's state (session, settings, fakes); only its class differs:
    a subclass that overrides ``hook`` with an unmarked method calling the original.
    """
    cls = type(platform)
    original = getattr(cls, hook)

    def unmarked(self: object, *args: Any, **kwargs: Any) -> Any:
        return original(self, *args, **kwargs)

    unmarked.__name__ = hook
    stripped = type(cls.__name__, (cls,), {hook: unmarked, "__module__": cls.__module__})
    clone = copy.copy(platform)
    clone.__class__ = stripped
    return clone



SWEEP_TICKETS = 150
"""Matching tickets for the sweep test: more than one write batch (100), over 15 pages."""
LARGE_SWEEP = 1050
"""Matching tickets for the large sweep: more than ten pages of 100 and ten write batches."""


def _prompt_program(platform: str) -> Program:
    """One unit that owns the "Service Desk Tier 1" tickets and one prompt on its password
    resets, both started before :data:`BASE`."""
    return Program(
        id=PROGRAM, title="Contract", platforms=(platform,), goals=(),
        waves=(Wave("pilot", "Pilot", (BASE - timedelta(days=1)).date(),
                    (BASE + timedelta(days=7)).date()),),
        units=(Unit("sd-tier1", "Service Desk Tier 1", "pilot", platform,
                    group="Service Desk Tier 1"),),
        alliance=(), training=(), communications=(), surveys=(),
        prompts=(Prompt("reset", "Self-service reset",
                        TicketFilter(categories=("password reset",)),
                        "Point the caller to the portal's self-service reset.",
                        BASE - timedelta(days=1), BASE + timedelta(days=30)),),
    )


class FaultInjector:
    """Wraps ``requests.Session.send``: ``rate`` of the calls get one fault of :data:`KINDS`;
    a 429 starts a storm, answering the next two calls to the same URL 429 too.

    Whether a call faults depends on the seed, its method and URL and how many times that
    URL was called before, never on the order threads happen to send in, so a run is the
    same every time."""

    KINDS = ("500", "502", "503", "429", "timeout after", "dropped before", "dropped after")

    def __init__(self, rate: float, seed: int) -> None:
        self.rate = rate
        self.seed = seed
        self.calls = 0
        self.seen: Counter[str] = Counter()
        self.storms: Counter[str] = Counter()
        self.injected: Counter[str] = Counter()
        self.lock = threading.Lock()

    @staticmethod
    def answer(request: requests.PreparedRequest, status: int) -> requests.Response:
        response = requests.Response()
        response.status_code = status
        response.headers["Content-Type"] = "application/json"
        if status == 429:
            response.headers["Retry-After"] = "1"
        response._content = json.dumps({"error": {"message": f"injected {status}"}}).encode()
        response.url = request.url or ""
        response.request = request
        response.reason = "Injected"
        return response

    def _fault(self, request: requests.PreparedRequest) -> str | None:
        target = f"{request.method} {request.url}"
        with self.lock:
            self.calls += 1
            if not self.rate:
                return None
            self.seen[target] += 1
            if self.storms[target]:
                self.storms[target] -= 1
                self.injected["429"] += 1
                return "429"
            digest = hashlib.sha256(
                f"{self.seed}|{target}|{self.seen[target]}".encode()).digest()
            if int.from_bytes(digest[:4], "big") / 2**32 >= self.rate:
                return None
            kind = self.KINDS[digest[4] % len(self.KINDS)]
            self.injected[kind] += 1
            if kind == "429":
                self.storms[target] = 2
            return kind

    def wrap(self, send: Any) -> Any:
        def faulty(session: requests.Session, request: requests.PreparedRequest,
                   **kwargs: Any) -> requests.Response:
            kind = self._fault(request)
            if kind in ("500", "502", "503", "429"):
                return self.answer(request, int(kind or 0))
            if kind == "dropped before":
                raise requests.exceptions.ConnectionError(
                    "Failed to establish a new connection: injected")
            response: requests.Response = send(session, request, **kwargs)
            if kind == "timeout after":
                raise requests.exceptions.ReadTimeout("Read timed out. (injected)")
            if kind == "dropped after":
                raise requests.exceptions.ConnectionError(
                    "Connection aborted.", "RemoteDisconnected('injected')")
            return response

        return faulty


def contract_program(platform: str) -> Program:
    """The program the contract's effects belong to, with one ADKAR pulse survey."""
    return Program(id=PROGRAM, title="Contract", platforms=(platform,), goals=(), waves=(),
                   units=(), alliance=(), training=(), communications=(),
                   surveys=(Survey(id="adkar-pulse", title="Pulse survey", question="How?"),),
                   prompts=())


OPTIONAL_HOOK_CHECKS = {
    "itsm_change_collect_survey_answers": ("survey_answers", "check_survey_answers"),
    "itsm_change_event_forwarder": ("forwards_events", "check_event_forwarding"),
    "itsm_change_check_filters": ("filter_checks", "check_filter_values"),
}
"""Each optional platform hook: the capability that offers it and the check that uses it."""


class PlatformContract:
    """Inherit this in a ``Test...`` class next to ``platform`` and ``double`` fixtures."""

    # -- helpers -----------------------------------------------------------------------

    def people(self, double: PlatformDouble, count: int, role: str = "Agent") -> list[Person]:
        return [double.add_person(f"{role} {i} Contract",
                                  f"{role.lower()}{i}.contract@example.com")
                for i in range(1, count + 1)]

    def publish(self, platform: Any, effects: list[Effect],
                known: dict[str, EffectRef] | None = None) -> list[Any]:
        results = call_hook(platform, "itsm_change_publish_training", effects=effects,
                        known=known or {})
        assert len(results) == len(effects), "one result per effect, in order"
        assert [r.key for r in results] == [e.key for e in effects]
        return list(results)

    def records(self, double: PlatformDouble, kind: EffectKind,
                prefix: str = f"chg:{PROGRAM}:") -> list[RemoteRecord]:
        return [r for r in double.records(kind) if r.key.startswith(prefix)]

    # -- directory ---------------------------------------------------------------------

    def test_unit_members_resolve_the_group_by_name(self, platform: Any,
                                                    double: PlatformDouble) -> None:
        people = self.people(double, 3)
        group = double.add_group("Service Desk Tier 1", people)
        unit = Unit("sd-tier1", "Service Desk Tier 1", "pilot", double.name, group=group)
        members = call_hook(platform, "itsm_change_unit_members", unit=unit)
        assert sorted(p.id for p in members) == sorted(p.id for p in people)

    # -- training ----------------------------------------------------------------------

    def test_publishing_creates_one_task_per_recipient(self, platform: Any,
                                                        double: PlatformDouble) -> None:
        people = self.people(double, 3)
        effects = [_training(double, p) for p in people]
        results = self.publish(platform, effects)
        assert all(r.ok and r.ref is not None for r in results)
        records = self.records(double, EffectKind.TRAINING)
        assert sorted(r.key for r in records) == sorted(e.key for e in effects)
        assert {r.assignee for r in records} == {p.id for p in people}
        assert all(r.open for r in records)

    def test_published_keys_are_found_again(self, platform: Any, double: PlatformDouble) -> None:
        people = self.people(double, 2)
        effects = [_training(double, p) for p in people]
        self.publish(platform, effects)
        missing = f"chg:{PROGRAM}:training:absent:{double.name}:nobody"
        refs = call_hook(platform, "itsm_change_find_effects", kind=EffectKind.TRAINING,
                     keys=[e.key for e in effects] + [missing])
        assert sorted(r.key for r in refs) == sorted(e.key for e in effects)

    def test_lookups_make_no_writes(self, platform: Any, double: PlatformDouble) -> None:
        (person,) = self.people(double, 1)
        effect = _training(double, person)
        self.publish(platform, [effect])
        before = double.write_calls()
        call_hook(platform, "itsm_change_find_effects", kind=EffectKind.TRAINING, keys=[effect.key])
        call_hook(platform, "itsm_change_training_status",
              refs=call_hook(platform, "itsm_change_find_effects", kind=EffectKind.TRAINING,
                         keys=[effect.key]))
        assert double.write_calls() == before

    def test_a_known_key_is_updated_in_place(self, platform: Any, double: PlatformDouble) -> None:
        (person,) = self.people(double, 1)
        first = self.publish(platform, [_training(double, person)])[0]
        changed = _training(double, person, due=date(2027, 2, 1),
                            title="Training: Portal basics (updated)")
        result = self.publish(platform, [changed], {changed.key: first.ref})[0]
        assert result.ok
        records = self.records(double, EffectKind.TRAINING)
        assert len(records) == 1, "an update must not create a second record"
        assert "updated" in records[0].title
        if records[0].due is not None:
            assert records[0].due == date(2027, 2, 1)

    def test_a_write_applied_but_unanswered_is_not_duplicated(self, platform: Any,
                                                              double: PlatformDouble) -> None:
        (person,) = self.people(double, 1)
        effect = _training(double, person)
        double.fail_next_write(after_apply=True)
        (result,) = self.publish(platform, [effect])
        assert result.ok or result.uncertain
        refs = call_hook(platform, "itsm_change_find_effects", kind=EffectKind.TRAINING,
                     keys=[effect.key])
        assert [r.key for r in refs] == [effect.key]
        assert len(self.records(double, EffectKind.TRAINING)) == 1

    def test_a_write_lost_before_the_platform_is_sent_once(self, platform: Any,
                                                           double: PlatformDouble) -> None:
        (person,) = self.people(double, 1)
        effect = _training(double, person)
        double.fail_next_write(after_apply=False)
        (result,) = self.publish(platform, [effect])
        records = self.records(double, EffectKind.TRAINING)
        assert len(records) == (1 if result.ok else 0)
        if not result.ok:
            assert result.uncertain, "a lost write is uncertain, so the runner looks it up"

    def test_completion_is_read_back(self, platform: Any, double: PlatformDouble) -> None:
        people = self.people(double, 2)
        results = self.publish(platform, [_training(double, p) for p in people])
        done_ref = results[0].ref
        double.complete_task(done_ref, BASE + timedelta(days=2))
        statuses = {s.key: s for s in call_hook(platform, "itsm_change_training_status",
                                            refs=[r.ref for r in results])}
        assert statuses[results[0].key].completed
        assert not statuses[results[1].key].completed
        double.reopen_task(done_ref, BASE + timedelta(days=3))
        (again,) = call_hook(platform, "itsm_change_training_status", refs=[done_ref])
        assert not again.completed

    def test_retiring_closes_without_deleting(self, platform: Any, double: PlatformDouble) -> None:
        (person,) = self.people(double, 1)
        (result,) = self.publish(platform, [_training(double, person)])
        (retired,) = call_hook(platform, "itsm_change_retire_effects", refs=[result.ref])
        assert retired.ok
        records = self.records(double, EffectKind.TRAINING)
        assert len(records) == 1 and not records[0].open

    # -- communication and feedback ----------------------------------------------------

    def _message(self, double: PlatformDouble, channel: str, suffix: str, **fields: Any
                 ) -> Effect:
        return Effect(
            key=f"chg:{PROGRAM}:comm:kickoff:20270111T0900:{double.name}{suffix}",
            kind=EffectKind.MESSAGE, platform=double.name, program=PROGRAM,
            title="Portal rollout kickoff", channel=channel,
            body="The new portal goes live on 18 January. <b>Not markup</b> & plain text.",
            meta={"event": "kickoff"}, **fields)

    def test_announcement_reaches_the_audience_and_updates_in_place(
            self, platform: Any, double: PlatformDouble) -> None:
        if "announcement" not in double.capabilities.channels:
            pytest.skip(f"{double.name} has no announcement channel")
        people = self.people(double, 1)
        group = double.add_group("Service Desk Tier 1", people)
        effect = self._message(double, "announcement", "", audience_groups=(group,),
                               visible_from=BASE, visible_until=BASE + timedelta(days=14))
        (result,) = call_hook(platform, "itsm_change_deliver_communication", effects=[effect],
                          known={})
        assert result.ok
        changed = self._message(double, "announcement", "", audience_groups=(group,),
                                visible_from=BASE, visible_until=BASE + timedelta(days=21))
        (again,) = call_hook(platform, "itsm_change_deliver_communication", effects=[changed],
                         known={effect.key: result.ref})
        assert again.ok
        records = self.records(double, EffectKind.MESSAGE)
        assert len(records) == 1

    def test_ticket_note_lands_on_the_named_record(self, platform: Any,
                                                   double: PlatformDouble) -> None:
        if "ticket_note" not in double.capabilities.channels:
            pytest.skip(f"{double.name} has no ticket_note channel")
        ticket = double.add_ticket(title="Portal rollout change", opened_at=BASE, kind="change",
                                   channel=None)
        effect = self._message(double, "ticket_note", f":{ticket.number}",
                               ticket_id=ticket.number)
        (result,) = call_hook(platform, "itsm_change_deliver_communication", effects=[effect],
                          known={})
        assert result.ok
        (record,) = self.records(double, EffectKind.MESSAGE)
        assert record.ticket_id in (ticket.id, ticket.number)
        assert "<b>Not markup</b>" in record.body or "Not markup" in record.body

    def test_task_channel_asks_each_recipient(self, platform: Any, double: PlatformDouble) -> None:
        if "task" not in double.capabilities.channels:
            pytest.skip(f"{double.name} has no task channel")
        people = self.people(double, 2)
        effects = [self._message(double, "task", f":{p.id}", recipient=p) for p in people]
        results = call_hook(platform, "itsm_change_deliver_communication", effects=effects,
                        known={})
        assert all(r.ok for r in results)
        assert {r.assignee for r in self.records(double, EffectKind.MESSAGE)} == \
            {p.id for p in people}

    def test_an_unknown_channel_is_refused(self, platform: Any, double: PlatformDouble) -> None:
        effect = self._message(double, "carrier-pigeon", "")
        with pytest.raises(UnsupportedOperation):
            call_hook(platform, "itsm_change_deliver_communication", effects=[effect], known={})

    def test_feedback_requests_go_to_each_recipient(self, platform: Any,
                                                    double: PlatformDouble) -> None:
        people = self.people(double, 2)
        effects = [Effect(
            key=f"chg:{PROGRAM}:comm:checkin:20270125T0900:{double.name}:{p.id}",
            kind=EffectKind.FEEDBACK_REQUEST, platform=double.name, program=PROGRAM,
            title="Fortnightly check-in", channel="task", recipient=p,
            body="Pulse survey: score awareness, desire, knowledge, ability, reinforcement.",
            due=date(2027, 2, 1), meta={"event": "checkin", "survey": "adkar-pulse"},
        ) for p in people]
        results = call_hook(platform, "itsm_change_request_feedback", effects=effects, known={})
        assert all(r.ok for r in results)
        assert len(self.records(double, EffectKind.FEEDBACK_REQUEST)) == 2

    def check_survey_answers(self, platform: Any, double: PlatformDouble) -> None:
        """A survey answered on the platform is collected once, with its scores, and not
        again after ``since``."""
        (person,) = self.people(double, 1, role="Respondent")
        effect = Effect(
            key=f"chg:{PROGRAM}:comm:pulse:20270125T0900:{double.name}:{person.id}",
            kind=EffectKind.FEEDBACK_REQUEST, platform=double.name, program=PROGRAM,
            title="Pulse survey", channel="task", recipient=person,
            body="Pulse survey: score awareness, desire, knowledge, ability, reinforcement.",
            due=date(2027, 2, 1), meta={"event": "pulse", "survey": "adkar-pulse"},
        )
        (request,) = call_hook(platform, "itsm_change_request_feedback", effects=[effect],
                               known={})
        assert request.ok and request.ref is not None
        answered_at = BASE + timedelta(days=1)
        double.answer_survey(request.ref, person, {"awareness": 4}, "Good so far", answered_at)
        program = contract_program(double.name)
        answers = list(call_hook(platform, "itsm_change_collect_survey_answers",
                                 program=program, since=None) or [])
        assert len(answers) == 1, "the answered survey is collected once"
        (answer,) = answers
        assert answer.source == "survey" and answer.scores and answer.program == PROGRAM
        later = list(call_hook(platform, "itsm_change_collect_survey_answers",
                               program=program, since=answered_at + timedelta(days=1)) or [])
        assert later == [], "an answer is not collected again after since"

    def test_survey_answers_are_collected(self, platform: Any, double: PlatformDouble) -> None:
        if not double.capabilities.survey_answers:
            pytest.skip(f"{double.name} has no survey answers to collect")
        self.check_survey_answers(platform, double)

    def test_marked_comments_are_found_after_since(self, platform: Any,
                                                   double: PlatformDouble) -> None:
        (agent,) = self.people(double, 1)
        ticket = double.add_ticket(title="Printer jam", opened_at=BASE)
        double.add_comment(ticket.id, agent, "#feedback ability=2 the form is long",
                           BASE + timedelta(hours=1))
        double.add_comment(ticket.id, agent, "Called the user back", BASE + timedelta(hours=2))
        double.add_comment(ticket.id, agent, "#feedback knowledge=4", BASE + timedelta(hours=3))
        found = list(call_hook(platform, "itsm_change_find_comments", marker="#feedback",
                           since=None))
        assert sorted(c.text for c in found) == ["#feedback ability=2 the form is long",
                                                 "#feedback knowledge=4"]
        assert all(c.author == agent.id for c in found)
        later = list(call_hook(platform, "itsm_change_find_comments", marker="#feedback",
                           since=BASE + timedelta(hours=2)))
        assert [c.text for c in later] == ["#feedback knowledge=4"]

    def test_our_own_notes_are_never_taken_for_feedback(self, platform: Any,
                                                        double: PlatformDouble) -> None:
        ticket = double.add_ticket(title="Password reset", opened_at=BASE,
                                   category="password reset")
        effect = Effect(
            key=f"chg:{PROGRAM}:prompt:survey-hint:{double.name}:{ticket.id}",
            kind=EffectKind.PROMPT, platform=double.name, program=PROGRAM,
            title="Survey hint", channel="ticket_note", ticket_id=ticket.id,
            body="Answer in any comment: #feedback awareness=4 ability=3 <what would help>",
        )
        (posted,) = call_hook(platform, "itsm_change_post_prompts", effects=[effect], known={})
        assert posted.ok
        found = list(call_hook(platform, "itsm_change_find_comments", marker="#feedback",
                           since=None))
        assert found == [], "a note the plugin wrote carries our text, not staff feedback"

    # -- tickets and prompts -----------------------------------------------------------

    def test_find_tickets_filters_and_orders_oldest_first(self, platform: Any,
                                                          double: PlatformDouble) -> None:
        for hours, category in ((3, "password reset"), (1, "hardware"), (2, "password reset")):
            double.add_ticket(title=f"{category} {hours}", category=category,
                              opened_at=BASE + timedelta(hours=hours))
        tickets: list[Ticket] = list(call_hook(
            platform, "itsm_change_find_tickets",
            filter=TicketFilter(categories=("password reset",)), since=None, open_only=True))
        assert [t.title for t in tickets] == ["password reset 2", "password reset 3"]

    def test_every_page_is_read(self, platform: Any, double: PlatformDouble) -> None:
        double.set_page_size(2)
        for i in range(5):
            double.add_ticket(title=f"ticket {i}", opened_at=BASE + timedelta(minutes=i))
        tickets = list(call_hook(platform, "itsm_change_stream_tickets", since=None))
        titles = [t.title for t in tickets if t.title.startswith("ticket ")]
        assert titles == [f"ticket {i}" for i in range(5)]

    def test_stream_reads_only_what_changed_since(self, platform: Any,
                                                  double: PlatformDouble) -> None:
        for i in range(3):
            double.add_ticket(title=f"ticket {i}", opened_at=BASE + timedelta(hours=i))
        tickets = list(call_hook(platform, "itsm_change_stream_tickets",
                             since=BASE + timedelta(minutes=30)))
        assert [t.title for t in tickets if t.title.startswith("ticket ")] == \
            ["ticket 1", "ticket 2"]

    @pytest.mark.parametrize("value", HOSTILE_VALUES)
    def test_no_filter_value_can_widen_the_query(self, platform: Any, double: PlatformDouble,
                                                 value: str) -> None:
        double.add_ticket(title="bystander", category="hardware", opened_at=BASE)
        try:
            tickets = list(call_hook(platform, "itsm_change_find_tickets",
                                 filter=TicketFilter(categories=(value,)), since=None,
                                 open_only=False))
        except ITSMError:
            return  # refusing the value outright is as safe as quoting it
        assert tickets == []

    def test_get_ticket_rereads_one_ticket(self, platform: Any, double: PlatformDouble) -> None:
        ticket = double.add_ticket(title="VPN down", opened_at=BASE, category="network")
        again = call_hook(platform, "itsm_change_get_ticket", ticket_id=ticket.id)
        assert again is not None and again.title == "VPN down"

    def test_a_prompt_is_posted_once_per_ticket(self, platform: Any,
                                                double: PlatformDouble) -> None:
        ticket = double.add_ticket(title="Password reset", opened_at=BASE,
                                   category="password reset")
        effect = Effect(
            key=f"chg:{PROGRAM}:prompt:password-reset:{double.name}:{ticket.id}",
            kind=EffectKind.PROMPT, platform=double.name, program=PROGRAM,
            title="Self-service reset", channel="ticket_note", ticket_id=ticket.id,
            body="Point the caller to the portal's self-service reset.",
        )
        (first,) = call_hook(platform, "itsm_change_post_prompts", effects=[effect], known={})
        assert first.ok
        refs = call_hook(platform, "itsm_change_find_effects", kind=EffectKind.PROMPT,
                     keys=[effect.key])
        assert [r.key for r in refs] == [effect.key]
        (second,) = call_hook(platform, "itsm_change_post_prompts", effects=[effect],
                          known={effect.key: refs[0]})
        assert second.ok
        assert len(self.records(double, EffectKind.PROMPT)) == 1

    def test_one_sync_prompts_every_matching_ticket_once(self, platform: Any,
                                                          double: PlatformDouble,
                                                          tmp_path: Path) -> None:
        """Each note moves its ticket's update time, so offset pages shift while the sweep
        writes; one sync still prompts every matching ticket, and the next posts nothing.

        Small pages make the 15 pages that 1,000+ tickets take on a real platform; the
        benchmark (``benchmarks/bench_prompts.py``) runs the same at 1,000 and 10,000."""
        matching = SWEEP_TICKETS
        double.set_page_size(10)
        for i in range(matching):
            double.add_ticket(title=f"reset {i}", category="password reset",
                              group="Service Desk Tier 1", opened_at=BASE + timedelta(seconds=i))
        double.add_ticket(title="bystander", category="hardware", group="Service Desk Tier 1",
                          opened_at=BASE)
        program = _prompt_program(double.name)
        ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
        platforms = Platforms(get_plugin_manager(load_entry_points=False))
        platforms.add(double.name, platform)
        try:
            first = Syncer(program, platforms, ledger, lambda: BASE + timedelta(days=1)).run()
            assert first.errors == []
            notes = [r.ticket_id for r in self.records(double, EffectKind.PROMPT)]
            assert len(notes) == matching, "every matching ticket prompted"
            assert len(set(notes)) == matching, "no ticket prompted twice"
            assert first.matched == {"reset": matching} and first.posted == {"reset": matching}
            second = Syncer(program, platforms, ledger, lambda: BASE + timedelta(days=2)).run()
            assert second.errors == [] and second.prompts == 0
            assert len(self.records(double, EffectKind.PROMPT)) == matching
        finally:
            platforms.pm.unregister(name=Platforms.plugin_name(double.name))
            ledger.close()

    def test_a_thousand_matching_tickets_are_each_prompted_once(
            self, platform: Any, double: PlatformDouble, tmp_path: Path) -> None:
        """1,050 matching tickets at the platform's own page size, one sync: every one
        prompted exactly once; the next sync posts nothing; and what a sync reads grows with
        what changed (counted with the double's ``request_count()`` where it has one: new
        tickets cost at most a listing page per cursor, and one read and one note each)."""
        matching = LARGE_SWEEP
        for i in range(matching):
            double.add_ticket(title=f"reset {i}", category="password reset",
                              group="Service Desk Tier 1", opened_at=BASE + timedelta(seconds=i))
        program = _prompt_program(double.name)
        ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
        platforms = Platforms(get_plugin_manager(load_entry_points=False))
        platforms.add(double.name, platform)
        try:
            first = Syncer(program, platforms, ledger, lambda: BASE + timedelta(days=1)).run()
            assert first.errors == []
            notes = [r.ticket_id for r in self.records(double, EffectKind.PROMPT)]
            assert len(notes) == matching and len(set(notes)) == matching
            # The notes moved their tickets' update times: this sync reads them once more,
            # finds each prompted already and writes nothing.
            second = Syncer(program, platforms, ledger, lambda: BASE + timedelta(days=2)).run()
            assert second.errors == [] and second.prompts == 0
            assert len(self.records(double, EffectKind.PROMPT)) == matching
            counted = getattr(double, "request_count", None)
            if counted is None:
                return
            cursors = len([c for c in ("comments", "survey", "prompts")
                           if c != "survey" or platforms.implements(
                               double.name, "itsm_change_collect_survey_answers")])
            before = counted()
            quiet = Syncer(program, platforms, ledger, lambda: BASE + timedelta(days=3)).run()
            assert quiet.errors == [] and quiet.prompts == 0
            quiet_cost = counted() - before
            new = [double.add_ticket(title=f"new {i}", category="password reset",
                                     group="Service Desk Tier 1",
                                     opened_at=BASE + timedelta(days=3, minutes=i))
                   for i in range(3)]
            before = counted()
            busy = Syncer(program, platforms, ledger, lambda: BASE + timedelta(days=4)).run()
            assert busy.errors == [] and busy.prompts == len(new)
            # The contract's tickets are dated ahead of the real clock, past which no cursor
            # moves, so both syncs re-read what the notes touched; what three new tickets
            # add to that is what they cost: at most a listing page per cursor, and one read
            # and one note per ticket.
            added = counted() - before - quiet_cost
            assert added <= cursors + 2 * len(new), \
                f"{added} requests more for {len(new)} new tickets than for none"
        finally:
            platforms.pm.unregister(name=Platforms.plugin_name(double.name))
            ledger.close()

    # -- a fifth of all calls failing ---------------------------------------------------

    def test_a_fifth_of_calls_failing_settles_in_one_apply_and_one_sync(
            self, platform: Any, double: PlatformDouble, tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> None:
        """Every kind of fault on 20 % of the calls (500, 502, 503, storms of three 429s, a
        timeout after the platform applied a write, a connection dropped before or after
        it): one ``apply`` and one ``sync`` settle, every effect exactly once."""
        if not double.capabilities.http:
            pytest.skip(f"{double.name} does not talk HTTP")
        people = self.people(double, 12)
        double.add_group("Service Desk Tier 1", people)
        for i in range(30):
            double.add_ticket(title=f"reset {i}", category="password reset",
                              group="Service Desk Tier 1", opened_at=BASE + timedelta(minutes=i))
        base = _prompt_program(double.name)
        program = replace(base, training=(TrainingModule(
            "basics", "Portal basics", ("Log a portal ticket",), ("sd-tier1",), 7),))
        ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
        platforms = Platforms(get_plugin_manager(load_entry_points=False))
        platforms.add(double.name, platform)
        faults = FaultInjector(rate=0.2, seed=11)
        monkeypatch.setattr(requests.Session, "send", faults.wrap(requests.Session.send))
        try:
            applied = Runner(program, platforms, ledger, lambda: BASE + timedelta(days=1)).apply()
            synced = Syncer(program, platforms, ledger, lambda: BASE + timedelta(days=1)).run()
            faults.rate = 0.0
            assert applied.failed == [], f"apply settled in one run ({faults.injected})"
            assert synced.errors == [], \
                f"sync settled in one run ({faults.injected}): {synced.errors}"
            assert faults.injected, "faults were injected"
            rows = ledger.effects(program.id)
            assert {r.state for r in rows} <= {"done", "skipped"}
            trainings = Counter(r.key for r in self.records(double, EffectKind.TRAINING))
            assert len(trainings) == len(people) and max(trainings.values()) == 1
            prompts = Counter(r.ticket_id for r in self.records(double, EffectKind.PROMPT))
            assert len(prompts) == 30 and max(prompts.values()) == 1
        finally:
            platforms.pm.unregister(name=Platforms.plugin_name(double.name))
            ledger.close()

    # -- filters checked against the platform -----------------------------------------

    def test_filter_values_are_checked_against_the_platform(self, platform: Any,
                                                            double: PlatformDouble) -> None:
        if not double.capabilities.filter_checks:
            pytest.skip(f"{double.name} does not check filter values")
        self.check_filter_values(platform, double)

    def check_filter_values(self, platform: Any, double: PlatformDouble) -> None:
        """A category the platform does not hold is named, with the prompt and the closest
        value it does hold; a category it holds is not."""
        double.add_ticket(title="Locked out", category="password reset",
                          group="Service Desk Tier 1", opened_at=BASE)
        base = _prompt_program(double.name)
        typo = Prompt("typo", "Typo", TicketFilter(categories=("pasword reset",)), "Text.",
                      BASE - timedelta(days=1), BASE + timedelta(days=30))
        program = replace(base, prompts=(*base.prompts, typo))
        checks = call_hook(platform, "itsm_change_check_filters", program=program) or []
        flagged = [c for c in checks if c.status is not CheckStatus.OK]
        about_typo = [c for c in flagged if "'typo'" in c.message]
        assert about_typo, f"the unknown category is flagged: {checks}"
        assert "pasword reset" in about_typo[0].message
        assert "password reset" in (about_typo[0].fix or ""), "the closest value is suggested"
        assert not [c for c in flagged if "'reset'" in c.message], \
            "a category the platform holds passes"

    # -- admin and registration --------------------------------------------------------

    def test_doctor_reports_checks(self, platform: Any, double: PlatformDouble) -> None:
        checks = call_hook(platform, "itsm_change_doctor")
        assert checks and all(isinstance(c, Check) for c in checks)
        assert {c.platform for c in checks} == {double.name}

    def check_event_forwarding(self, platform: Any, double: PlatformDouble) -> None:
        """A platform that cannot call webhooks forwards its events, signed, in the shape
        its own ``itsm_change_parse_webhook`` reads."""
        import responses

        (person,) = self.people(double, 1, role="Trainee")
        (result,) = self.publish(platform, [_training(double, person)])
        double.complete_task(result.ref, BASE + timedelta(days=1))
        url = f"https://itsm-change.example/webhooks/{double.name}"
        secret = "contract-forwarding-secret"
        forwarder = call_hook(platform, "itsm_change_event_forwarder", webhook_url=url,
                              secret=secret)
        assert forwarder is not None, "the platform offers no forwarder"
        with responses.RequestsMock() as rsps:
            rsps.add(responses.POST, url, status=202)
            sent = forwarder.forward_once(BASE + timedelta(days=1))
            bodies = [(call.request.headers, _bytes(call.request.body)) for call in rsps.calls]
        forwarder.close()
        assert sent == len(bodies) >= 1
        events = [event for headers, body in bodies for event in call_hook(
            platform, "itsm_change_parse_webhook", request=WebhookRequest(
                double.name, dict(headers), body, secret=secret))]
        assert [e.effect_key for e in events if e.kind is TicketEventKind.TASK_COMPLETED] \
            == [result.key]
        forged = WebhookRequest(double.name, dict(bodies[0][0]), b"{}", secret="not-it")
        with pytest.raises(WebhookRejected):
            call_hook(platform, "itsm_change_parse_webhook", request=forged)

    def test_events_are_forwarded_as_webhooks(self, platform: Any,
                                              double: PlatformDouble) -> None:
        if not double.capabilities.forwards_events:
            pytest.skip(f"{double.name} calls webhooks itself")
        self.check_event_forwarding(platform, double)

    def test_a_ticket_webhook_is_parsed_once_and_a_forged_one_refused(
            self, platform: Any, double: PlatformDouble) -> None:
        if not double.capabilities.webhooks:
            pytest.skip(f"{double.name} does not call webhooks (its events are forwarded)")
        ticket = double.add_ticket(title="Printer jam", opened_at=BASE, category="hardware")
        request = double.webhook_request(ticket)
        events = call_hook(platform, "itsm_change_parse_webhook", request=request)
        named = {e.ticket_id or (e.ticket.id if e.ticket else None) for e in events}
        assert named & {ticket.id, ticket.number}, "the event names the updated ticket"
        assert all(e.platform == double.name for e in events)
        again = call_hook(platform, "itsm_change_parse_webhook", request=request)
        assert [e.event_id for e in again] == [e.event_id for e in events], \
            "a redelivery has the same event ids, so it is recorded once"
        with pytest.raises(WebhookRejected) as info:
            call_hook(platform, "itsm_change_parse_webhook",
                      request=double.webhook_request(ticket, forged=True))
        assert info.value.status in (401, 403)

    # -- errors ------------------------------------------------------------------------

    @pytest.mark.parametrize("status, error", [(401, AuthenticationError),
                                               (403, PermissionDenied)])
    def test_a_refusal_carries_the_platforms_own_words_and_no_secret(
            self, platform: Any, double: PlatformDouble, status: int,
            error: type[APIError]) -> None:
        if not double.capabilities.http:
            pytest.skip(f"{double.name} does not talk HTTP")
        ticket = double.add_ticket(title="VPN down", opened_at=BASE)
        message = double.refuse_next_request(status)
        with pytest.raises(error) as info:
            call_hook(platform, "itsm_change_get_ticket", ticket_id=ticket.id)
        raised = info.value
        assert raised.status_code == status and raised.platform == double.name
        assert message in str(raised), "the platform's error body is read, not just the status"
        secrets = platform_registry(get_plugin_manager()).specs[double.name].secrets
        shown = f"{raised}{raised!r}{raised.body}{raised.url}{raised.details}"
        for name, value in double.settings().items():
            if name in secrets and value:
                assert str(value) not in shown, f"the {name} setting leaks into the error"

    def test_install_without_apply_only_describes(self, platform: Any,
                                                  double: PlatformDouble) -> None:
        before = double.write_calls()
        steps = call_hook(platform, "itsm_change_install",
                          webhook_url="https://itsm-change.example/webhooks/" + double.name,
                          apply=False, remove=False)
        assert steps and all(isinstance(s, InstallStep) for s in steps)
        assert {s.platform for s in steps} == {double.name}
        assert all(s.message for s in steps), "each step says what it is"
        assert double.write_calls() == before, "a plan must not change the platform"

    def test_the_platform_is_registered_under_its_name(self, double: PlatformDouble) -> None:
        registry = platform_registry(get_plugin_manager())
        assert double.name in registry.specs

    # -- the contract catches a hook left unmarked ------------------------------------

    def test_every_hookimpl_is_one_the_contract_would_miss(self, platform: Any,
                                                           double: PlatformDouble) -> None:
        """Remove each ``@hookimpl`` in turn from a copy of the platform: a required hook's
        copy is refused at registration (every test here registers the platform first), and
        an optional hook's copy fails the test of its feature."""
        hooks = [h for h in implemented_hooks(platform) if h in PLATFORM_HOOKS]
        assert hooks, "the platform marks no method with @hookimpl"
        for hook in hooks:
            stripped = without_hookimpl(platform, hook)
            if PLATFORM_HOOKS[hook]:
                with pytest.raises(PluginError, match=hook):
                    call_hook(stripped, "itsm_change_doctor")
                continue
            if hook not in OPTIONAL_HOOK_CHECKS:  # pragma: no cover - for a new optional hook
                pytest.fail(f"the contract has no check for the optional hook {hook}")
            capability, check = OPTIONAL_HOOK_CHECKS[hook]
            if not getattr(double.capabilities, capability):
                continue  # this configuration does not offer the feature; another class does
            with pytest.raises(AssertionError):
                getattr(self, check)(stripped, double)
