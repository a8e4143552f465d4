"""Kill the process in the middle of apply, run again: every effect exists exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from itsm_change_sdk import Workspace, load_program
from itsm_change_sdk.demo import SimClock
from itsm_change_sdk.sandbox.platform import SandboxPlatform
from itsm_change_sdk.sandbox.store import SandboxStore

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "portal-rollout" / "program.yaml"
SCRIPT = Path(__file__).resolve().parent / "scripts" / "apply_slowly.py"
NOW = "2027-03-02T08:00:00+00:00"  # pilot and wave 2 started: training and messages due


def seed(store: SandboxStore, program) -> None:
    store.add_ticket(title="Portal rollout", kind="change", channel=None)
    for member in program.alliance:
        store.add_person(member.name, member.email or f"{member.id}@example.com", member.id)
    for unit in program.units:
        people = [store.add_person(f"{unit.id} {i}", f"{unit.id}.{i}@example.com")
                  for i in range(4)]
        store.add_group(unit.group, people)


def kill_after(args: list[str], writes: int, moment: str = "APPLIED") -> int:
    """Run apply in a subprocess and SIGKILL it right after its ``writes``-th ``moment``: a
    platform write (APPLIED), a batch's claims committed (CLAIMED) or its results committed
    (RECORDED)."""
    proc = subprocess.Popen([sys.executable, str(SCRIPT), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    seen = 0
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith(moment):
                seen += 1
                if seen == writes:
                    os.kill(proc.pid, signal.SIGKILL)
                    break
            elif line.startswith("DONE"):
                break
    finally:
        proc.wait(timeout=60)
    return seen


@pytest.mark.slow
@pytest.mark.parametrize(("moment", "kill_at"), [
    ("APPLIED", 1), ("APPLIED", 7), ("APPLIED", 23),
    ("CLAIMED", 1), ("CLAIMED", 2), ("RECORDED", 1),
])
def test_killed_apply_rerun_leaves_every_effect_once(tmp_path, moment, kill_at):
    program = load_program(EXAMPLE)
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    sandbox = f"sqlite:///{tmp_path / 'sandbox.db'}"
    clock = SimClock(__import__("datetime").datetime.fromisoformat(NOW))
    store = SandboxStore(sandbox, clock=clock)
    seed(store, program)

    seen = kill_after([str(EXAMPLE), ledger, sandbox, NOW], kill_at, moment)
    assert seen == kill_at, "the run was killed mid-way, not allowed to finish"
    with Workspace(ledger, clock=clock) as ws:
        pending = [r for r in ws.ledger.effects(program.id) if r.state == "pending"]
    if moment == "APPLIED":
        assert pending, "the batch the kill interrupted was claimed before it was sent"
    sent_before_rerun = {t["key"] for t in store.all_tasks()} | {
        a["key"] for a in store.announcements()}
    if moment == "CLAIMED":
        assert pending, "the claims were committed before the kill"
        assert not {r.key for r in pending} & sent_before_rerun, "claimed, then killed: not sent"

    with Workspace(ledger, clock=clock) as ws:
        ws.platforms.add("sandbox", SandboxPlatform(store))
        report = ws.apply(program)
        assert report.ok
        if moment == "APPLIED":
            assert report.recovered >= 1, "the write the kill interrupted was found, not resent"
        if moment == "CLAIMED":
            assert report.recovered == 0, "claimed but never sent: nothing to find, all sent now"
            done = {r.key for r in ws.ledger.effects(program.id) if r.state == "done"}
            assert {r.key for r in pending} <= done
        assert ws.plan(program).writes == 0
        rows = ws.ledger.effects(program.id)
        assert {r.state for r in rows} <= {"done", "skipped"}

    task_keys = Counter(t["key"] for t in store.all_tasks())
    assert task_keys and max(task_keys.values()) == 1
    announcement_keys = Counter(a["key"] for a in store.announcements())
    assert max(announcement_keys.values(), default=1) == 1
    note_keys = Counter(n.text for n in store.notes("CHG0001001"))
    assert max(note_keys.values(), default=1) == 1
    expected = {r.key for r in rows if r.state == "done" and r.kind in ("training",
                                                                          "feedback_request")}
    assert expected <= set(task_keys)
