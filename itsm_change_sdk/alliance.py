"""The management alliance at work: each member's check-in brief about their own units.

A brief is a second rendering of the report's numbers (:class:`~.report.build.Report`), not a
second computation: the goals, training, ADKAR scores, prompt comparison and gates it quotes
are the ones ``itsm-change report`` shows on the same day. Only the names of people overdue
on training are added, and only to the brief of the manager whose unit they are in.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING

from .ledger import Ledger, PlanRow
from .model import Addressing, AllianceMember, Effect, EffectKind, EffectRef, Person, Program, Unit
from .report.gates import complete_weeks_since_go_live, fmt_value

__all__ = ["brief_text", "fill_brief", "overdue_people", "read_acknowledgements",
           "silence_warnings"]

QUOTES = 2
"""Written answers quoted under the weakest ADKAR dimension, newest first."""

if TYPE_CHECKING:
    from .plugins import Platforms
    from .report.build import Report

STATUS_BATCH = 100


def fill_brief(effect: Effect, report: Report, rows: Iterable[PlanRow],
               members: Mapping[str, Sequence[Person]]) -> Effect:
    """The check-in effect with its brief written for its recipient."""
    program = report.program
    member = next(m for m in program.alliance if m.id == effect.meta["leader"])
    when = datetime.fromisoformat(effect.meta["occurrence"])
    return dataclasses.replace(effect, body=brief_text(report, member, when, rows, members))


def overdue_people(unit: Unit, rows: Iterable[PlanRow], members: Mapping[str, Sequence[Person]],
                   as_of: date) -> list[str]:
    """Names of the unit's people with a training assignment past its due date, sorted."""
    names = {p.id: p.name for p in members.get(unit.id, ())}
    found = {row.recipient for row in rows
             if row.kind == EffectKind.TRAINING and row.state == "done" and not row.completed
             and row.meta.get("unit") == unit.id and row.recipient
             and row.due is not None and _day(row.due) < as_of}
    return sorted(names.get(person, person) for person in found if person)


def _day(value: date | datetime | str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def brief_text(report: Report, member: AllianceMember, when: datetime,
               rows: Iterable[PlanRow], members: Mapping[str, Sequence[Person]]) -> str:
    """The brief: per unit of ``member``, goals, training, ADKAR and feedback; then the
    prompts and what the next gate still needs from them."""
    program = report.program
    rows = list(rows)
    lines = [f"{program.title}: check-in brief for {member.name} ({member.domain}), "
             f"{when.date().isoformat()}. Figures as of {report.as_of:%Y-%m-%d}."]
    for unit_id in member.units:
        lines.append("")
        lines += _unit_lines(report, program.unit(unit_id), rows, members)
    lines.append("")
    lines += _prompt_lines(report)
    lines.append("")
    lines += _gate_lines(report, member)
    lines += ["", "Close this task once you have gone through it with your team leads."]
    return "\n".join(lines)


def _unit_lines(report: Report, unit: Unit, rows: list[PlanRow],
                members: Mapping[str, Sequence[Person]]) -> list[str]:
    program = report.program
    wave = program.wave(unit.wave)
    live = wave.go_live <= report.as_of.date()
    state = f"live since {wave.go_live}" if live else f"goes live {wave.go_live}"
    lines = [f"{unit.title} ({wave.title}, {state})"]
    for result in report.goals:
        found = result.units.get(unit.id)
        if found is None:
            continue
        label = result.unit_label
        goal = result.goal
        if not found.live:
            lines.append(f"- {goal.title}: not live yet (target {fmt_value(goal.target, label)})")
            continue
        now = fmt_value(found.current, label)
        if found.unknown is not None:
            now = f"unknown ({found.unknown})"
        weeks = complete_weeks_since_go_live(found, wave.go_live, report.as_of)[-3:]
        trend = " -> ".join(fmt_value(v, label) for _, v in weeks) or "no complete week yet"
        lines.append(f"- {goal.title}: now {now} vs target {fmt_value(goal.target, label)} "
                     f"({found.status}); weekly trend {trend}")
    cell = report.training.by_unit.get(unit.id)
    if not report.training.planned.get(unit.id):
        lines.append("- Training: none planned")
    elif cell is None or not cell.assigned:
        lines.append("- Training: not assigned yet")
    else:
        overdue = overdue_people(unit, rows, members, report.as_of.date())
        named = f": {', '.join(overdue)}" if overdue else ""
        lines.append(f"- Training: {cell.completed} of {cell.assigned} done, "
                     f"{cell.overdue} overdue{named}")
    feedback = report.feedback.units.get(unit.id)
    weakest = feedback.weakest if feedback is not None else None
    if feedback is None or weakest is None:
        lines.append("- ADKAR: no answers yet")
    else:
        lines.append(f"- Weakest ADKAR dimension: {weakest} "
                     f"({feedback.averages[weakest]:.1f} of 5, {feedback.responses} answers)")
        newest = sorted(feedback.texts.get(weakest, ()), key=lambda t: t.submitted_at,
                        reverse=True)
        lines += [f'  "{text}"' for text in list(dict.fromkeys(t.text for t in newest))[:QUOTES]]
    return lines


def _prompt_lines(report: Report) -> list[str]:
    if not report.prompts:
        return ["Prompts: none in this program"]
    lines = ["Prompts shown in tickets (all units) and tickets with against without them:"]
    for item in report.prompts:
        effects = "; ".join(
            f"{g.goal} {fmt_value(g.with_value, g.unit_label)} with, "
            f"{fmt_value(g.without_value, g.unit_label)} without"
            for g in item.goals if g.with_count or g.without_count)
        lines.append(f"- {item.title}: on {item.with_prompt} tickets, not on "
                     f"{item.without_prompt}" + (f" ({effects})" if effects else ""))
    return lines


def _gate_lines(report: Report, member: AllianceMember) -> list[str]:
    """What the gates of the waves this member signs off, not started yet, still need."""
    program = report.program
    today = report.as_of.date()
    upcoming = [w for w in program.waves if w.id in member.signs_off and w.starts > today]
    if not upcoming:
        return ["Next gate: none waits on you."]
    lines = []
    own = {member.id, *member.units}
    for wave in upcoming:
        gate = report.gates[wave.id]
        needs = [c.text for c in gate.conditions if not c.ok]
        mine = [t for t in needs if any(word in t for word in own)]
        if not needs:
            lines.append(f"Next gate, {wave.title} (starts {wave.starts}): open, nothing "
                         "more needed from you.")
            continue
        lines.append(f"Next gate, {wave.title} (starts {wave.starts}): "
                     f"{len(needs)} condition(s) open, {len(mine)} on you or your units:")
        lines += [f"- {text}" for text in (mine or needs)]
    return lines


def read_acknowledgements(program: Program, platforms: Platforms, ledger: Ledger,
                          clock: Callable[[], datetime]) -> int:
    """Read back whether leaders closed the tasks addressed to them (check-in briefs and
    messages), through the same status hook as training; returns how many changed.

    Only leaders' open tasks are read, so this costs a call per hundred of them.
    """
    leaders = {m.id for m in program.alliance} | {s.id for s in program.sponsors}
    by_platform: dict[str, list[EffectRef]] = defaultdict(list)
    for row in ledger.effects(program.id, kind=str(EffectKind.MESSAGE), states=["done"]):
        spec = platforms.channels.get(row.channel)
        if (row.recipient in leaders and not row.completed and row.ref is not None
                and spec is not None and spec.addressing is Addressing.PERSON
                and row.platform in platforms.instances):
            by_platform[row.platform].append(row.ref)
    changed = 0
    for platform, refs in by_platform.items():
        for start in range(0, len(refs), STATUS_BATCH):
            for status in platforms.call(platform, "itsm_change_training_status",
                                         refs=refs[start:start + STATUS_BATCH]) or []:
                changed += ledger.set_completed(status.key, status.completed,
                                                status.completed_at or clock())
    return changed


def silence_warnings(program: Program) -> list[str]:
    """The no-radio-silence rule, as ``validate`` warnings: a unit with no communication
    after its go-live, a communication that offers no way to answer, an alliance with no
    check-in planned. Warnings, not errors: the file is valid, the plan is thin."""
    out: list[str] = []
    for unit in program.units:
        go_live = program.wave(unit.wave).go_live
        later = [e.id for e in program.communications if unit.id in e.audience
                 and any(when.date() >= go_live for when in e.occurrences())]
        if not later:
            out.append(f"units: {unit.id} has no communication on or after its go-live "
                       f"({go_live}); people hear nothing once the change is live: add a "
                       "go-live message or a check-in for it")
    for index, event in enumerate(program.communications):
        if event.survey is None and "{marker}" not in event.template \
                and program.feedback_marker not in event.template:
            out.append(f"communications.{index} ({event.id}): offers no way to answer: attach "
                       "a survey or mention the feedback marker ({marker}) in its text")
    if program.alliance and not program.checkins:
        out.append("checkins: no check-in is planned for the management alliance; add one "
                   "so its members get a brief on their units on a cadence")
    return out
