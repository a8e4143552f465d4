"""Faults on a fifth of all writes (lost before or after the platform applied them): repeated
applies converge with every effect present exactly once."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from itsm_change_sdk import Workspace, load_program
from itsm_change_sdk.demo import SimClock
from itsm_change_sdk.sandbox.platform import SandboxPlatform
from itsm_change_sdk.sandbox.store import SandboxStore

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "portal-rollout" / "program.yaml"


@pytest.mark.parametrize("concurrency", [1, 4, 16])
def test_twenty_percent_faults_converge_to_exactly_once(tmp_path, concurrency):
    """Batches claimed and recorded together, by one worker or sixteen at once."""
    program = load_program(EXAMPLE)
    clock = SimClock(datetime(2027, 3, 2, 8, 0, tzinfo=UTC))
    store = SandboxStore(f"sqlite:///{tmp_path / 'sandbox.db'}", clock=clock)
    store.add_ticket(title="Portal rollout", kind="change", channel=None)
    for member in program.alliance:
        store.add_person(member.name, member.email or f"{member.id}@example.com", member.id)
    for unit in program.units:
        store.add_group(unit.group, [store.add_person(f"{unit.id} {i}", f"{unit.id}{i}@x.example")
                                     for i in range(6)])
    rng = random.Random(20)
    platform = SandboxPlatform(store)
    platform.faults.extend(rng.choice(["before", "after", None, None, None, None, None, None,
                                       None, None]) for _ in range(2000))
    injected = Counter(platform.faults)
    assert injected["before"] and injected["after"]
    with Workspace(str(tmp_path / "ledger.db"), clock=clock, concurrency=concurrency) as ws:
        ws.platforms.add("sandbox", platform)
        rounds = 0
        while ws.plan(program).writes and rounds < 6:
            ws.apply(program)
            rounds += 1
        assert ws.plan(program).writes == 0, "applies converge"
        rows = ws.ledger.effects(program.id)
    assert {r.state for r in rows} <= {"done", "skipped"}
    tasks = Counter(t["key"] for t in store.all_tasks())
    assert max(tasks.values()) == 1
    assert set(tasks) == {r.key for r in rows if r.channel == "task" and r.state == "done"}
    announcements = Counter(a["key"] for a in store.announcements())
    assert max(announcements.values(), default=1) == 1
