"""Short JSON answers for scripts: a wave's gate and the report's verdict with every gate.

The full numbers stay in :func:`~itsm_change_sdk.report.export.report_dict` (``--json FILE``);
these are what a pipeline step decides on, printed to standard output.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .build import Report
    from .gates import GateResult

__all__ = ["gate_dict", "summary_dict"]


def gate_dict(result: GateResult, as_of: str) -> dict[str, Any]:
    """One wave's gate: open or not, and each condition with its reason."""
    return {
        "wave": result.wave,
        "previous": result.previous,
        "as_of": as_of,
        "open": result.open,
        "conditions": [{"check": c.check, "ok": c.ok, "text": c.text}
                       for c in result.conditions],
        "notes": list(result.notes),
    }


def summary_dict(report: Report) -> dict[str, Any]:
    """The verdict first, then every wave's gate with its conditions."""
    as_of = report.as_of.isoformat()
    return {
        "program": report.program.id,
        "title": report.program.title,
        "as_of": as_of,
        "tickets_read": report.tickets_read,
        "verdict": dataclasses.asdict(report.verdict),
        "gates": {wave: gate_dict(gate, as_of) for wave, gate in report.gates.items()},
        "notes": list(report.notes),
    }
