"""Goal metrics computed from ticket data, per unit and per week, in one streaming pass.

A :class:`MetricKind` turns tickets into one number (a share, a mean, a rate). Kinds are
pluggable through ``itsm_change_register_metric_kinds``; the common ones ship here. Memory
is bounded by units x goals x weeks, never by the number of tickets.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Protocol

from .hookspecs import hookimpl
from .model import Goal, Program, Ticket

__all__ = [
    "Accumulator",
    "GoalResult",
    "MetricKind",
    "UnitResult",
    "builtin_metric_kinds",
    "compute_goals",
    "week_start",
]


class Accumulator(Protocol):
    def add(self, ticket: Ticket) -> None: ...

    def value(self) -> float | None: ...

    @property
    def count(self) -> int: ...


class MetricKind(Protocol):
    name: str
    title: str
    unit_label: str

    def accumulator(self, params: Mapping[str, Any]) -> Accumulator: ...


@dataclass
class _Share:
    predicate: Any
    hits: int = 0
    total: int = 0

    def add(self, ticket: Ticket) -> None:
        self.total += 1
        self.hits += bool(self.predicate(ticket))

    def value(self) -> float | None:
        return self.hits / self.total if self.total else None

    @property
    def count(self) -> int:
        return self.total


@dataclass
class _MeanHours:
    total: float = 0.0
    n: int = 0

    def add(self, ticket: Ticket) -> None:
        if ticket.resolved_at is not None:
            self.total += (ticket.resolved_at - ticket.opened_at).total_seconds() / 3600
            self.n += 1

    def value(self) -> float | None:
        return self.total / self.n if self.n else None

    @property
    def count(self) -> int:
        return self.n


@dataclass(frozen=True)
class ChannelShare:
    """Share of tickets raised through one channel (``params.channel``, e.g. portal)."""

    name: str = "channel_share"
    title: str = "Share raised through a channel"
    unit_label: str = "share"

    def accumulator(self, params: Mapping[str, Any]) -> Accumulator:
        channel = str(params.get("channel", "portal")).casefold()
        return _Share(lambda t: (t.channel or "").casefold() == channel)


@dataclass(frozen=True)
class MeanTimeToResolve:
    """Mean hours from opening to resolution, over resolved tickets."""

    name: str = "mean_time_to_resolve"
    title: str = "Mean time to resolve"
    unit_label: str = "hours"

    def accumulator(self, params: Mapping[str, Any]) -> Accumulator:
        return _MeanHours()


@dataclass(frozen=True)
class FirstContactResolution:
    """Share of resolved tickets resolved without reassignment or reopening."""

    name: str = "first_contact_resolution"
    title: str = "First-contact resolution"
    unit_label: str = "share"

    def accumulator(self, params: Mapping[str, Any]) -> Accumulator:
        return _ResolvedShare(lambda t: t.reassignment_count == 0 and t.reopen_count == 0)


@dataclass(frozen=True)
class ReopenRate:
    """Share of resolved tickets that were reopened at least once."""

    name: str = "reopen_rate"
    title: str = "Reopen rate"
    unit_label: str = "share"

    def accumulator(self, params: Mapping[str, Any]) -> Accumulator:
        return _ResolvedShare(lambda t: t.reopen_count > 0)


@dataclass
class _ResolvedShare(_Share):
    def add(self, ticket: Ticket) -> None:
        if ticket.resolved_at is not None:
            super().add(ticket)


def builtin_metric_kinds() -> list[MetricKind]:
    return [ChannelShare(), MeanTimeToResolve(), FirstContactResolution(), ReopenRate()]


@hookimpl
def itsm_change_register_metric_kinds(register: Any) -> None:
    for kind in builtin_metric_kinds():
        register.add(kind)


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


@dataclass
class UnitResult:
    unit: str
    baseline: float
    target: float
    higher_is_better: bool
    current: float | None = None
    """Over tickets opened since the unit's go-live."""
    current_count: int = 0
    before: float | None = None
    """Over tickets opened before the unit's wave started (the measured baseline)."""
    weekly: dict[date, float | None] = field(default_factory=dict)

    @property
    def met(self) -> bool:
        if self.current is None:
            return False
        if self.higher_is_better:
            return self.current >= self.target
        return self.current <= self.target

    @property
    def progress(self) -> float | None:
        """How far from baseline to target the current value is (1.0 = target met)."""
        if self.current is None or self.target == self.baseline:
            return None
        return (self.current - self.baseline) / (self.target - self.baseline)


@dataclass
class GoalResult:
    goal: Goal
    kind_title: str
    unit_label: str
    units: dict[str, UnitResult] = field(default_factory=dict)


def compute_goals(program: Program, tickets: Iterable[Ticket],
                  kinds: Mapping[str, MetricKind]) -> list[GoalResult]:
    """Every goal's baseline, current value and weekly trend per unit, in one pass."""
    results: list[GoalResult] = []
    plans: list[tuple[Goal, MetricKind, list[str]]] = []
    for goal in program.goals:
        kind = kinds[goal.metric]
        unit_ids = list(goal.units) or [u.id for u in program.units]
        plans.append((goal, kind, unit_ids))
        results.append(GoalResult(goal, kind.title, kind.unit_label, {
            u: UnitResult(u, goal.baseline, goal.target, goal.higher_is_better)
            for u in unit_ids}))
    current: dict[tuple[int, str], Accumulator] = {}
    before: dict[tuple[int, str], Accumulator] = {}
    weekly: dict[tuple[int, str, date], Accumulator] = {}
    go_live = {u.id: program.wave(u.wave).go_live for u in program.units}
    starts = {u.id: program.wave(u.wave).starts for u in program.units}
    for ticket in tickets:
        unit = program.unit_for_ticket(ticket)
        if unit is None:
            continue
        opened = ticket.opened_at.date()
        for index, (goal, kind, unit_ids) in enumerate(plans):
            if unit.id not in unit_ids or not goal.filter.matches(ticket):
                continue
            slot = (index, unit.id)
            week = (index, unit.id, week_start(opened))
            if week not in weekly:
                weekly[week] = kind.accumulator(goal.params)
            weekly[week].add(ticket)
            if opened >= go_live[unit.id]:
                if slot not in current:
                    current[slot] = kind.accumulator(goal.params)
                current[slot].add(ticket)
            elif opened < starts[unit.id]:
                if slot not in before:
                    before[slot] = kind.accumulator(goal.params)
                before[slot].add(ticket)
    for index, result in enumerate(results):
        for unit_id, unit_result in result.units.items():
            if (index, unit_id) in current:
                acc = current[(index, unit_id)]
                unit_result.current = acc.value()
                unit_result.current_count = acc.count
            if (index, unit_id) in before:
                unit_result.before = before[(index, unit_id)].value()
    for (index, unit_id, week), acc in sorted(weekly.items(), key=lambda kv: kv[0][2]):
        results[index].units[unit_id].weekly[week] = acc.value()
    return results
