"""The report as plain text for a terminal: the numbers a change lead scans first."""

from __future__ import annotations

from datetime import date, timedelta

from ..metrics import UnitResult
from .build import Report
from .gates import fmt_value
from .leaders import leader_lines
from .measures import TrainingCell

__all__ = ["render_text", "sparkline", "verdict_lines", "voices_lines"]

_BARS = "▁▂▃▄▅▆▇█"
TEXTS_PER_GROUP = 3


def sparkline(values: list[float | None]) -> str:
    """A one-line trend; gaps (weeks without data) show as spaces."""
    known = [v for v in values if v is not None]
    if not known:
        return ""
    low, high = min(known), max(known)
    span = (high - low) or 1.0
    return "".join(" " if v is None else _BARS[round((v - low) / span * (len(_BARS) - 1))]
                   for v in values)


def _training_columns(cell: TrainingCell) -> str:
    median = "-" if cell.median_days is None else f"{cell.median_days:.1f}"
    return (f"{cell.assigned:>8} {cell.completed:>5} {fmt_value(cell.share, 'share'):>6} "
            f"{cell.overdue:>7} {median:>11}")


def verdict_lines(report: Report) -> list[str]:
    """The answer first: goals of live units, the next gate, the barrier, the feedback."""
    found = report.verdict
    lines = ["", "Verdict:"]
    for g in found.goals:
        why = f" ({g.reason})" if g.reason else ""
        lines.append(f"  {g.standing:<9} {g.goal} for {g.unit}: {g.value}{why}")
    if not found.goals:
        lines.append("  no unit is live yet: no goal can be judged")
    if found.next_wave is None:
        lines.append("  every wave has started")
    else:
        lines.append(f"  next wave {found.next_wave} (starts {found.next_wave_starts}): gate "
                     f"{'OPEN' if found.gate_open else 'CLOSED'}")
        lines += [f"    blocked by: {b}" for b in found.blocking]
    if found.weakest is not None and found.weakest_score is not None:
        lines.append(f"  weakest ADKAR dimension (live units): {found.weakest} "
                     f"({found.weakest_score:.1f} of 5)")
    if found.frequent is not None:
        lines.append(f"  most frequent feedback: {found.frequent_count} of "
                     f"{found.frequent_total} written answers from people who scored "
                     f"{found.frequent} lowest")
    return lines


def render_text(report: Report, *, texts_per_group: int = TEXTS_PER_GROUP) -> list[str]:
    """The report's lines, section by section in the order a change lead reads them."""
    program = report.program
    lines = [f"Adoption report: {program.title} ({program.id})",
             f"As of {report.as_of:%Y-%m-%d %H:%M} UTC; {report.tickets_read} tickets read."]
    lines += report.notes
    lines += verdict_lines(report)
    lines += _goals(report)
    lines += _training(report)
    lines += _communications(report)
    lines += _feedback(report)
    lines += _feedback_texts(report, texts_per_group)
    lines += voices_lines(report, texts_per_group)
    lines += _prompts(report)
    lines += leader_lines(report.leaders)
    lines += silence_lines(report)
    lines += _gates(report)
    return lines


def silence_lines(report: Report) -> list[str]:
    """Live units gone quiet: more than ``silence_days`` without a message."""
    if not report.silent:
        return []
    days = report.program.silence_days
    lines = ["", f"Radio silence (live units without a message for more than {days} days):"]
    for unit in report.silent:
        last = f"last message {unit.last_message}" if unit.last_message \
            else "no message since go-live"
        lines.append(f"  {unit.title:<22} {unit.days} days, {last}")
    return lines


def _goal_status(r: UnitResult) -> str:
    """The status column: short; an unknown value's reason goes on the line below."""
    if r.status == "met":
        return "goal met"
    if r.status == "not met":
        return f"{max(r.progress or 0.0, 0.0):.0%} of the way"
    return r.status


def _goals(report: Report) -> list[str]:
    """Per goal, each unit's KPI before, now and against the target, with its weekly trend."""
    lines: list[str] = []
    for result in report.goals:
        goal = result.goal
        label = result.unit_label
        lines += ["", f"Goal {goal.id}: {goal.title}",
                  f"  {'unit':<22} {'wave':<8} {'baseline':>8} {'before':>8} {'now':>8} "
                  f"{'target':>8}  {'status':<16} weekly"]
        for unit_id, r in result.units.items():
            unit = report.program.unit(unit_id)
            status = _goal_status(r)
            spark = sparkline(list(r.weekly.values())[-12:])
            lines.append(f"  {unit.title:<22} {unit.wave:<8} {fmt_value(goal.baseline, label):>8}"
                         f" {fmt_value(r.before, label):>8} {fmt_value(r.current, label):>8} "
                         f"{fmt_value(goal.target, label):>8}  {status:<16} {spark}")
            if r.live and r.unknown is not None:
                lines.append(f"  {'':<22} unknown: {r.unknown}")
    return lines


def _training(report: Report) -> list[str]:
    """Per unit (then per module), assignments, completions and what is overdue."""
    program = report.program
    lines = ["", f"Training (threshold {program.training_threshold:.0%}):",
             f"  {'unit':<22} {'assigned':>8} {'done':>5} {'share':>6} {'overdue':>7} "
             f"{'median days':>11}"]
    for unit in program.units:
        cell = report.training.by_unit.get(unit.id)
        if cell is None or not cell.assigned:
            planned = report.training.planned.get(unit.id)
            lines.append(f"  {unit.title:<22} {'not assigned yet' if planned else 'none planned'}")
            continue
        lines.append(f"  {unit.title:<22} {_training_columns(cell)}")
        for (unit_id, module), mcell in report.training.by_unit_module.items():
            if unit_id == unit.id and mcell.assigned:
                lines.append(f"    {module:<20} {_training_columns(mcell)}")
    return lines


def _communications(report: Report) -> list[str]:
    lines = ["", "Communications delivered:"]
    if not report.communications:
        lines.append("  none yet")
    for comm in report.communications:
        answered = (f", {comm.answered}/{comm.requests} feedback requests answered"
                    if comm.requests else "")
        lines.append(f"  {comm.occurrence[:10]:<10} {comm.event:<20} {comm.channel:<12} "
                     f"{comm.delivered} delivered{answered}")
    return lines


def _feedback(report: Report) -> list[str]:
    """Per unit, the ADKAR averages, the weakest dimension and how many answered."""
    dims = report.feedback.dimensions
    lines = ["", "Feedback (ADKAR averages, 1-5):",
             f"  {'unit':<22} " + " ".join(f"{d[:5]:>5}" for d in dims)
             + f" {'barrier':<14} {'answered':>9} responses"]
    for unit in report.program.units:
        fb = report.feedback.units.get(unit.id)
        if fb is None or (not fb.responses and not fb.requests):
            lines.append(f"  {unit.title:<22} no feedback requested or given yet")
            continue
        scores = " ".join(f"{fb.averages[d]:>5.1f}" if d in fb.averages else f"{'-':>5}"
                          for d in dims)
        rate = f"{fb.answered}/{fb.requests}" if fb.requests else "-"
        lines.append(f"  {unit.title:<22} {scores} {fb.weakest or '-':<14} {rate:>9} "
                     f"{fb.responses} ({fb.from_comments} from comments)")
    return lines


def _feedback_texts(report: Report, texts_per_group: int) -> list[str]:
    """The latest free-text answers, by unit and by the dimension their author scored
    lowest."""
    lines = ["", "What people wrote (by unit, grouped by the dimension they scored lowest):"]
    any_text = False
    for unit_id, fb in report.feedback.units.items():
        if not fb.texts:
            continue
        any_text = True
        lines.append(f"  {unit_id}:")
        for group, answers in fb.texts.items():
            lines.append(f"    lowest {group} ({len(answers)}):")
            for answer in answers[-texts_per_group:]:
                text = " ".join(answer.text.split())
                lines.append(f"      {answer.submitted_at:%Y-%m-%d} {text[:90]}")
    if not any_text:
        lines.append("  no free-text answers yet")
    return lines


def _prompts(report: Report) -> list[str]:
    """Each prompt's tickets against matching tickets without it, per goal."""
    lines = ["", "Prompts (tickets that carried the prompt vs matching tickets that did not):"]
    if not report.prompts:
        lines.append("  no prompts in the program")
    for comparison in report.prompts:
        lines.append(f"  {comparison.prompt}: {comparison.with_prompt} with, "
                     f"{comparison.without_prompt} without")
        for row in comparison.goals:
            lines.append(f"    {row.goal:<20} with {fmt_value(row.with_value, row.unit_label):>6}"
                         f" ({row.with_count})  without "
                         f"{fmt_value(row.without_value, row.unit_label):>6} ({row.without_count})")
    return lines


def _gates(report: Report) -> list[str]:
    lines = ["", "Wave gates:"]
    for wave_id, gate in report.gates.items():
        lines.append(f"  {wave_id}: {'OPEN' if gate.open else 'CLOSED'}")
        for condition in gate.conditions:
            lines.append(f"    [{'ok' if condition.ok else '--'}] {condition.text}")
    return lines


def voices_lines(report: Report, quotes: int = TEXTS_PER_GROUP) -> list[str]:
    """"What people are saying": themes in comments, per unit, with trend and quotes, and
    where a theme speaks to a unit's barrier point (its weakest surveyed dimension)."""
    if not report.program.unmarked_feedback.enabled:
        return []
    lines = ["", "What people are saying (themes in ticket comments, marked and inferred):"]
    if not report.voices:
        return [*lines, "  no feedback comments yet"]
    titles = {unit.id: unit.title for unit in report.program.units}
    for voice in report.voices:
        mood = "-" if voice.sentiment is None else f"{voice.sentiment:+.1f}"
        spark = sparkline([float(n) for n in _every_week(voice.weekly)[-12:]])
        lines.append(f"  {voice.label}: {voice.comments} comments ({voice.inferred} found by "
                     f"the classifier), mostly {voice.dimension or '-'}, sentiment {mood}, "
                     f"weekly {spark}")
        units = ", ".join(f"{titles.get(u, u)} {n}" for u, n in voice.by_unit.most_common())
        lines.append(f"    units: {units}")
        barrier = [titles.get(u, u) for u in voice.by_unit
                   if (fb := report.feedback.units.get(u)) is not None
                   and fb.weakest is not None and fb.weakest == voice.dimension]
        if barrier:
            lines.append(f"    speaks to the barrier point ({voice.dimension}) of "
                         f"{', '.join(barrier)}")
        for quote, confidence in voice.quotes[:quotes]:
            how = "" if confidence is None else f" (inferred, confidence {confidence:.2f})"
            lines.append(f"    \"{quote[:100]}\"{how}")
    return lines


def _every_week(weekly: dict[date, int]) -> list[int]:
    """Counts from the first week to the last, weeks without comments as 0."""
    if not weekly:
        return []
    weeks = sorted(weekly)
    count = (weeks[-1] - weeks[0]).days // 7 + 1
    return [weekly.get(weeks[0] + timedelta(days=7 * i), 0) for i in range(count)]
