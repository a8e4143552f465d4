"""People-side measures from a small ledger whose numbers are worked out by hand below."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from itsm_change_sdk.ledger import Ledger
from itsm_change_sdk.metrics import builtin_metric_kinds
from itsm_change_sdk.model import (
    Channel,
    CommunicationEvent,
    Effect,
    EffectKind,
    EffectResult,
    FeedbackResponse,
    Goal,
    Person,
    Program,
    Prompt,
    Survey,
    Ticket,
    TicketFilter,
    TrainingModule,
    Unit,
    Wave,
)
from itsm_change_sdk.report.build import build_report

KINDS = {k.name: k for k in builtin_metric_kinds()}


def at(month: int, day: int, hour: int = 8) -> datetime:
    return datetime(2027, month, day, hour, tzinfo=UTC)


PROGRAM = Program(
    id="p", title="P", platforms=("sandbox",),
    goals=(Goal("mttr", "Faster", "mean_time_to_resolve", 30, 20),),
    waves=(Wave("pilot", "Pilot", date(2027, 1, 11), date(2027, 1, 18)),
           Wave("wave-2", "Wave 2", date(2027, 3, 1), date(2027, 3, 8))),
    units=(Unit("u1", "Desk", "pilot", "sandbox", group="Desk"),
           Unit("u2", "Field", "wave-2", "sandbox", group="Field")),
    alliance=(),
    training=(TrainingModule("m1", "M1", ("o",), ("u1", "u2"), 7),
              TrainingModule("m2", "M2", ("o",), ("u1",), 7)),
    communications=(CommunicationEvent("kickoff", "Kickoff", Channel.ANNOUNCEMENT, ("u1",), "t"),
                    CommunicationEvent("checkin", "Check-in", Channel.TASK, ("u1", "u2"), "t",
                                       survey="pulse")),
    surveys=(Survey("pulse", "Pulse", "q"),),
    prompts=(Prompt("pr", "Phone prompt", TicketFilter(channels=("phone",)), "text",
                    at(1, 11, 0), at(6, 30, 0)),),
)


def put(ledger: Ledger, key: str, kind: EffectKind, created: datetime, *, person: str = "",
        due: date | None = None, ticket: str | None = None, ok: bool = True,
        **meta: str) -> None:
    effect = Effect(key, kind, "sandbox", "p", key, "body", "task",
                    recipient=Person(person, person, "sandbox") if person else None,
                    ticket_id=ticket, due=due, meta=meta)
    assert ledger.claim(effect, created)
    ledger.record_result(effect, EffectResult(key, ok, error=None if ok else "refused"), created)


def answer(ledger: Ledger, rid: str, person: str, when: datetime, scores: dict[str, int],
           text: str = "", source: str = "survey", unit: str = "u1") -> None:
    ledger.add_feedback(FeedbackResponse(rid, "sandbox", "p", person, when, scores, text, source,
                                         unit=unit))


def ticket(n: int, opened: datetime, channel: str, hours: float) -> Ticket:
    return Ticket("sandbox", f"T{n}", f"T{n}", "t", "incident", "resolved", opened,
                  opened + timedelta(hours=hours), opened + timedelta(hours=hours),
                  group="Desk", channel=channel)


@pytest.fixture
def report(tmp_path):
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    due = date(2027, 1, 18)
    # Training, assigned 01-11 08:00.
    put(ledger, "t:m1:alice", EffectKind.TRAINING, at(1, 11), person="alice", due=due,
        unit="u1", module="m1")
    put(ledger, "t:m1:bob", EffectKind.TRAINING, at(1, 11), person="bob", due=due,
        unit="u1", module="m1")
    put(ledger, "t:m2:alice", EffectKind.TRAINING, at(1, 11), person="alice", due=due,
        unit="u1", module="m2")
    put(ledger, "t:m2:bob", EffectKind.TRAINING, at(1, 11), person="bob", due=due,
        unit="u1", module="m2")
    put(ledger, "t:m1:carol", EffectKind.TRAINING, at(1, 11), person="carol",
        due=date(2027, 3, 8), unit="u2", module="m1")
    put(ledger, "t:m1:dave", EffectKind.TRAINING, at(1, 11), person="dave", due=due,
        ok=False, unit="u1", module="m1")
    ledger.set_completed("t:m1:alice", True, at(1, 13))  # 2 days
    ledger.set_completed("t:m1:bob", True, at(1, 15))    # 4 days
    ledger.set_completed("t:m2:bob", True, at(1, 12))    # 1 day
    # Communications.
    put(ledger, "c:kickoff", EffectKind.MESSAGE, at(1, 5), event="kickoff",
        occurrence="2027-01-05T09:00:00+00:00")
    for person, unit in (("alice", "u1"), ("bob", "u1"), ("carol", "u2")):
        put(ledger, f"c:checkin:1:{person}", EffectKind.FEEDBACK_REQUEST, at(1, 25, 10),
            person=person, event="checkin", occurrence="2027-01-25T10:00:00+00:00",
            survey="pulse", unit=unit)
    for person in ("alice", "bob"):
        put(ledger, f"c:checkin:2:{person}", EffectKind.FEEDBACK_REQUEST, at(2, 8, 10),
            person=person, event="checkin", occurrence="2027-02-08T10:00:00+00:00",
            survey="pulse", unit="u1")
    # Feedback: alice answers the first check-in twice, bob the second; bob's comment
    # answers no request.
    answer(ledger, "r1", "alice", at(1, 26, 16), {"awareness": 4, "desire": 3, "knowledge": 2,
           "ability": 2, "reinforcement": 3}, "need a <b>guide</b>")
    answer(ledger, "r2", "alice", at(1, 27, 16), {"awareness": 5, "desire": 4, "knowledge": 3,
           "ability": 3, "reinforcement": 4}, "more practice please")
    answer(ledger, "r3", "bob", at(1, 28, 16), {"knowledge": 4, "ability": 3},
           "portal is slow", source="comment")
    answer(ledger, "r4", "bob", at(2, 9, 16), {"awareness": 3, "desire": 2, "knowledge": 4,
           "ability": 1, "reinforcement": 2})
    # Prompts: T5 carried the phone prompt; T6 and T7 (phone) did not; T8 (portal) does not
    # match the prompt; T0 was opened before the prompt was active.
    put(ledger, "pr:T5", EffectKind.PROMPT, at(1, 19), ticket="T5", prompt="pr", unit="u1")
    tickets = [ticket(0, at(1, 5), "phone", 50), ticket(5, at(1, 19), "phone", 2),
               ticket(6, at(1, 20), "phone", 6), ticket(7, at(1, 21), "phone", 10),
               ticket(8, at(1, 21), "portal", 1)]
    built = build_report(PROGRAM, ledger, tickets, KINDS, now=at(1, 20, 12))
    yield built
    ledger.close()


class TestTraining:
    def test_per_unit(self, report):
        """u1: 4 on the platform (dave's failed), 3 complete in 2, 4 and 1 days -> median 2;
        m2/alice was due 01-18 and the report is as of 01-20: overdue. u2: due in March."""
        u1 = report.training.by_unit["u1"]
        assert (u1.assigned, u1.completed, u1.overdue) == (4, 3, 1)
        assert u1.share == 0.75
        assert u1.median_days == pytest.approx(2.0)
        u2 = report.training.by_unit["u2"]
        assert (u2.assigned, u2.completed, u2.overdue, u2.median_days) == (1, 0, 0, None)

    def test_per_module(self, report):
        """m1 for u1: 2/2 in 2 and 4 days -> median 3; m2: 1/2, one overdue, 1 day."""
        m1 = report.training.by_unit_module[("u1", "m1")]
        m2 = report.training.by_unit_module[("u1", "m2")]
        assert (m1.assigned, m1.completed, m1.overdue) == (2, 2, 0)
        assert m1.median_days == pytest.approx(3.0)
        assert (m2.assigned, m2.completed, m2.overdue) == (2, 1, 1)
        assert m2.median_days == pytest.approx(1.0)

    def test_overdue_follows_the_report_date(self, report):
        """Records run ahead of the 01-20 clock (feedback in February), so the report is as of
        the latest record, 02-09 16:00: carol's March due date has still not passed."""
        assert report.as_of == at(2, 9, 16)
        assert report.notes and "ahead of the clock" in report.notes[0]
        assert report.training.by_unit["u2"].overdue == 0


class TestCommunication:
    def test_delivered_and_answered_per_occurrence(self, report):
        """01-25: 3 requests, alice answered (twice: counts once), bob only commented.
        02-08: 2 requests, bob answered. The kickoff is one announcement, no request."""
        rows = {(c.event, c.occurrence[:10]): c for c in report.communications}
        assert [(c.delivered, c.requests, c.answered) for c in rows.values()] == [
            (1, 0, 0), (3, 3, 1), (2, 2, 1)]
        assert rows[("checkin", "2027-01-25")].title == "Check-in"


class TestFeedback:
    def test_averages_weakest_and_response_rate(self, report):
        """aw (4+5+3)/3=4, de (3+4+2)/3=3, kn (2+3+4+4)/4=3.25, ab (2+3+3+1)/4=2.25,
        re (3+4+2)/3=3 -> barrier ability. Requests answered 2 of 4 -> 50%."""
        u1 = report.feedback.units["u1"]
        assert u1.averages == pytest.approx({"awareness": 4.0, "desire": 3.0,
                                             "knowledge": 3.25, "ability": 2.25,
                                             "reinforcement": 3.0})
        assert u1.weakest == "ability"
        assert (u1.responses, u1.from_comments, u1.requests, u1.answered) == (4, 1, 4, 2)
        assert u1.response_rate == 0.5
        u2 = report.feedback.units["u2"]
        assert (u2.requests, u2.answered, u2.response_rate, u2.weakest) == (1, 0, 0.0, None)

    def test_weekly_averages(self, report):
        """Week of 01-25: r1, r2, r3; week of 02-08: r4."""
        weekly = report.feedback.units["u1"].weekly
        assert list(weekly) == [date(2027, 1, 25), date(2027, 2, 8)]
        assert weekly[date(2027, 1, 25)]["ability"] == pytest.approx(8 / 3)
        assert weekly[date(2027, 1, 25)]["awareness"] == pytest.approx(4.5)
        assert weekly[date(2027, 2, 8)]["ability"] == 1

    def test_free_text_grouped_by_lowest_dimension(self, report):
        """r1 ties knowledge/ability at 2 -> knowledge (earlier in ADKAR); r2 ties at 3 ->
        knowledge; r3 scores ability 3 below knowledge 4; r4 wrote nothing."""
        texts = report.feedback.units["u1"].texts
        assert {k: [a.text for a in v] for k, v in texts.items()} == {
            "knowledge": ["need a <b>guide</b>", "more practice please"],
            "ability": ["portal is slow"]}


class TestPrompts:
    def test_tickets_with_and_without_the_prompt(self, report):
        """Eligible: T5, T6, T7 (phone, in the window). With: T5 2h. Without: (6+10)/2 = 8h."""
        [comparison] = report.prompts
        assert (comparison.with_prompt, comparison.without_prompt) == (1, 2)
        [row] = comparison.goals
        assert (row.with_value, row.with_count) == (pytest.approx(2.0), 1)
        assert (row.without_value, row.without_count) == (pytest.approx(8.0), 2)


def test_as_of_given_explicitly_is_used(tmp_path):
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    put(ledger, "t", EffectKind.TRAINING, at(1, 11), person="a", due=date(2027, 1, 18),
        unit="u1", module="m1")
    early = build_report(PROGRAM, ledger, [], KINDS, now=at(3, 1), as_of=at(1, 17))
    late = build_report(PROGRAM, ledger, [], KINDS, now=at(3, 1), as_of=at(1, 19))
    assert early.training.by_unit["u1"].overdue == 0
    assert late.training.by_unit["u1"].overdue == 1
    assert early.notes == []
