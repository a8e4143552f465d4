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

A value can be *unknown*: no tickets, tickets without the field the metric needs (a platform
that does not report reassignments), fewer tickets than the program's ``min_sample``, or a
median time to resolve that the open tickets do not yet allow. An unknown value carries its
reason and never counts as met.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
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
    "MedianTimeToResolve",
    "MetricKind",
    "ReopenRate",
    "ResolveTimes",
    "ResolvedShare",
    "Share",
    "UnitResult",
    "builtin_metric_kinds",
    "compile_filter",
    "compute_goals",
    "describe_filter",
    "known_at",
    "measure",
    "week_start",
]


class Accumulator(Protocol):
    """Turns tickets into one number.

    Two optional methods refine it, and :func:`measure` uses them when present:
    ``value_at(as_of)`` (the value with open tickets judged at ``as_of``) and
    ``why_unknown()`` (why ``value`` is None, in words a change lead understands).
    """

    def add(self, ticket: Ticket) -> None: ...

    def value(self) -> float | None: ...

    @property
    def count(self) -> int: ...


def measure(acc: Accumulator, as_of: datetime) -> tuple[float | None, str | None]:
    """The accumulator's value at ``as_of`` and, when it has none, the reason why."""
    value_at = getattr(acc, "value_at", None)
    value = value_at(as_of) if callable(value_at) else acc.value()
    if value is not None:
        return value, None
    why = getattr(acc, "why_unknown", None)
    reason = why(as_of) if callable(why) else None
    if reason is None:
        reason = "no tickets" if not acc.count else "the metric has no value for these tickets"
    return None, reason


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


class ResolvedShare(_Hits):
    """Like :class:`Share`, over resolved tickets only (open ones have no outcome yet).

    ``predicate`` returns None for a ticket whose platform did not say what the metric needs
    (``reopen_count`` or ``reassignment_count`` left at None): such tickets are counted
    apart, never as a hit or a miss.
    """

    __slots__ = ("lacking", "needs", "predicate")

    def __init__(self, predicate: Callable[[Ticket], bool | None], needs: str) -> None:
        super().__init__()
        self.predicate = predicate
        self.lacking = 0
        self.needs = needs

    def add(self, ticket: Ticket) -> None:
        if ticket.resolved_at is None:
            return
        outcome = self.predicate(ticket)
        if outcome is None:
            self.lacking += 1
            return
        self.total += 1
        if outcome:
            self.hits += 1

    def why_unknown(self, as_of: datetime) -> str | None:
        if self.lacking:
            return (f"the platform does not report {self.needs} for "
                    f"{self.lacking} resolved ticket(s)")
        return "no resolved tickets"


_MINUTE = 60
_HOUR = 3600


class ResolveTimes:
    """Kaplan-Meier median hours to resolve, with open tickets counted as *censored*.

    A ticket still open at the report's date has taken at least that long; dropping it (as
    a mean over resolved tickets does) makes a unit look fast just after go-live, when only
    the quick tickets have closed. Durations are kept to the minute and open tickets by the
    hour they opened, in two histograms, so memory is bounded by the durations and the hours
    a window spans, never by the tickets. An open ticket counts from the start of its hour:
    it waited at most an hour longer than it did, which can only lengthen the median.
    """

    __slots__ = ("n", "open_since", "resolved")

    def __init__(self) -> None:
        self.resolved: dict[int, int] = {}
        """Minutes to resolve -> tickets."""
        self.open_since: dict[int, int] = {}
        """Hour the ticket opened (in epoch minutes, at the hour's start) -> tickets still
        open."""
        self.n = 0

    def add(self, ticket: Ticket) -> None:
        self.n += 1
        resolved = ticket.resolved_at
        if resolved is None:
            key = int(ticket.opened_at.timestamp()) // _HOUR * (_HOUR // _MINUTE)
            self.open_since[key] = self.open_since.get(key, 0) + 1
        else:
            minutes = max(int((resolved - ticket.opened_at).total_seconds()) // _MINUTE, 0)
            self.resolved[minutes] = self.resolved.get(minutes, 0) + 1

    @property
    def count(self) -> int:
        return self.n

    def value(self) -> float | None:
        return None  # a median with open tickets needs the date they are judged at

    def _censored(self, as_of: datetime) -> dict[int, int]:
        now = int(as_of.timestamp()) // _MINUTE
        out: dict[int, int] = {}
        for opened, tickets in self.open_since.items():
            waited = max(now - opened, 0)
            out[waited] = out.get(waited, 0) + tickets
        return out

    def value_at(self, as_of: datetime) -> float | None:
        """The first duration at which the estimated share still open falls to half."""
        censored = self._censored(as_of)
        at_risk = self.n
        surviving = 1.0
        for minute in sorted(self.resolved.keys() | censored.keys()):
            events = self.resolved.get(minute, 0)
            if events:
                surviving *= 1 - events / at_risk
                if surviving <= 0.5:
                    return minute / 60
            # Tickets censored at this minute were at risk for its events (the usual rule).
            at_risk -= events + censored.get(minute, 0)
        return None

    def why_unknown(self, as_of: datetime) -> str | None:
        if not self.n:
            return "no tickets"
        censored = self._censored(as_of)
        longest = max(censored, default=0) / 60
        return (f"fewer than half of {self.n} tickets are known to be resolved: "
                f"{sum(censored.values())} still open (the oldest for {longest:.0f}h), "
                "so the median is not known yet")


class MeanHours:
    """Mean hours from opening to resolution, known only once every ticket is resolved.

    A mean over the resolved tickets alone would leave out the long ones still open, so
    while any ticket of the window is open the value is unknown, with that reason.
    """

    __slots__ = ("n", "open", "total")

    def __init__(self) -> None:
        self.total = 0.0
        self.n = 0
        self.open = 0

    def add(self, ticket: Ticket) -> None:
        resolved = ticket.resolved_at
        if resolved is not None:
            self.total += (resolved - ticket.opened_at).total_seconds()
            self.n += 1
        else:
            self.open += 1

    def value(self) -> float | None:
        return self.total / self.n / 3600 if self.n and not self.open else None

    def why_unknown(self, as_of: datetime) -> str | None:
        if self.open:
            return (f"{self.open} of {self.n + self.open} tickets still open: a mean over "
                    "the resolved ones would favour the short tickets "
                    "(median_time_to_resolve counts open tickets)")
        return "no tickets"

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


def _first_contact(ticket: Ticket) -> bool | None:
    if ticket.reassignment_count is None or ticket.reopen_count is None:
        return None
    return ticket.reassignment_count == 0 and ticket.reopen_count == 0


def _reopened(ticket: Ticket) -> bool | None:
    return None if ticket.reopen_count is None else ticket.reopen_count > 0


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
    """Mean hours from opening to resolution; unknown while any ticket is open."""

    name: str = "mean_time_to_resolve"
    title: str = "Mean time to resolve"
    unit_label: str = "hours"

    def accumulator(self, params: Mapping[str, Any]) -> Accumulator:
        return MeanHours()


@dataclass(frozen=True)
class MedianTimeToResolve:
    """Median hours from opening to resolution, open tickets censored (Kaplan-Meier)."""

    name: str = "median_time_to_resolve"
    title: str = "Median time to resolve"
    unit_label: str = "hours"

    def accumulator(self, params: Mapping[str, Any]) -> Accumulator:
        return ResolveTimes()


@dataclass(frozen=True)
class FirstContactResolution:
    """Share of resolved tickets resolved without reassignment or reopening."""

    name: str = "first_contact_resolution"
    title: str = "First-contact resolution"
    unit_label: str = "share"

    def accumulator(self, params: Mapping[str, Any]) -> Accumulator:
        return ResolvedShare(_first_contact, "reassignments or reopenings")


@dataclass(frozen=True)
class ReopenRate:
    """Share of resolved tickets that were reopened at least once."""

    name: str = "reopen_rate"
    title: str = "Reopen rate"
    unit_label: str = "share"

    def accumulator(self, params: Mapping[str, Any]) -> Accumulator:
        return ResolvedShare(_reopened, "reopenings")


def builtin_metric_kinds() -> list[MetricKind]:
    return [ChannelShare(), MeanTimeToResolve(), MedianTimeToResolve(),
            FirstContactResolution(), ReopenRate()]


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
    live: bool = True
    """Whether the unit's go-live is on or before the report's date."""
    unknown: str | None = None
    """Why the current value cannot be judged (None: it can)."""
    before_unknown: str | None = None

    @property
    def met(self) -> bool:
        """At or past the target, on enough tickets: an unknown value is never met."""
        if self.current is None or self.unknown is not None:
            return False
        if self.higher_is_better:
            return self.current >= self.target
        return self.current <= self.target

    @property
    def status(self) -> str:
        """``not live yet``, ``unknown``, ``met`` or ``not met``."""
        if not self.live:
            return "not live yet"
        if self.unknown is not None:
            return "unknown"
        return "met" if self.met else "not met"

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

    __slots__ = ("before", "checks", "current", "filter", "go_live", "goal_index", "kind",
                 "matched", "params", "platform", "seen", "starts", "weekly")

    def __init__(self, goal_index: int, goal: Goal, kind: MetricKind, go_live: date,
                 starts: date) -> None:
        self.goal_index = goal_index
        self.kind = kind
        self.params = goal.params
        self.checks = _compile(goal.filter)
        self.filter = goal.filter
        self.platform = goal.filter.platform or None
        self.seen = 0
        """The unit's tickets offered to this goal, matching its filter or not."""
        self.matched = 0
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
        self.min_sample = program.min_sample
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
                slot.seen += 1
                if slot.platform is not None and ticket.platform != slot.platform:
                    continue
                if slot.checks and not _matches(slot.checks, ticket):
                    continue
                slot.matched += 1
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

    def finish(self, as_of: datetime) -> list[GoalResult]:
        """The results at ``as_of`` (the engine may keep taking tickets afterwards).

        ``as_of`` decides which units are live and how long open tickets have waited; the
        tickets themselves should already be as known at that moment (see :func:`known_at`).
        """
        for index, slots in enumerate(self._slots):
            unit_id = self.units[index].id
            for slot in slots:
                result = self.results[slot.goal_index].units[unit_id]
                result.current, result.unknown = measure(slot.current, as_of)
                result.current_count = slot.current.count
                result.before, result.before_unknown = measure(slot.before, as_of)
                result.before_count = slot.before.count
                go_live = date.fromordinal(slot.go_live)
                result.live = go_live <= as_of.date()
                if not result.live:
                    result.unknown = f"not live yet (go-live {go_live})"
                elif slot.seen and not slot.matched:
                    result.unknown = (f"none of the unit's {slot.seen} tickets match the goal's "
                                      f"filter ({describe_filter(slot.filter)}); check the "
                                      "values the platform stores")
                elif result.unknown is None and result.current_count < self.min_sample:
                    result.unknown = (f"only {result.current_count} ticket(s) since go-live; "
                                      f"at least {self.min_sample} needed (min_sample)")
                result.weekly = {}
                result.weekly_counts = {}
                for week in sorted(slot.weekly):
                    acc = slot.weekly[week]
                    monday = date.fromordinal(week * 7 + 1)
                    result.weekly[monday] = measure(acc, as_of)[0]
                    result.weekly_counts[monday] = acc.count
        return self.results


def describe_filter(flt: TicketFilter) -> str:
    """A filter in the program file's words, e.g. ``kinds: incident; categories: inquiry``."""
    parts = [f"platform: {flt.platform}"] if flt.platform else []
    parts += [f"{name}: {', '.join(getattr(flt, name))}" for name, _ in _FILTER_FIELDS
              if getattr(flt, name)]
    return "; ".join(parts) or "every ticket"


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


def known_at(ticket: Ticket, as_of: datetime) -> Ticket | None:
    """The ticket as it stood at ``as_of``: None if it was not opened yet, open if it was
    resolved later, and only the reopen and reassignment counts known then.

    Platforms report only the current counts. For a ticket whose last resolution came before
    ``as_of`` they are the counts of then, since a reopening is followed by a new resolution.
    A ticket open now whose platform kept the old resolution time, and that changed after
    ``as_of``, may have been reopened since: a positive count is then not known for
    ``as_of`` (None, so metrics count it apart as unknown, never as a hit or a miss).
    """
    if ticket.opened_at > as_of:
        return None
    if ticket.resolved_at is not None and ticket.resolved_at > as_of:
        return dataclasses.replace(ticket, resolved_at=None, state="open")
    if ticket.resolved_at is not None and ticket.is_open:
        if ticket.updated_at <= as_of:  # reopened by then: open at as_of
            return dataclasses.replace(ticket, resolved_at=None)
        return dataclasses.replace(
            ticket,
            reopen_count=None if ticket.reopen_count else ticket.reopen_count,
            reassignment_count=None if ticket.reassignment_count else ticket.reassignment_count)
    return ticket


def compute_goals(program: Program, tickets: Iterable[Ticket],
                  kinds: Mapping[str, MetricKind], as_of: datetime) -> list[GoalResult]:
    """Every goal's baseline, current value and weekly trend per unit at ``as_of``, in one
    pass; tickets opened after ``as_of`` are left out and later resolutions ignored."""
    engine = GoalEngine(program, kinds)
    for ticket in tickets:
        seen = known_at(ticket, as_of)
        if seen is not None:
            engine.add(seen)
    return engine.finish(as_of)
