"""Measured results quoted in messages: ``{{ goal.portal-share.sd-tier1.value }}``.

A "what the pilot achieved" message should carry the real numbers. A template quotes a
result between double braces; it is resolved from the report's numbers when the message is
about to be sent, and the values quoted are recorded with it in the ledger (``quoted``). A
message quoting a number that cannot be measured yet (a unit not live, too few tickets) is
held, and ``plan`` says which number and why.

References (``<unit>`` is optional; without it, the program):

* ``goal.<id>[.<unit>].value``: the value since go-live; for the program, the live units'
  values weighted by their tickets since go-live;
* ``goal.<id>[.<unit>].baseline`` and ``.target``: as declared (``.before`` for a unit: the
  value measured before its wave started);
* ``training[.<unit>].completion``: assignments completed, as a share;
* ``feedback[.<unit>].responses``: answers received; ``feedback.themes``: themes people
  wrote about (the theme count with unmarked feedback read, otherwise the ADKAR dimensions
  written answers were grouped under).
"""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING

from .model import Effect
from .report.gates import fmt_value

if TYPE_CHECKING:
    from .report.build import Report

__all__ = ["MARK", "REFERENCE", "is_marked", "mark_results", "quote_results",
           "reference_problem"]

REFERENCE = re.compile(r"\{\{\s*((?:goal|training|feedback)(?:\.[A-Za-z0-9_-]+)+)\s*\}\}")
"""A quoted result in a template."""
MARK = "\u27e6{}\u27e7"
"""How a reference waits in a planned body until it is resolved (survives ``{}`` filling)."""
_MARKED = re.compile("\u27e6([^\u27e7]+)\u27e7")

GOAL_FIELDS = ("value", "baseline", "target", "before")


def is_marked(body: str) -> bool:
    """Whether a planned body still quotes results to resolve."""
    return _MARKED.search(body) is not None


def mark_results(template: str) -> str:
    """The template with each quoted result replaced by its mark."""
    return REFERENCE.sub(lambda m: MARK.format(m.group(1)), template)


def reference_problem(program_goals: set[str], units: set[str], ref: str) -> str | None:
    """Why a reference cannot be resolved for this program, or None."""
    parts = ref.split(".")
    head, rest = parts[0], parts[1:]
    if head == "goal":
        if len(rest) not in (2, 3) or rest[0] not in program_goals:
            return (f"{{{{ {ref} }}}} names no goal of this program; write "
                    "goal.<goal id>[.<unit id>].value (or baseline, target)")
        unit, field = (rest[1], rest[2]) if len(rest) == 3 else (None, rest[1])
        if field not in GOAL_FIELDS or (field == "before" and unit is None):
            return f"{{{{ {ref} }}}}: a goal quotes value, baseline or target (before per unit)"
    else:
        allowed = ("completion",) if head == "training" else ("responses", "themes")
        if len(rest) not in (1, 2) or rest[-1] not in allowed:
            return f"{{{{ {ref} }}}}: {head} quotes {' or '.join(allowed)}"
        unit = rest[0] if len(rest) == 2 else None
        if head == "feedback" and unit is not None and rest[-1] == "themes":
            return f"{{{{ {ref} }}}}: themes are counted for the program, not per unit"
    if unit is not None and unit not in units:
        return f"{{{{ {ref} }}}} names no unit of this program ('{unit}')"
    return None


def quote_results(effect: Effect, report: Report) -> Effect | str:
    """The effect with its marked results filled in and recorded in its meta, or why one
    cannot be measured yet."""
    quoted: dict[str, str] = {}
    for ref in dict.fromkeys(_MARKED.findall(effect.body)):
        value = _resolve(report, ref)
        if value.startswith("!"):
            return f"{{{{ {ref} }}}} cannot be measured yet: {value[1:]}"
        quoted[ref] = value
    body = _MARKED.sub(lambda m: quoted[m.group(1)], effect.body)
    record = "; ".join(f"{k}={v}" for k, v in quoted.items())
    return dataclasses.replace(effect, body=body, meta={**effect.meta, "quoted": record})


def _resolve(report: Report, ref: str) -> str:
    """The value as shown, or ``!`` and the reason it is not known."""
    parts = ref.split(".")
    head, rest = parts[0], parts[1:]
    if head == "goal":
        return _goal(report, rest)
    unit = rest[0] if len(rest) == 2 else None
    if head == "training":
        cells = [report.training.by_unit[unit]] if unit else \
            list(report.training.by_unit.values())
        assigned = sum(c.assigned for c in cells)
        if not assigned:
            return "!no training assigned yet"
        return f"{sum(c.completed for c in cells) / assigned:.0%}"
    if rest[-1] == "themes":
        if report.voices:
            return str(len(report.voices))
        groups = {g for u in report.feedback.units.values() for g in u.texts}
        return str(len(groups))
    units = [report.feedback.units[unit]] if unit and unit in report.feedback.units else \
        [] if unit else list(report.feedback.units.values())
    return str(sum(u.responses for u in units))


def _goal(report: Report, rest: list[str]) -> str:
    result = next(r for r in report.goals if r.goal.id == rest[0])
    goal, label = result.goal, result.unit_label
    field = rest[-1]
    if field == "baseline":
        return fmt_value(goal.baseline, label)
    if field == "target":
        return fmt_value(goal.target, label)
    if len(rest) == 3:
        found = result.units.get(rest[1])
        if found is None:
            return f"!goal {goal.id} does not apply to {rest[1]}"
        if not found.live:
            return f"!{rest[1]} is not live yet"
        if field == "before":
            return "!" + (found.before_unknown or "no tickets before the wave") \
                if found.before is None else fmt_value(found.before, label)
        if found.unknown is not None or found.current is None:
            return f"!goal {goal.id} for {rest[1]} is unknown ({found.unknown or 'no data'})"
        return fmt_value(found.current, label)
    live = [u for u in result.units.values() if u.live]
    known = [u for u in live if u.unknown is None and u.current is not None]
    if not live:
        return f"!no unit is live for goal {goal.id} yet"
    if len(known) < len(live):
        waiting = ", ".join(u.unit for u in live if u not in known)
        return f"!goal {goal.id} is unknown for {waiting}"
    weight = sum(u.current_count for u in known)
    value = sum((u.current or 0.0) * u.current_count for u in known) / weight
    return fmt_value(value, label)
