"""Goal metrics computed from ticket data, per unit and per week, in one streaming pass.

A :class:`MetricKind` turns tickets into one number (a share, a mean, a rate). Kinds are
pluggable through ``itsm_change_register_metric_kinds``; the common ones ship here. Memory
is bounded by units x goals x weeks, never by the number of tickets: the stream is read once
and no ticket is kept.

Three windows per unit, from its wave's dates:

- *before*: tickets opened before the wave starts (the measured baseline);
- *current*: tickets opened on or after go-live (the result);
- *weekly*: every week, before and after, for the trend. The week between start and go-live
  (training) counts only in the weekly trend.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Protocol

from .hookspecs import hookimpl
from .model import Goal, Program, Ticket, TicketFilter, Unit

__all__ = [
    "Accumulator",
    "ChannelShare",
    "FirstContactResolution",
    "GoalEngine",
    "GoalResult",
    "MeanHours",
    "MeanTimeToResolve",
    "MetricKind",
    "ReopenRate",
    "ResolvedShare",
    "Share",
    "UnitResult",
    "builtin_metric_kinds",
    "compile_filter",
    "compute_goals",
    "week_start",
]


class Accumulator(Protocol):
    def add(self, ticket: Ticket) -> None: ...

    def value(self) -> float | None: ...

    @property
    def count(self) -> int: ...


class MetricKind(Protocol):
    """A kind of goal metric. ``unit_label`` is ``share``, ``hours`` or a free label; the
    report formats shares as percentages and hours with an ``h``."""

    @property
    def name(self) -> str: ...

    @property
    def title(self) -> str: ...

    @property
    def unit_label(self) -> str: ...

    def accumulator(self, params: Mapping[str, Any]) -> Accumulator: ...


class _Hits:
    """``hits`` over ``total``; subclasses say what a hit is in ``add``."""

    __slots__ = ("hits", "total")

    def __init__(self) -> None:
        self.hits = 0
        self.total = 0

    def value(self) -> float | None:
        return self.hits / self.total if self.total else None

    @property
    def count(self) -> int:
        return self.total


class Share(_Hits):
    """Share of the tickets added for which ``predicate`` holds."""

    __slots__ = ("predicate",)

    def __init__(self, predicate: Callable[[Ticket], bool]) -> None:
        super().__init__()
        self.predicate = predicate

    def add(self, ticket: Ticket) -> None:
        self.total += 1
        if self.predicate(ticket):
            self.hits += 1


class ResolvedShare(Share):
    """Like :class:`Share`, over resolved tickets only (open ones have no outcome yet)."""

    __slots__ = ()

    def add(self, ticket: Ticket) -> None:
        if ticket.resolved_at is not None:
            self.total += 1
            if self.predicate(ticket):
                self.hits += 1


class MeanHours:
    """Mean hours from opening to resolution, over resolved tickets."""

    __slots__ = ("n", "total")

    def __init__(self) -> None:
        self.total = 0.0
        self.n = 0

    def add(self, ticket: Ticket) -> None:
        resolved = ticket.resolved_at
        if resolved is not None:
            self.total += (resolved - ticket.opened_at).total_seconds()
            self.n += 1

    def value(self) -> float | None:
        return self.total / self.n / 3600 if self.n else None

    @property
    def count(self) -> int:
        return self.n


class _ChannelShareAcc(_Hits):
    # Specialised rather than Share(lambda): this is the hottest accumulator in practice.
    __slots__ = ("channel",)

    def __init__(self, channel: str) -> None:
        super().__init__()
        self.channel = channel

    def add(self, ticket: Ticket) -> None:
        self.total += 1
        channel = ticket.channel
        if channel is not None and (channel == self.channel
                                    or channel.casefold() == self.channel):
            self.hits += 1


def _first_contact(ticket: Ticket) -> bool:
    return ticket.reassignment_count == 0 and ticket.reopen_count == 0


def _reopened(ticket: Ticket) -> bool:
    return ticket.reopen_count > 0


@dataclass(frozen=True)
class ChannelShare:
    """Share of tickets raised through one channel (``params.channel``, e.g. portal)."""

    name: str = "channel_share"
    title: str = "Share raised through a channel"
    unit_label: str = "share"

    def accumulator(self, params: Mapping[str, Any]) -> Accumulator:
        return _ChannelShareAcc(str(params.get("channel", "portal")).casefold())


@dataclass(frozen=True)
class MeanTimeToResolve:
    """Mean hours from opening to resolution, over resolved tickets."""

    name: str = "mean_time_to_resolve"
    title: str = "Mean time to resolve"
    unit_label: str = "hours"

    def accumulator(self, params: Mapping[str, Any]) -> Accumulator:
        return MeanHours()


@dataclass(frozen=True)
class FirstContactResolution:
    """Share of resolved tickets resolved without reassignment or reopening."""

    name: str = "first_contact_resolution"
    title: str = "First-contact resolution"
    unit_label: str = "share"

    def accumulator(self, params: Mapping[str, Any]) -> Accumulator:
        return ResolvedShare(_first_contact)


@dataclass(frozen=True)
class ReopenRate:
    """Share of resolved tickets that were reopened at least once."""

    name: str = "reopen_rate"
    title: str = "Reopen rate"
    unit_label: str = "share"

    def accumulator(self, params: Mapping[str, Any]) -> Accumulator:
        return ResolvedShare(_reopened)


def builtin_metric_kinds() -> list[MetricKind]:
    return [ChannelShare(), MeanTimeToResolve(), FirstContactResolution(), ReopenRate()]


@hookimpl
def itsm_change_register_metric_kinds(register: Any) -> None:
    for kind in builtin_metric_kinds():
        register.add(kind)


def week_start(day: date) -> date:
    """The Monday of ``day``'s week: weeks are ISO weeks, Monday to Sunday."""
    return day - timedelta(days=day.weekday())


@dataclass
class UnitResult:
    unit: str
    baseline: float
    """The goal's declared baseline (what the target was set against)."""
    target: float
    higher_is_better: bool
    current: float | None = None
    """Over tickets opened since the unit's go-live."""
    current_count: int = 0
    before: float | None = None
    """Over tickets opened before the unit's wave started (the measured baseline)."""
    before_count: int = 0
    weekly: dict[date, float | None] = field(default_factory=dict)
    """Week (Monday) -> value over tickets opened that week, oldest first."""
    weekly_counts: dict[date, int] = field(default_factory=dict)

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


_FILTER_FIELDS = (
    ("kinds", "kind"), ("categories", "category"), ("services", "service"),
    ("groups", "group"), ("channels", "channel"), ("priorities", "priority"),
)

_Check = tuple[str, frozenset[str]]


def _compile(flt: TicketFilter) -> tuple[_Check, ...]:
    """A filter as (ticket attribute, casefolded alternatives) pairs, built once per goal
    instead of once per ticket."""
    return tuple((attr, frozenset(v.casefold() for v in getattr(flt, name)))
                 for name, attr in _FILTER_FIELDS if getattr(flt, name))


class _Slot:
    """One goal for one unit: its windows' accumulators."""

    __slots__ = ("before", "checks", "current", "go_live", "goal_index", "kind", "params",
                 "platform", "starts", "weekly")

    def __init__(self, goal_index: int, goal: Goal, kind: MetricKind, go_live: date,
                 starts: date) -> None:
        self.goal_index = goal_index
        self.kind = kind
        self.params = goal.params
        self.checks = _compile(goal.filter)
        self.platform = goal.filter.platform or None
        self.go_live = go_live.toordinal()
        self.starts = starts.toordinal()
        self.current = kind.accumulator(goal.params)
        self.before = kind.accumulator(goal.params)
        self.weekly: dict[int, Accumulator] = {}


_CACHE_LIMIT = 10_000


class GoalEngine:
    """Every goal's windows per unit, fed one ticket at a time.

    ``add`` returns the ticket's unit (or None) so a caller making its own pass over the same
    stream (the report's prompt comparison) need not look the unit up again.
    """

    def __init__(self, program: Program, kinds: Mapping[str, MetricKind]) -> None:
        self.program = program
        self.units = program.units
        self.results: list[GoalResult] = []
        slots_by_unit: list[list[_Slot]] = [[] for _ in program.units]
        index_of = {u.id: i for i, u in enumerate(program.units)}
        for gi, goal in enumerate(program.goals):
            kind = kinds[goal.metric]
            unit_ids = list(goal.units) or [u.id for u in program.units]
            self.results.append(GoalResult(goal, kind.title, kind.unit_label, {
                u: UnitResult(u, goal.baseline, goal.target, goal.higher_is_better)
                for u in unit_ids}))
            for unit_id in unit_ids:
                unit = program.unit(unit_id)
                wave = program.wave(unit.wave)
                slots_by_unit[index_of[unit_id]].append(
                    _Slot(gi, goal, kind, wave.go_live, wave.starts))
        self._slots = [tuple(s) for s in slots_by_unit]
        # (platform, group as given) -> unit index; -1 for "no unit". Filled lazily from the
        # casefolded table so casefold runs once per distinct group name, not per ticket.
        self._by_group: dict[tuple[str, str], int] = {}
        for i in range(len(program.units) - 1, -1, -1):  # first unit in file order wins
            unit = program.units[i]
            for name in unit.ticket_groups or ((unit.group,) if unit.group else ()):
                self._by_group[(unit.platform, name.casefold())] = i
        self._cache: dict[tuple[str, str | None, str | None], int] = {}
        self.tickets_seen = 0

    def unit_index(self, ticket: Ticket) -> int:
        key = (ticket.platform, ticket.group, ticket.group_id)
        found = self._cache.get(key)
        if found is None:
            found = -1
            for group in (ticket.group, ticket.group_id):  # a unit may name either
                if group is not None:
                    found = self._by_group.get((ticket.platform, group.casefold()), -1)
                    if found >= 0:
                        break
            if len(self._cache) < _CACHE_LIMIT:
                self._cache[key] = found
        return found

    def add(self, ticket: Ticket) -> Unit | None:
        self.tickets_seen += 1
        index = self.unit_index(ticket)
        if index < 0:
            return None
        slots = self._slots[index]
        if slots:
            ordinal = ticket.opened_at.toordinal()
            week = (ordinal - 1) // 7  # ordinal 1 (0001-01-01) is a Monday
            for slot in slots:
                if slot.platform is not None and ticket.platform != slot.platform:
                    continue
                if slot.checks and not _matches(slot.checks, ticket):
                    continue
                acc = slot.weekly.get(week)
                if acc is None:
                    acc = slot.weekly[week] = slot.kind.accumulator(slot.params)
                acc.add(ticket)
                if ordinal >= slot.go_live:
                    slot.current.add(ticket)
                elif ordinal < slot.starts:
                    slot.before.add(ticket)
        return self.units[index]

    def add_all(self, tickets: Iterable[Ticket]) -> None:
        add = self.add
        for ticket in tickets:
            add(ticket)

    def finish(self) -> list[GoalResult]:
        """The results so far (the engine may keep taking tickets afterwards)."""
        for index, slots in enumerate(self._slots):
            unit_id = self.units[index].id
            for slot in slots:
                result = self.results[slot.goal_index].units[unit_id]
                result.current = slot.current.value()
                result.current_count = slot.current.count
                result.before = slot.before.value()
                result.before_count = slot.before.count
                result.weekly = {}
                result.weekly_counts = {}
                for week in sorted(slot.weekly):
                    acc = slot.weekly[week]
                    monday = date.fromordinal(week * 7 + 1)
                    result.weekly[monday] = acc.value()
                    result.weekly_counts[monday] = acc.count
        return self.results


def _matches(checks: tuple[_Check, ...], ticket: Ticket) -> bool:
    for attr, wanted in checks:
        value = getattr(ticket, attr)
        if value is None or (value not in wanted and value.casefold() not in wanted):
            return False
    return True


def compile_filter(flt: TicketFilter) -> Callable[[Ticket], bool]:
    """``flt.matches`` with the casefolded sets built once, for use on a ticket stream."""
    checks = _compile(flt)
    platform = flt.platform or None

    def matches(ticket: Ticket) -> bool:
        if platform is not None and ticket.platform != platform:
            return False
        return not checks or _matches(checks, ticket)

    return matches


def compute_goals(program: Program, tickets: Iterable[Ticket],
                  kinds: Mapping[str, MetricKind]) -> list[GoalResult]:
    """Every goal's baseline, current value and weekly trend per unit, in one pass."""
    engine = GoalEngine(program, kinds)
    engine.add_all(tickets)
    return engine.finish()
