"""CSV and JSON exports: the report's numbers as flat tables, for spreadsheets and BI tools.

Both formats are written from :func:`tables`, so they hold the same rows. Numbers are
unrounded; the terminal and HTML views round them for reading.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path
from typing import Any

from .build import Report

__all__ = ["report_dict", "tables", "write_csv", "write_json"]

Row = dict[str, Any]

# Cells a spreadsheet would run as a formula get a leading quote, in every text column:
# titles, ids and notes all come from people or platforms.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def tables(report: Report) -> dict[str, list[Row]]:
    program = report.program
    waves = {u.id: u.wave for u in program.units}
    out: dict[str, list[Row]] = {k: [] for k in (
        "goals", "goal_weekly", "training_units", "training_modules", "communications",
        "feedback", "feedback_weekly", "feedback_text", "prompts", "gates", "signoffs")}
    for result in report.goals:
        goal = result.goal
        for unit_id, r in result.units.items():
            out["goals"].append({
                "goal": goal.id, "title": goal.title, "metric": goal.metric,
                "unit_label": result.unit_label, "unit": unit_id, "wave": waves.get(unit_id),
                "baseline": goal.baseline, "measured_before": r.before,
                "before_tickets": r.before_count, "current": r.current,
                "current_tickets": r.current_count, "target": goal.target, "met": r.met,
                "status": r.status, "unknown_reason": r.unknown, "progress": r.progress})
            for week, value in r.weekly.items():
                out["goal_weekly"].append({
                    "goal": goal.id, "unit": unit_id, "week": week.isoformat(),
                    "value": value, "tickets": r.weekly_counts.get(week, 0)})
    for unit_id, cell in report.training.by_unit.items():
        out["training_units"].append({
            "unit": unit_id, "assigned": cell.assigned, "completed": cell.completed,
            "overdue": cell.overdue, "completion": cell.share,
            "median_days_to_complete": cell.median_days})
    for (unit_id, module), cell in report.training.by_unit_module.items():
        out["training_modules"].append({
            "unit": unit_id, "module": module, "assigned": cell.assigned,
            "completed": cell.completed, "overdue": cell.overdue, "completion": cell.share,
            "median_days_to_complete": cell.median_days})
    for comm in report.communications:
        out["communications"].append({
            "event": comm.event, "title": comm.title, "occurrence": comm.occurrence,
            "channel": comm.channel, "delivered": comm.delivered,
            "feedback_requests": comm.requests, "answered": comm.answered})
    dims = report.feedback.dimensions
    for unit_id, fb in report.feedback.units.items():
        row: Row = {
            "unit": unit_id, "responses": fb.responses, "from_comments": fb.from_comments,
            "requests": fb.requests, "answered": fb.answered,
            "response_rate": fb.response_rate, "weakest": fb.weakest}
        row.update({d: fb.averages.get(d) for d in dims})
        out["feedback"].append(row)
        for week, scores in fb.weekly.items():
            for dim, mean in scores.items():
                out["feedback_weekly"].append({
                    "unit": unit_id, "week": week.isoformat(), "dimension": dim, "mean": mean})
        for group, answers in fb.texts.items():
            for answer in answers:
                out["feedback_text"].append({
                    "unit": unit_id, "lowest": group,
                    "submitted_at": answer.submitted_at.isoformat(), "source": answer.source,
                    "ticket": answer.ticket_id, "text": answer.text})
    for comparison in report.prompts:
        for goal_row in comparison.goals:
            out["prompts"].append({
                "prompt": comparison.prompt, "title": comparison.title, "goal": goal_row.goal,
                "with_prompt_tickets": comparison.with_prompt,
                "without_prompt_tickets": comparison.without_prompt,
                "with_value": goal_row.with_value, "with_count": goal_row.with_count,
                "without_value": goal_row.without_value,
                "without_count": goal_row.without_count})
    for wave_id, gate in report.gates.items():
        for condition in gate.conditions:
            out["gates"].append({
                "wave": wave_id, "previous": gate.previous, "gate_open": gate.open,
                "check": condition.check, "ok": condition.ok, "text": condition.text})
    for signoff in report.signoffs:
        out["signoffs"].append({
            "wave": signoff.wave, "member": signoff.member,
            "signed_at": signoff.signed_at.isoformat(), "note": signoff.note})
    return out


def report_dict(report: Report) -> dict[str, Any]:
    return {
        "program": report.program.id,
        "title": report.program.title,
        "as_of": report.as_of.isoformat(),
        "tickets_read": report.tickets_read,
        "training_threshold": report.program.training_threshold,
        "notes": report.notes,
        "verdict": dataclasses.asdict(report.verdict),
        "gates": {w: {"open": g.open, "previous": g.previous, "notes": g.notes}
                  for w, g in report.gates.items()},
        "tables": tables(report),
    }


def write_json(report: Report, path: Path) -> None:
    path.write_text(json.dumps(report_dict(report), indent=2, ensure_ascii=False) + "\n",
                    encoding="utf-8")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def write_csv(report: Report, directory: Path) -> list[Path]:
    """One CSV file per table (with a header row even when empty); returns the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, rows in tables(report).items():
        path = directory / f"{name}.csv"
        columns = list(rows[0]) if rows else _EMPTY_COLUMNS.get(name, [])
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            for row in rows:
                writer.writerow({k: _cell(v) for k, v in row.items()})
        written.append(path)
    return written


_EMPTY_COLUMNS: dict[str, list[str]] = {
    "feedback_text": ["unit", "lowest", "submitted_at", "source", "ticket", "text"],
    "prompts": ["prompt", "title", "goal", "with_prompt_tickets", "without_prompt_tickets",
                "with_value", "with_count", "without_value", "without_count"],
    "signoffs": ["wave", "member", "signed_at", "note"],
    "communications": ["event", "title", "occurrence", "channel", "delivered",
                       "feedback_requests", "answered"],
    "goal_weekly": ["goal", "unit", "week", "value", "tickets"],
    "feedback_weekly": ["unit", "week", "dimension", "mean"],
}
