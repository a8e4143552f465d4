"""Gather every number the report shows, with one pass over the ticket stream.

The terminal, HTML, CSV and JSON outputs all render the same :class:`Report`, so a number
never differs between them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from ..ledger import EffectRow, Ledger, SignOff
from ..metrics import GoalEngine, GoalResult, MetricKind, known_at
from ..model import FeedbackResponse, Program, Ticket
from ..plugins import Platforms
from .gates import GateResult, evaluate_gate
from .leaders import LeaderRow, SilentUnit, leader_measures, silent_units
from .measures import (
    CommunicationRow,
    FeedbackMeasures,
    PromptComparison,
    PromptSplit,
    TrainingMeasures,
    answered_requests,
    communication_measures,
    feedback_measures,
    training_measures,
)
from .verdict import Verdict, verdict

if TYPE_CHECKING:
    from ..insights.voices import ThemeVoice

__all__ = ["Report", "build_report", "program_tickets"]


@dataclass
class Report:
    program: Program
    as_of: datetime
    goals: list[GoalResult]
    training: TrainingMeasures
    communications: list[CommunicationRow]
    feedback: FeedbackMeasures
    prompts: list[PromptComparison]
    signoffs: list[SignOff]
    gates: dict[str, GateResult]
    tickets_read: int
    verdict: Verdict
    notes: list[str] = field(default_factory=list)
    voices: list[ThemeVoice] = field(default_factory=list)
    """What people are saying: themes over feedback comments, for programs that read
    unmarked comments (``feedback: {unmarked: true}``)."""
    leaders: list[LeaderRow] = field(default_factory=list)
    """What each alliance member and sponsor did (see :mod:`.leaders`)."""
    silent: list[SilentUnit] = field(default_factory=list)
    """Live units longer than the program's ``silence_days`` without a message."""

    def gate(self, wave_id: str) -> GateResult:
        return self.gates[wave_id]


def program_tickets(platforms: Platforms, program: Program) -> Iterator[Ticket]:
    """Every ticket of every platform the program's units are on, lazily, a page at a time
    (a platform no unit is on has no ticket a goal could count)."""
    for platform in dict.fromkeys(unit.platform for unit in program.units):
        yield from platforms.call(platform, "itsm_change_stream_tickets", since=None) or ()


def build_report(program: Program, ledger: Ledger, tickets: Iterable[Ticket],
                 kinds: Mapping[str, MetricKind], *, now: datetime,
                 as_of: datetime | None = None) -> Report:
    """Compute the report.

    :param now: the clock's time.
    :param as_of: show only what was known at this moment: tickets opened by then (open
        again if resolved later), records made by then, answers and sign-offs given by
        then. By default ``now``, or the latest record when the records run ahead of the
        clock (a rehearsal on a simulated calendar, as ``itsm-change demo`` makes).
    """
    rows = ledger.effects(program.id)
    responses = list(ledger.feedback(program.id))
    signoffs = ledger.signoffs(program.id)
    notes: list[str] = []
    if as_of is not None:
        rows = [r for r in (_row_known_at(r, as_of) for r in rows) if r is not None]
        responses = [r for r in responses if r.submitted_at <= as_of]
        signoffs = [s for s in signoffs if s.signed_at <= as_of]
    engine = GoalEngine(program, kinds)
    split = PromptSplit(program, rows, kinds)
    latest: datetime | None = None
    for ticket in tickets:
        if as_of is not None:
            seen = known_at(ticket, as_of)
            if seen is None:
                continue
            ticket = seen
        unit = engine.add(ticket)
        if unit is not None:
            split.add(ticket, unit)
        if latest is None or ticket.updated_at > latest:
            latest = ticket.updated_at
    if as_of is None:
        as_of = now
        stamps = [latest] if latest is not None else []
        stamps += [r.created_at for r in rows] + [r.completed_at for r in rows
                                                   if r.completed_at is not None]
        stamps += [r.submitted_at for r in responses]
        newest = max(stamps, default=None)
        if newest is not None and newest > now:
            as_of = newest
            notes.append(f"The records run ahead of the clock (a rehearsal on a simulated "
                         f"calendar): figures are as of the latest record, "
                         f"{as_of:%Y-%m-%d %H:%M} UTC.")
    goals = engine.finish(as_of)
    answered = answered_requests(rows, responses)
    training = training_measures(program, rows, as_of)
    gates = {w.id: evaluate_gate(program, w.id, goals, training, signoffs, as_of)
             for w in program.waves}
    feedback = feedback_measures(program, rows, responses, answered)
    return Report(
        program=program, as_of=as_of, goals=goals, training=training,
        communications=communication_measures(program, rows, answered),
        feedback=feedback, prompts=split.finish(as_of), signoffs=signoffs, gates=gates,
        tickets_read=engine.tickets_seen,
        verdict=verdict(program, goals, gates, feedback, as_of), notes=notes,
        voices=_voices(program, ledger, responses, as_of),
        leaders=leader_measures(program, rows, signoffs, as_of),
        silent=silent_units(program, rows, as_of),
    )


def _voices(program: Program, ledger: Ledger, marked: list[FeedbackResponse],
            as_of: datetime) -> list[ThemeVoice]:
    """Themes over marked and inferred comments written by ``as_of`` (``marked`` is
    filtered already), when the program reads unmarked ones."""
    if not program.unmarked_feedback.enabled:
        return []
    from ..insights import require_insights

    require_insights()
    from ..insights.voices import what_people_say

    comments = [r for r in marked if r.source == "comment"]
    inferred = [r for r in ledger.feedback(program.id, inferred=True)
                if r.submitted_at <= as_of]
    return what_people_say(comments + inferred)


def _row_known_at(row: EffectRow, as_of: datetime) -> EffectRow | None:
    """A ledger record as it stood at ``as_of``: None if made later, not completed yet if
    completed later."""
    if row.created_at > as_of:
        return None
    if row.completed_at is not None and row.completed_at > as_of:
        return dataclasses.replace(row, completed=False, completed_at=None)
    return row
