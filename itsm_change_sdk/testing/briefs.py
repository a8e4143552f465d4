"""Check-in briefs through a platform plugin's own delivery hook, against its test double.

A brief is an ordinary message on the ``task`` channel, so a plugin needs nothing new to carry
it; these checks show that it does, end to end: the briefs the planner writes for the
example program (from a real report) reach each manager as a task with the brief intact, can
be found again by their keys (so an interrupted send is not repeated), and read back as
closed once their reader closes them (a check-in held).

    from itsm_change_sdk.testing.briefs import check_briefs_delivered

    def test_briefs(platform, double, tmp_path):
        check_briefs_delivered(platform, double, tmp_path)
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ..demo import example_program_path
from ..ledger import Ledger
from ..metrics import builtin_metric_kinds
from ..model import BUILTIN_CHANNELS, Effect, EffectKind
from ..planner import plan
from ..report.build import build_report
from ..schema import load_program
from ..workspace import retarget
from .contract import call_hook
from .double import PlatformDouble

__all__ = ["BRIEF_DAY", "brief_effects", "check_briefs_delivered"]

BRIEF_DAY = datetime(2027, 2, 1, 8, 0, tzinfo=UTC)
"""The example program's first check-in."""


def brief_effects(double: PlatformDouble, tmp_path: Path) -> list[Effect]:
    """The example's first check-in briefs, written by the planner from a report, for
    managers who exist on ``double`` (one person per alliance member)."""
    program = retarget(load_program(example_program_path()), double.name)
    ledger = Ledger(f"sqlite:///{tmp_path / 'briefs-ledger.db'}")
    try:
        kinds = {kind.name: kind for kind in builtin_metric_kinds()}
        report = build_report(program, ledger, [], kinds, now=BRIEF_DAY, as_of=BRIEF_DAY)
    finally:
        ledger.close()
    channels = {c.name: c for c in BUILTIN_CHANNELS}
    planned = plan(program, {}, {}, BRIEF_DAY, channels, measures=lambda: report)
    briefs = [a.effect for a in planned.actions
              if a.action == "create" and a.effect is not None and "checkin" in a.effect.meta]
    out = []
    for effect in briefs:
        assert effect.recipient is not None
        person = double.add_person(effect.recipient.name, f"{effect.meta['leader']}@example.com")
        out.append(dataclasses.replace(effect, recipient=person))
    return out


def check_briefs_delivered(platform: Any, double: PlatformDouble, tmp_path: Path) -> None:
    briefs = brief_effects(double, tmp_path)
    assert len(briefs) == 4
    results = call_hook(platform, "itsm_change_deliver_communication", effects=briefs,
                        known={})
    assert [r.ok for r in results] == [True] * len(briefs), [r.error for r in results]
    records = {r.key: r for r in double.records(EffectKind.MESSAGE)}
    for brief in briefs:
        record = records[brief.key]
        assert brief.recipient is not None and record.assignee == brief.recipient.id
        assert f"check-in brief for {brief.recipient.name}" in record.body
        assert "Next gate" in record.body
    # An interrupted send is looked up by key before anything is sent again.
    found = call_hook(platform, "itsm_change_find_effects", kind=EffectKind.MESSAGE,
                      keys=[b.key for b in briefs]) or []
    assert {ref.key for ref in found} == {b.key for b in briefs}
    # A brief closed by its reader reads back as closed: a check-in held.
    refs = [r.ref for r in results if r.ref is not None]
    double.complete_task(refs[0], BRIEF_DAY + timedelta(hours=2))
    statuses = {s.key: s.completed for s in call_hook(
        platform, "itsm_change_training_status", refs=refs) or []}
    assert statuses[refs[0].key] is True
    assert not any(statuses[r.key] for r in refs[1:])
