"""A report as of a past date counts what was known then: reopenings, and feedback themes."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from itsm_change_sdk.metrics import builtin_metric_kinds, compute_goals, known_at
from itsm_change_sdk.model import Goal, Program, Ticket, TicketFilter, Unit, Wave

KINDS = {k.name: k for k in builtin_metric_kinds()}
D = datetime(2027, 1, 25, tzinfo=UTC)
"""The report's date: a week after the pilot's go-live on 2027-01-18."""


def program() -> Program:
    reopen = Goal("reopen", "Fewer reopenings", "reopen_rate", baseline=0.5, target=0.1,
                  filter=TicketFilter(kinds=("incident",)))
    return Program(id="p", title="P", platforms=("sandbox",), goals=(reopen,), min_sample=1,
                   waves=(Wave("pilot", "Pilot", date(2027, 1, 11), date(2027, 1, 18)),),
                   units=(Unit("u1", "Desk", "pilot", "sandbox", group="Desk"),),
                   alliance=(), training=(), communications=(), surveys=(), prompts=())


def ticket(n: int, opened: int, resolved: int | None, *, reopen: int, state: str = "",
           updated: int | None = None) -> Ticket:
    """Opened and resolved on those days of January 2027, updated last on ``updated``."""
    at = datetime(2027, 1, opened, 9, tzinfo=UTC)
    done = datetime(2027, 1, resolved, 9, tzinfo=UTC) if resolved else None
    last = datetime(2027, 1, updated, 9, tzinfo=UTC) if updated else (done or at)
    return Ticket("sandbox", f"T{n}", f"T{n}", "t", "incident",
                  state or ("resolved" if done else "open"), at, last, done, group="Desk",
                  channel="portal", reopen_count=reopen, reassignment_count=0)


TICKETS = [
    # Reopened before D and resolved again before D: reopened as of D.
    ticket(1, 19, 21, reopen=1),
    # Resolved before D; a comment after D moved its update time: no reopening, as of D.
    ticket(2, 19, 20, reopen=0, updated=27),
    # Resolved on 01-20, reopened on 01-27 and still open; the platform kept the old
    # resolution time. As of D it was resolved, but its reopening count then is unknown.
    ticket(3, 19, 20, reopen=1, state="open", updated=27),
    # Resolved before D: not reopened.
    ticket(4, 20, 22, reopen=0),
    # First resolved on 01-21, reopened and resolved again on 01-28: open as of D.
    ticket(5, 20, 28, reopen=1),
]


def test_known_at_keeps_only_the_counts_known_on_the_date():
    assert known_at(TICKETS[0], D) == TICKETS[0]
    assert known_at(TICKETS[1], D) == TICKETS[1]
    then = known_at(TICKETS[2], D)
    assert then is not None and then.resolved_at is not None and then.reopen_count is None
    assert then.reassignment_count == 0
    assert known_at(TICKETS[4], D).resolved_at is None  # type: ignore[union-attr]


def test_reopen_rate_as_of_a_past_date_counts_only_what_was_known_then():
    """As of 01-25: T1 reopened, T2 and T4 not, T3 unknown (left apart), T5 still open.
    1 of 3 = 33%. Counting the platform's current counts would give T3 as reopened too:
    2 of 4 = 50%."""
    [result] = compute_goals(program(), TICKETS, KINDS, D)
    unit = result.units["u1"]
    assert unit.current is not None and abs(unit.current - 1 / 3) < 1e-9
    assert unit.current_count == 3


def test_a_ticket_reopened_before_the_date_is_open_then():
    """T3 reopened on 01-27 and last updated then; as of 01-28 it is open, not resolved."""
    later = datetime(2027, 1, 28, 12, tzinfo=UTC)
    assert known_at(TICKETS[2], later).resolved_at is None  # type: ignore[union-attr]


def test_counts_of_today_are_the_platforms_own():
    """A month later every count is known: of the four resolved tickets (T3 is open again),
    T1 and T5 were reopened = 50%."""
    now = D + timedelta(days=30)
    [result] = compute_goals(program(), TICKETS, KINDS, now)
    assert result.units["u1"].current == 0.5


def test_what_people_are_saying_holds_only_comments_written_by_the_date(tmp_path):
    """Two inferred comments, one before and one after D: the themes as of D count one."""
    from itsm_change_sdk.ledger import Ledger
    from itsm_change_sdk.model import FeedbackResponse, UnmarkedFeedback
    from itsm_change_sdk.report.build import build_report

    listening = replace(program(), goals=(),
                        unmarked_feedback=UnmarkedFeedback(enabled=True, threshold=0.5))
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    for n, day in ((1, 20), (2, 28)):
        ledger.add_feedback(FeedbackResponse(
            id=f"comment:{n}", platform="sandbox", program="p", person="u-1",
            submitted_at=datetime(2027, 1, day, 9, tzinfo=UTC), scores={},
            text="the new portal form takes twice as long as the phone", source="comment",
            unit="u1", inferred=True, confidence=0.9, dimension="ability", sentiment=-1))
    then = build_report(listening, ledger, [], KINDS, now=D + timedelta(days=30), as_of=D)
    later = build_report(listening, ledger, [], KINDS, now=D + timedelta(days=30),
                         as_of=D + timedelta(days=30))
    ledger.close()
    assert sum(v.comments for v in then.voices) == 1
    assert sum(v.comments for v in later.voices) == 2
