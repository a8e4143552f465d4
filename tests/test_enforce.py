"""Binding gates: ``gates: enforce`` holds back a started wave whose gate is closed."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from itsm_change_sdk import Workspace, load_program
from itsm_change_sdk.demo import SimClock
from itsm_change_sdk.report.enforce import FORCED_BY, enforce_gates
from itsm_change_sdk.sandbox.platform import SandboxPlatform
from itsm_change_sdk.sandbox.store import SandboxStore

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "portal-rollout" / "program.yaml"
WAVE_2_DAY = datetime(2027, 3, 2, 8, 0, tzinfo=UTC)  # wave 2 started on 03-01
WAVE_2_UNITS = {"sd-tier2", "field-services"}


@pytest.fixture
def program():
    return dataclasses.replace(load_program(EXAMPLE), gates="enforce")


@pytest.fixture
def ws(tmp_path, program):
    clock = SimClock(WAVE_2_DAY)
    store = SandboxStore(f"sqlite:///{tmp_path / 'sandbox.db'}", clock=clock)
    store.add_ticket(title="Portal rollout", kind="change", channel=None,
                     opened_at=WAVE_2_DAY - timedelta(days=90))
    for member in program.alliance:
        store.add_person(member.name, member.email or f"{member.id}@example.com", member.id)
    for unit in program.units:
        store.add_group(unit.group, [store.add_person(f"{unit.id} agent {i}",
                                                      f"{unit.id}.{i}@example.com")
                                     for i in range(2)])
    workspace = Workspace(str(tmp_path / "ledger.db"), clock=clock)
    workspace.platforms.add("sandbox", SandboxPlatform(store))
    workspace.enable_for(program)
    # The pilot was signed off; wave 2's managers have not signed yet: its gate is closed.
    workspace.ledger.sign_off(program.id, "pilot", "dana-reyes", "", WAVE_2_DAY)
    yield workspace
    workspace.close()


def units_written(plan):
    return {a.effect.meta.get("unit") for a in plan.actions
            if a.action in ("create", "update") and a.effect is not None}


def test_enforce_holds_back_the_closed_wave_only(ws, program):
    planned = ws.runner(program).plan()
    assert units_written(planned) >= WAVE_2_UNITS
    hold = enforce_gates(ws, program, planned)
    assert list(hold.closed) == ["wave-2"]
    assert any("sign-off by priya-nair" in c.text and not c.ok
               for c in hold.closed["wave-2"].conditions)
    assert "sd-tier1" in units_written(hold.plan)
    assert not WAVE_2_UNITS & units_written(hold.plan)
    assert hold.held_actions == len(planned.actions) - len(hold.plan.actions) > 0


def test_advisory_gates_change_nothing(ws, program):
    advisory = dataclasses.replace(program, gates="advisory")
    planned = ws.runner(advisory).plan()
    hold = enforce_gates(ws, advisory, planned)
    assert hold.plan is planned and hold.closed == {} and hold.held_actions == 0


def test_force_keeps_the_plan_and_records_the_note(ws, program):
    planned = ws.runner(program).plan()
    hold = enforce_gates(ws, program, planned, "pilot numbers reviewed with the sponsor")
    assert hold.forced and hold.recorded and hold.plan is planned
    [override] = [s for s in ws.ledger.signoffs(program.id) if s.member == FORCED_BY]
    assert (override.wave, override.note) == ("wave-2", "pilot numbers reviewed with the sponsor")


def test_force_without_a_note_is_refused():
    from click.testing import CliRunner

    from itsm_change_sdk.cli import cli

    result = CliRunner().invoke(cli, ["apply", str(EXAMPLE), "--force"])
    assert result.exit_code == 2
    assert "--force needs --note" in result.output


def test_the_program_file_says_advisory_or_enforce(tmp_path):
    from itsm_change_sdk.errors import ProgramError

    text = EXAMPLE.read_text().replace("training_threshold: 0.8",
                                       "training_threshold: 0.8\ngates: enforce")
    (tmp_path / "p.yaml").write_text(text)
    assert load_program(tmp_path / "p.yaml").gates == "enforce"
    assert load_program(EXAMPLE).gates == "advisory"
    (tmp_path / "bad.yaml").write_text(text.replace("gates: enforce", "gates: strict"))
    with pytest.raises(ProgramError) as found:
        load_program(tmp_path / "bad.yaml")
    assert "gates: expected one of advisory, enforce, found the text 'strict'" in str(
        found.value)


def test_a_held_wave_end_to_end_on_the_command_line(tmp_path):
    """Through the CLI: apply holds the closed wave, --force --note applies it and records
    the note once, and the held writes were never made before the override."""
    from click.testing import CliRunner

    from itsm_change_sdk.cli import cli

    def run(*args: object):
        return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)

    program_file = tmp_path / "enforced.yaml"
    program_file.write_text(EXAMPLE.read_text().replace(
        "training_threshold: 0.8", "training_threshold: 0.8\ngates: enforce"))
    assert run("demo", "--weeks", "1").exit_code == 0
    when = "2027-03-02T09:00"

    held = run("--as-of", when, "apply", program_file)
    assert held.exit_code == 1, held.output
    assert "Gate for wave-2 is CLOSED (gates: enforce):" in held.output
    assert "  [--] sign-off by priya-nair (Priya Nair, Service Desk escalations): missing" \
        in held.output
    assert re.search(r"Held back \d+ writes of wave-2 until the gate opens", held.output)

    def wave_2_rows():
        with Workspace() as ws:
            return [r for r in ws.ledger.effects("portal-rollout")
                    if r.meta.get("unit") in WAVE_2_UNITS and r.state == "done"]

    assert wave_2_rows() == []
    again = run("--as-of", when, "apply", program_file)
    assert again.exit_code == 1 and wave_2_rows() == []

    forced = run("--as-of", when, "apply", program_file, "--force", "--note",
                 "pilot reviewed with the sponsor")
    assert forced.exit_code == 0, forced.output
    assert "Applying anyway (--force); note recorded." in forced.output
    assert {r.meta.get("unit") for r in wave_2_rows()} == WAVE_2_UNITS
    with Workspace() as ws:
        overrides = [s for s in ws.ledger.signoffs("portal-rollout") if s.member == FORCED_BY]
    assert [(s.wave, s.note) for s in overrides] == [("wave-2", "pilot reviewed with the sponsor")]

    repeat = run("--as-of", when, "apply", program_file, "--force", "--note", "again")
    assert "an override was recorded earlier" in repeat.output
    assert "0 created" in repeat.output
