"""People-side measures from the ledger: training, communication, feedback and prompts.

These are what the goal metrics alone cannot say: whether people were trained, told and
heard, and whether the guidance in the ticket queue went with better results. Everything
here reads ledger rows (bounded by the program's size); the one part that needs tickets,
:class:`PromptSplit`, is fed from the same single pass over the ticket stream as the goals.
"""

from __future__ import annotations

import bisect
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

from ..ledger import EffectRow
from ..metrics import Accumulator, MetricKind, compile_filter, measure, week_start
from ..model import (
    ADKAR_DIMENSIONS,
    EffectKind,
    FeedbackResponse,
    Program,
    Prompt,
    Ticket,
    Unit,
)

__all__ = [
    "CommunicationRow",
    "FeedbackMeasures",
    "PromptComparison",
    "PromptGoalRow",
    "PromptSplit",
    "TextAnswer",
    "TrainingCell",
    "TrainingMeasures",
    "UnitFeedback",
    "answered_requests",
    "communication_measures",
    "feedback_measures",
    "training_measures",
    "weakest_dimension",
]

NO_UNIT = "(no unit)"
NO_SCORES = "no scores"

# -- training ----------------------------------------------------------------------------


@dataclass
class TrainingCell:
    """Assignments for one unit (and module): published, completed, overdue."""

    assigned: int = 0
    completed: int = 0
    overdue: int = 0
    """Not complete and the due date has passed, as of the report's date."""
    days_to_complete: list[float] = field(default_factory=list)
    """Days from assignment to completion, one entry per completed assignment."""

    @property
    def share(self) -> float | None:
        return self.completed / self.assigned if self.assigned else None

    @property
    def median_days(self) -> float | None:
        return statistics.median(self.days_to_complete) if self.days_to_complete else None

    def add(self, row: EffectRow, as_of: date) -> None:
        self.assigned += 1
        if row.completed:
            self.completed += 1
            if row.completed_at is not None:
                seconds = (row.completed_at - row.created_at).total_seconds()
                self.days_to_complete.append(max(seconds, 0.0) / 86400)
        elif row.due is not None and row.due < as_of:
            self.overdue += 1


@dataclass
class TrainingMeasures:
    by_unit: dict[str, TrainingCell]
    by_unit_module: dict[tuple[str, str], TrainingCell]
    planned: dict[str, tuple[str, ...]]
    """Unit -> the modules whose audience includes it (empty: no training planned)."""
    leaders: dict[tuple[str, str], TrainingCell] = field(default_factory=dict)
    """(alliance member or sponsor, module) -> their own assignment, kept apart from the
    units' figures."""


def training_measures(program: Program, rows: Iterable[EffectRow],
                      as_of: datetime) -> TrainingMeasures:
    """Assignments count once they are on the platform (ledger state ``done``)."""
    today = as_of.date()
    by_unit = {u.id: TrainingCell() for u in program.units}
    by_unit_module: dict[tuple[str, str], TrainingCell] = {}
    planned = {u.id: tuple(m.id for m in program.training if u.id in m.audience)
               for u in program.units}
    for unit_id, modules in planned.items():
        for module in modules:
            by_unit_module[(unit_id, module)] = TrainingCell()
    leaders: dict[tuple[str, str], TrainingCell] = {}
    for row in rows:
        if row.kind != EffectKind.TRAINING or row.state != "done":
            continue
        if "leader" in row.meta:
            leaders.setdefault((row.meta["leader"], row.meta.get("module", "?")),
                               TrainingCell()).add(row, today)
            continue
        unit = row.meta.get("unit", NO_UNIT)
        module = row.meta.get("module", "?")
        by_unit.setdefault(unit, TrainingCell()).add(row, today)
        by_unit_module.setdefault((unit, module), TrainingCell()).add(row, today)
    return TrainingMeasures(by_unit, by_unit_module, planned, leaders)


# -- communication -----------------------------------------------------------------------


@dataclass
class CommunicationRow:
    """One occurrence of a communication event: what reached people and who answered."""

    event: str
    title: str
    occurrence: str
    channel: str
    delivered: int = 0
    """Records on the platform: one per person for tasks, one per announcement or note."""
    requests: int = 0
    """Of those, feedback requests (a survey attached)."""
    answered: int = 0
    """Feedback requests answered by a survey response from their recipient."""


def answered_requests(rows: list[EffectRow],
                       responses: Iterable[FeedbackResponse]) -> set[str]:
    """Keys of the feedback requests that got an answer.

    A survey response answers its person's latest request made at or before it was
    submitted. Feedback left in ticket comments answers no request (nobody asked), so it
    counts as a response but not towards a response rate.
    """
    by_person: dict[str, list[EffectRow]] = defaultdict(list)
    for row in rows:
        if row.kind == EffectKind.FEEDBACK_REQUEST and row.state == "done" and row.recipient:
            by_person[row.recipient].append(row)
    times: dict[str, list[datetime]] = {}
    for person, requests in by_person.items():
        requests.sort(key=lambda r: r.created_at)
        times[person] = [r.created_at for r in requests]
    answered: set[str] = set()
    for response in responses:
        if response.source != "survey" or response.person not in by_person:
            continue
        position = bisect.bisect_right(times[response.person], response.submitted_at)
        if position:
            answered.add(by_person[response.person][position - 1].key)
    return answered


def communication_measures(program: Program, rows: list[EffectRow],
                           answered: set[str]) -> list[CommunicationRow]:
    titles = {e.id: e.title for e in program.communications}
    out: dict[tuple[str, str], CommunicationRow] = {}
    for row in rows:
        if row.kind not in (EffectKind.MESSAGE, EffectKind.FEEDBACK_REQUEST):
            continue
        if row.state != "done":
            continue
        event = row.meta.get("event", "?")
        occurrence = row.meta.get("occurrence", "")
        item = out.get((event, occurrence))
        if item is None:
            item = out[(event, occurrence)] = CommunicationRow(
                event, titles.get(event, event), occurrence, row.channel)
        item.delivered += 1
        if row.kind == EffectKind.FEEDBACK_REQUEST:
            item.requests += 1
            item.answered += row.key in answered
    return sorted(out.values(), key=lambda r: (r.occurrence, r.event))


# -- feedback ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TextAnswer:
    submitted_at: datetime
    text: str
    source: str
    scores: Mapping[str, int]
    ticket_id: str | None = None


@dataclass
class UnitFeedback:
    unit: str
    responses: int = 0
    """Every response: survey answers and marked ticket comments."""
    from_comments: int = 0
    requests: int = 0
    answered: int = 0
    averages: dict[str, float] = field(default_factory=dict)
    """ADKAR dimension -> mean score (1-5) over every response that scored it."""
    counts: dict[str, int] = field(default_factory=dict)
    weekly: dict[date, dict[str, float]] = field(default_factory=dict)
    """Week (Monday) -> dimension -> mean score that week."""
    texts: dict[str, list[TextAnswer]] = field(default_factory=dict)
    """Free text grouped by the dimension the person scored lowest (see :func:`lowest`)."""

    @property
    def response_rate(self) -> float | None:
        """Feedback requests answered, over feedback requests sent."""
        return self.answered / self.requests if self.requests else None

    @property
    def weakest(self) -> str | None:
        """The barrier point: the dimension with the lowest average."""
        return weakest_dimension(self.averages)


@dataclass
class FeedbackMeasures:
    units: dict[str, UnitFeedback]
    dimensions: tuple[str, ...]


def weakest_dimension(scores: Mapping[str, float]) -> str | None:
    """The lowest-scored dimension; ties go to the earlier one in ADKAR order, because
    ADKAR is a sequence and the first weak step is where change stalls."""
    if not scores:
        return None
    order = {d: i for i, d in enumerate(ADKAR_DIMENSIONS)}
    return min(scores, key=lambda d: (scores[d], order.get(d, len(order)), d))


def feedback_measures(program: Program, rows: list[EffectRow],
                      responses: list[FeedbackResponse], answered: set[str]) -> FeedbackMeasures:
    dims = tuple(dict.fromkeys(d for s in program.surveys for d in s.dimensions)) \
        or ADKAR_DIMENSIONS
    units = {u.id: UnitFeedback(u.id) for u in program.units}
    sums: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    weekly: dict[tuple[str, date], dict[str, list[int]]] = defaultdict(
        lambda: defaultdict(lambda: [0, 0]))
    for row in rows:
        if row.kind == EffectKind.FEEDBACK_REQUEST and row.state == "done":
            unit_id = row.meta.get("unit", NO_UNIT)
            unit = units.setdefault(unit_id, UnitFeedback(unit_id))
            unit.requests += 1
            unit.answered += row.key in answered
    for response in responses:
        unit_id = response.unit or NO_UNIT
        unit = units.setdefault(unit_id, UnitFeedback(unit_id))
        unit.responses += 1
        unit.from_comments += response.source == "comment"
        week = week_start(response.submitted_at.date())
        for dim, score in response.scores.items():
            for bucket in (sums[unit_id][dim], weekly[(unit_id, week)][dim]):
                bucket[0] += score
                bucket[1] += 1
        if response.text.strip():
            label = lowest(response.scores) or NO_SCORES
            unit.texts.setdefault(label, []).append(TextAnswer(
                response.submitted_at, response.text.strip(), response.source,
                dict(response.scores), response.ticket_id))
    for unit_id, by_dim in sums.items():
        ordered = sorted(by_dim, key=lambda d: (d not in dims, dims.index(d) if d in dims else 0,
                                                d))
        units[unit_id].averages = {d: by_dim[d][0] / by_dim[d][1] for d in ordered}
        units[unit_id].counts = {d: by_dim[d][1] for d in ordered}
    for (unit_id, week), by_dim in sorted(weekly.items(), key=lambda kv: kv[0][1]):
        units[unit_id].weekly[week] = {d: total / n for d, (total, n) in by_dim.items()}
    for unit in units.values():
        unit.texts = dict(sorted(unit.texts.items(), key=_group_order(dims)))
    return FeedbackMeasures(units, dims)


def lowest(scores: Mapping[str, int]) -> str | None:
    """The dimension one person scored lowest: the group their free text is read in."""
    return weakest_dimension({d: float(v) for d, v in scores.items()})


def _group_order(dims: tuple[str, ...]) -> Callable[[tuple[str, list[TextAnswer]]],
                                                    tuple[int, str]]:
    def key(item: tuple[str, list[TextAnswer]]) -> tuple[int, str]:
        label = item[0]
        return (dims.index(label) if label in dims else len(dims), label)
    return key


# -- prompts -----------------------------------------------------------------------------


@dataclass
class PromptGoalRow:
    goal: str
    unit_label: str
    with_value: float | None
    with_count: int
    without_value: float | None
    without_count: int


@dataclass
class PromptComparison:
    """Tickets a prompt was eligible for: those that carried it against those that did not."""

    prompt: str
    title: str
    with_prompt: int
    without_prompt: int
    goals: list[PromptGoalRow]


class _PromptState:
    __slots__ = ("accs", "matches", "prompt", "unit_ids", "with_n", "without_n")

    def __init__(self, prompt: Prompt, program: Program,
                 kinds: Mapping[str, MetricKind]) -> None:
        self.prompt = prompt
        self.matches = compile_filter(prompt.filter)
        self.unit_ids = frozenset(prompt.units)
        self.with_n = 0
        self.without_n = 0
        # Per goal: (tickets with the prompt, tickets without it).
        self.accs: list[tuple[Accumulator, Accumulator]] = [
            (kinds[g.metric].accumulator(g.params), kinds[g.metric].accumulator(g.params))
            for g in program.goals]


class PromptSplit:
    """Compares, per prompt and goal, the tickets that carried the prompt with the matching
    tickets that did not (opened in the prompt's active window, in the units it covers).

    This is a comparison, not an experiment: tickets without the prompt are mostly those of
    units not live yet, so read it with the goal trend beside it.
    """

    def __init__(self, program: Program, rows: Iterable[EffectRow],
                 kinds: Mapping[str, MetricKind]) -> None:
        self.program = program
        self.kinds = kinds
        # (platform, ticket id or number) -> the prompts it carried; bounded by the ledger.
        self.carried: dict[tuple[str, str], set[str]] = defaultdict(set)
        for row in rows:
            if row.kind == EffectKind.PROMPT and row.state == "done" and row.ticket_id:
                self.carried[(row.platform, row.ticket_id)].add(row.meta.get("prompt", "?"))
        self.goal_filters = [compile_filter(g.filter) for g in program.goals]
        self.states = [_PromptState(p, program, kinds) for p in program.prompts]

    def add(self, ticket: Ticket, unit: Unit) -> None:
        if not self.states:
            return
        carried = self.carried.get((ticket.platform, ticket.id)) or self.carried.get(
            (ticket.platform, ticket.number), set())
        for state in self.states:
            prompt = state.prompt
            if state.unit_ids and unit.id not in state.unit_ids:
                continue
            if not prompt.active_at(ticket.opened_at):
                continue
            if not state.matches(ticket):
                continue
            has = prompt.id in carried
            if has:
                state.with_n += 1
            else:
                state.without_n += 1
            for goal, matches, accs in zip(self.program.goals, self.goal_filters, state.accs,
                                           strict=True):
                if (not goal.units or unit.id in goal.units) and matches(ticket):
                    accs[0 if has else 1].add(ticket)

    def finish(self, as_of: datetime) -> list[PromptComparison]:
        out = []
        for state in self.states:
            goals = [
                PromptGoalRow(goal.id, self.kinds[goal.metric].unit_label,
                              measure(with_acc, as_of)[0], with_acc.count,
                              measure(without_acc, as_of)[0], without_acc.count)
                for goal, (with_acc, without_acc) in zip(self.program.goals, state.accs,
                                                         strict=True)]
            out.append(PromptComparison(state.prompt.id, state.prompt.title, state.with_n,
                                        state.without_n, goals))
        return out
