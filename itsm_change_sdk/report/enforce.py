"""Binding gates: with ``gates: enforce`` in the program file, ``apply`` holds back the
effects of every started wave whose gate is closed, unless forced with a recorded note.

Advisory gates (the default) only report. Held-back effects are not lost: they are planned
again on the next ``apply``, once the gate opens or someone overrides it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..model import Program
from ..planner import Plan
from .gates import GateResult

if TYPE_CHECKING:
    from ..workspace import Workspace

__all__ = ["FORCED_BY", "Hold", "enforce_gates"]

FORCED_BY = "apply --force"
"""The sign-off member an override is recorded under, with its note, in the ledger."""


@dataclass
class Hold:
    plan: Plan
    """What ``apply`` may write."""
    closed: dict[str, GateResult] = field(default_factory=dict)
    """Started waves whose gate is closed, with the gate's reasons."""
    held_actions: int = 0
    """Creates and updates taken out of the plan (0 when forced or advisory)."""
    forced: bool = False
    recorded: bool = False
    """Whether this override's note was recorded (False: one was recorded earlier)."""


def enforce_gates(ws: Workspace, program: Program, plan: Plan,
                  force_note: str | None = None) -> Hold:
    """Take the closed waves' creates and updates out of ``plan``; with ``force_note``,
    keep them and record the note as the override. Retirements always go ahead."""
    if program.gates != "enforce":
        return Hold(plan)
    from ..plugins import metric_registry
    from .build import build_report, program_tickets

    now = ws.clock()
    built = build_report(program, ws.ledger, program_tickets(ws.platforms, program),
                         metric_registry(ws.pm).kinds, now=now, as_of=now)
    closed = {w.id: built.gates[w.id] for w in program.waves
              if w.starts <= now.date() and not built.gates[w.id].open}
    if not closed:
        return Hold(plan)
    if force_note is not None:
        recorded = False
        for wave in closed:
            recorded |= ws.ledger.sign_off(program.id, wave, FORCED_BY, force_note, now)
        return Hold(plan, closed, forced=True, recorded=recorded)
    units = {u.id for u in program.units if u.wave in closed}
    kept = [a for a in plan.actions
            if not (a.action in ("create", "update") and a.effect is not None
                    and a.effect.meta.get("unit") in units)]
    return Hold(dataclasses.replace(plan, actions=kept), closed,
                held_actions=len(plan.actions) - len(kept))
