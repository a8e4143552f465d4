"""Wave gates: may the next wave start?

A wave may start when the wave before it worked: its units met their goals or are clearly
on the way (trending), they finished their training, and the managers who speak for the new
wave's units have signed it off. The pilot has no wave before it, so only sign-offs gate it.
A goal whose value is unknown (see :mod:`itsm_change_sdk.metrics`) is not met, and the
condition says why.

*Trending*, precisely: over the last :data:`TREND_WEEKS` complete weeks since the unit's
go-live (a week is complete once its Sunday has passed as of the report's date), each weekly
value is at least as close to the target as the week before and the last is strictly closer
than the first; and the current value (since go-live) is at least
:data:`TREND_MIN_PROGRESS` of the way from the goal's declared baseline to its target.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import pairwise

from ..ledger import SignOff
from ..metrics import GoalResult, UnitResult, week_start
from ..model import Program
from .measures import TrainingMeasures

__all__ = [
    "TREND_MIN_PROGRESS",
    "TREND_WEEKS",
    "Condition",
    "GateResult",
    "Trend",
    "evaluate_gate",
    "fmt_value",
    "status_text",
    "trend",
]

TREND_WEEKS = 3
TREND_MIN_PROGRESS = 0.5


def fmt_value(value: float | None, unit_label: str) -> str:
    if value is None:
        return "-"
    if unit_label == "share":
        return f"{value:.0%}"
    if unit_label == "hours":
        return f"{value:.1f}h"
    return f"{value:.2f}"


def status_text(result: UnitResult) -> str:
    """One unit's standing on one goal, as every view shows it."""
    if not result.live:
        return "not live yet"
    if result.unknown is not None:
        return f"unknown: {result.unknown}"
    if result.met:
        return "goal met"
    return f"not met, {max(result.progress or 0.0, 0.0):.0%} of the way to target"


@dataclass(frozen=True)
class Trend:
    trending: bool
    weeks: tuple[tuple[date, float], ...]
    """The weekly values the decision looked at, oldest first."""
    reason: str


def complete_weeks_since_go_live(result: UnitResult, go_live: date,
                                 as_of: datetime) -> list[tuple[date, float]]:
    """Weekly values from the first full week after go-live up to the last finished week."""
    first = week_start(go_live)
    if first < go_live:
        first += timedelta(days=7)  # the go-live week mixes before and after
    today = as_of.date()
    return [(week, value) for week, value in result.weekly.items()
            if value is not None and week >= first and week + timedelta(days=7) <= today]


def trend(result: UnitResult, go_live: date, as_of: datetime, unit_label: str) -> Trend:
    """Whether a unit not at its target yet is moving towards it (see the module doc)."""
    weeks = complete_weeks_since_go_live(result, go_live, as_of)[-TREND_WEEKS:]
    if len(weeks) < TREND_WEEKS:
        return Trend(False, tuple(weeks),
                     f"only {len(weeks)} complete week(s) since go-live, "
                     f"{TREND_WEEKS} needed for a trend")
    gaps = [abs(result.target - value) for _, value in weeks]
    shown = " -> ".join(fmt_value(v, unit_label) for _, v in weeks)
    steady = all(later <= earlier for earlier, later in pairwise(gaps))
    if not (steady and gaps[-1] < gaps[0]):
        return Trend(False, tuple(weeks), f"last {TREND_WEEKS} weeks {shown} "
                     "do not move steadily towards the target")
    progress = result.progress or 0.0
    if progress < TREND_MIN_PROGRESS:
        return Trend(False, tuple(weeks), f"last {TREND_WEEKS} weeks {shown} move towards "
                     f"the target, but only {max(progress, 0.0):.0%} of the way from baseline "
                     f"(at least {TREND_MIN_PROGRESS:.0%} needed)")
    return Trend(True, tuple(weeks), f"last {TREND_WEEKS} weeks {shown} move towards the "
                 f"target, {progress:.0%} of the way from baseline")


@dataclass(frozen=True)
class Condition:
    """One thing the gate checked, with its numbers."""

    check: str
    """``goal``, ``training``, ``signoff`` or ``leaders``."""
    ok: bool
    text: str


@dataclass
class GateResult:
    wave: str
    previous: str | None
    conditions: list[Condition] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """Context that does not decide (e.g. the wave has started already)."""

    @property
    def open(self) -> bool:
        return all(c.ok for c in self.conditions)


def evaluate_gate(program: Program, wave_id: str, goals: Sequence[GoalResult],
                  training: TrainingMeasures, signoffs: Iterable[SignOff],
                  as_of: datetime) -> GateResult:
    """Check every condition for ``wave_id`` (a known wave id) and say why."""
    order = [w.id for w in program.waves]
    index = order.index(wave_id)
    previous = order[index - 1] if index > 0 else None
    gate = GateResult(wave_id, previous)
    wave = program.wave(wave_id)
    if wave.starts <= as_of.date():
        gate.notes.append(f"{wave_id} started on {wave.starts} (as of {as_of.date()}); "
                          "the gate says whether it should have")
    if previous is not None:
        _goal_conditions(program, previous, goals, as_of, gate)
        _training_conditions(program, previous, training, gate)
    _signoff_conditions(program, wave_id, signoffs, gate)
    if wave.leaders_trained:
        _leader_conditions(program, wave_id, training, gate)
    return gate


def _leader_conditions(program: Program, wave_id: str, training: TrainingMeasures,
                       gate: GateResult) -> None:
    """Each member who signs the wave off has completed every module their units take."""
    for member in (m for m in program.alliance if wave_id in m.signs_off):
        modules = [m.id for m in program.training if "alliance" in m.audience
                   and any(u in m.audience for u in member.units)]
        if not modules:
            gate.conditions.append(Condition(
                "leaders", False, f"leader training for {member.id} ({member.name}): no module "
                "their units take has 'alliance' in its audience; add it where they should "
                "lead by example"))
            continue
        missing = [m for m in modules if not (training.leaders.get((member.id, m))
                                              and training.leaders[(member.id, m)].completed)]
        done = len(modules) - len(missing)
        text = (f"leader training for {member.id} ({member.name}): {done}/{len(modules)} of "
                "the modules their units take completed")
        if missing:
            text += f"; not yet: {', '.join(missing)}"
        gate.conditions.append(Condition("leaders", not missing, text))


def _goal_conditions(program: Program, previous: str, goals: Sequence[GoalResult],
                     as_of: datetime, gate: GateResult) -> None:
    go_live = program.wave(previous).go_live
    for unit in program.units_in_wave(previous):
        for result in goals:
            unit_result = result.units.get(unit.id)
            if unit_result is None:
                continue
            label = result.unit_label
            goal = result.goal
            head = (f"goal {goal.id} for {unit.id}: now {fmt_value(unit_result.current, label)}"
                    f" (baseline {fmt_value(goal.baseline, label)}, target "
                    f"{fmt_value(goal.target, label)}, {unit_result.current_count} tickets "
                    "since go-live)")
            if unit_result.unknown is not None:
                gate.conditions.append(Condition(
                    "goal", False, f"{head}: unknown, counted as not met "
                    f"({unit_result.unknown})"))
            elif unit_result.met:
                gate.conditions.append(Condition("goal", True, f"{head}: met"))
            else:
                found = trend(unit_result, go_live, as_of, label)
                verdict = "trending to target" if found.trending else "not met, not trending"
                gate.conditions.append(Condition(
                    "goal", found.trending, f"{head}: {verdict} ({found.reason})"))


def _training_conditions(program: Program, previous: str, training: TrainingMeasures,
                         gate: GateResult) -> None:
    threshold = program.training_threshold
    for unit in program.units_in_wave(previous):
        modules = training.planned.get(unit.id, ())
        cell = training.by_unit.get(unit.id)
        if not modules:
            gate.conditions.append(Condition(
                "training", True, f"training for {unit.id}: none planned"))
        elif cell is None or not cell.assigned:
            gate.conditions.append(Condition(
                "training", False, f"training for {unit.id}: not assigned yet "
                f"({len(modules)} module(s) planned)"))
        else:
            share = cell.share or 0.0
            ok = share >= threshold
            gate.conditions.append(Condition(
                "training", ok, f"training for {unit.id}: {cell.completed}/{cell.assigned} "
                f"complete ({share:.0%}, {'at or above' if ok else 'below'} the "
                f"{threshold:.0%} threshold; {cell.overdue} overdue)"))


def _signoff_conditions(program: Program, wave_id: str, signoffs: Iterable[SignOff],
                        gate: GateResult) -> None:
    signed = {s.member: s for s in signoffs if s.wave == wave_id}
    members = [m for m in program.alliance if wave_id in m.signs_off]
    if not members:
        gate.conditions.append(Condition(
            "signoff", True, f"sign-off: no alliance member signs {wave_id} off"))
    for member in members:
        found = signed.get(member.id)
        if found is not None:
            note = f": {found.note}" if found.note else ""
            gate.conditions.append(Condition(
                "signoff", True, f"sign-off by {member.id} ({member.name}, {member.domain}): "
                f"signed {found.signed_at:%Y-%m-%d}{note}"))
        else:
            gate.conditions.append(Condition(
                "signoff", False, f"sign-off by {member.id} ({member.name}, {member.domain}): "
                "missing"))
