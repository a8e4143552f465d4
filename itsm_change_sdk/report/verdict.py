"""The verdict: what a change lead reads first, drawn from the numbers the report holds.

Every view (terminal, HTML, JSON) shows the same :class:`Verdict` above the detail: each
goal's standing for the units that are live, the next wave's gate with what blocks it, the
weakest ADKAR dimension and what people wrote about most.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from ..metrics import GoalResult, UnitResult
from ..model import Program
from .gates import GateResult, fmt_value, trend
from .measures import NO_SCORES, FeedbackMeasures, weakest_dimension

__all__ = ["GoalStanding", "Verdict", "verdict"]


@dataclass(frozen=True)
class GoalStanding:
    """One goal for one live unit: ``met``, ``trending``, ``not met`` or ``unknown``."""

    goal: str
    title: str
    unit: str
    standing: str
    value: str
    """The current value against the target, formatted, e.g. ``42% (target 50%)``."""
    reason: str
    """Why unknown, or the trend's reason when trending or not met; empty when met."""


@dataclass
class Verdict:
    goals: list[GoalStanding] = field(default_factory=list)
    next_wave: str | None = None
    """The first wave not started at the report's date; None when every wave has."""
    next_wave_starts: str | None = None
    gate_open: bool | None = None
    blocking: list[str] = field(default_factory=list)
    """The next wave's unmet gate conditions, in the gate's words."""
    weakest: str | None = None
    """The ADKAR dimension with the lowest average over every live unit's answers."""
    weakest_score: float | None = None
    frequent: str | None = None
    """The dimension most free-text answers were grouped under (their writer's lowest)."""
    frequent_count: int = 0
    frequent_total: int = 0


def _standing(result: GoalResult, unit: UnitResult, program: Program,
              as_of: datetime) -> GoalStanding:
    goal = result.goal
    label = result.unit_label
    value = f"{fmt_value(unit.current, label)} (target {fmt_value(goal.target, label)})"
    if unit.unknown is not None:
        return GoalStanding(goal.id, goal.title, unit.unit, "unknown", value, unit.unknown)
    if unit.met:
        return GoalStanding(goal.id, goal.title, unit.unit, "met", value, "")
    go_live = program.wave(program.unit(unit.unit).wave).go_live
    found = trend(unit, go_live, as_of, label)
    return GoalStanding(goal.id, goal.title, unit.unit,
                        "trending" if found.trending else "not met", value, found.reason)


def verdict(program: Program, goals: list[GoalResult], gates: dict[str, GateResult],
            feedback: FeedbackMeasures, as_of: datetime) -> Verdict:
    """The answer first: see the module doc for what it holds."""
    out = Verdict()
    for result in goals:
        for unit in result.units.values():
            if unit.live:
                out.goals.append(_standing(result, unit, program, as_of))
    upcoming = next((w for w in program.waves if w.starts > as_of.date()), None)
    if upcoming is not None:
        gate = gates[upcoming.id]
        out.next_wave = upcoming.id
        out.next_wave_starts = upcoming.starts.isoformat()
        out.gate_open = gate.open
        out.blocking = [c.text for c in gate.conditions if not c.ok]
    live = {u.id for u in program.units if program.wave(u.wave).go_live <= as_of.date()}
    totals: dict[str, list[float]] = {}
    groups: Counter[str] = Counter()
    for unit_id, fb in feedback.units.items():
        if unit_id not in live:
            continue
        for dim, mean in fb.averages.items():
            bucket = totals.setdefault(dim, [0.0, 0.0])
            bucket[0] += mean * fb.counts.get(dim, 0)
            bucket[1] += fb.counts.get(dim, 0)
        for group, answers in fb.texts.items():
            if group != NO_SCORES:
                groups[group] += len(answers)
    means = {d: total / n for d, (total, n) in totals.items() if n}
    out.weakest = weakest_dimension(means)
    out.weakest_score = means.get(out.weakest) if out.weakest else None
    if groups:
        order = {d: i for i, d in enumerate(feedback.dimensions)}
        out.frequent, out.frequent_count = min(
            groups.items(), key=lambda kv: (-kv[1], order.get(kv[0], len(order)), kv[0]))
        out.frequent_total = sum(groups.values())
    return out
