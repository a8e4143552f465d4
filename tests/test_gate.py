"""Wave gates: trend rules, each condition with its reason, sign-off and the CLI exit codes."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from itsm_change_sdk.cli import cli
from itsm_change_sdk.ledger import SignOff
from itsm_change_sdk.metrics import GoalResult, UnitResult
from itsm_change_sdk.model import AllianceMember, Goal, Program, TrainingModule, Unit, Wave
from itsm_change_sdk.report.gates import evaluate_gate, trend
from itsm_change_sdk.report.measures import TrainingCell, TrainingMeasures

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "portal-rollout" / "program.yaml"
GO_LIVE = date(2027, 1, 18)  # a Monday
AS_OF = datetime(2027, 2, 20, tzinfo=UTC)  # weeks of 01-18 .. 02-08 are complete


def unit_result(current: float | None, weekly: list[float], *, baseline: float = 0.2,
                target: float = 0.5, unknown: str | None = None) -> UnitResult:
    weeks = {GO_LIVE + timedelta(days=7 * i): v for i, v in enumerate(weekly)}
    return UnitResult("u1", baseline, target, target >= baseline, current=current,
                      current_count=40, weekly=weeks, unknown=unknown)


class TestTrend:
    def test_steady_towards_target_and_half_way_is_trending(self):
        """0.30 -> 0.36 -> 0.40 closes on 0.5; current 0.40 is (0.40-0.2)/(0.3) = 67% of the way."""
        found = trend(unit_result(0.40, [0.30, 0.36, 0.40]), GO_LIVE, AS_OF, "share")
        assert found.trending and "67% of the way" in found.reason

    def test_a_step_away_is_not_trending(self):
        found = trend(unit_result(0.40, [0.30, 0.42, 0.40]), GO_LIVE, AS_OF, "share")
        assert not found.trending and "do not move steadily" in found.reason

    def test_too_little_progress_is_not_trending(self):
        """Moving the right way but only (0.3-0.2)/0.3 = 33% of the way (50% needed)."""
        found = trend(unit_result(0.30, [0.26, 0.28, 0.30]), GO_LIVE, AS_OF, "share")
        assert not found.trending and "33% of the way" in found.reason

    def test_lower_is_better(self):
        """Hours falling 26 -> 24 -> 23 towards 20 from a 30 baseline: (30-23)/10 = 70%."""
        found = trend(unit_result(23, [26, 24, 23], baseline=30, target=20), GO_LIVE, AS_OF,
                      "hours")
        assert found.trending

    def test_the_unfinished_week_is_left_out(self):
        """As of Wed 02-03 the week of 02-01 is not over: only two complete weeks remain."""
        found = trend(unit_result(0.40, [0.30, 0.36, 0.40]), GO_LIVE,
                      datetime(2027, 2, 3, tzinfo=UTC), "share")
        assert not found.trending and "only 2 complete week(s)" in found.reason


PROGRAM = Program(
    id="p", title="P", platforms=("sandbox",),
    goals=(Goal("share", "Portal", "channel_share", 0.2, 0.5),),
    waves=(Wave("pilot", "Pilot", date(2027, 1, 11), GO_LIVE),
           Wave("wave-2", "Wave 2", date(2027, 3, 1), date(2027, 3, 8))),
    units=(Unit("u1", "Desk", "pilot", "sandbox", group="Desk"),
           Unit("u2", "Field", "wave-2", "sandbox", group="Field")),
    alliance=(AllianceMember("ann", "Ann", "Desk", ("u1",), ("pilot",)),
              AllianceMember("bo", "Bo", "Field", ("u2",), ("wave-2",))),
    training=(TrainingModule("m1", "M1", ("o",), ("u1", "u2"), 7),),
    communications=(), surveys=(), prompts=(), training_threshold=0.8)


def goals(result: UnitResult) -> list[GoalResult]:
    return [GoalResult(PROGRAM.goals[0], "Portal", "share", {"u1": result})]


def training(completed: int, assigned: int = 10) -> TrainingMeasures:
    return TrainingMeasures({"u1": TrainingCell(assigned, completed)}, {},
                            {"u1": ("m1",), "u2": ("m1",)})


SIGNED = [SignOff("p", "wave-2", "bo", AS_OF, "pilot looks good")]


class TestEvaluateGate:
    def test_open_when_goal_met_training_done_and_signed(self):
        gate = evaluate_gate(PROGRAM, "wave-2", goals(unit_result(0.55, [0.5])),
                             training(8), SIGNED, AS_OF)
        assert gate.open and gate.previous == "pilot"
        assert [c.check for c in gate.conditions] == ["goal", "training", "signoff"]
        assert "now 55%" in gate.conditions[0].text and "met" in gate.conditions[0].text
        assert "8/10 complete (80%, at or above the 80% threshold" in gate.conditions[1].text
        assert "pilot looks good" in gate.conditions[2].text

    def test_open_when_trending(self):
        gate = evaluate_gate(PROGRAM, "wave-2", goals(unit_result(0.40, [0.30, 0.36, 0.40])),
                             training(9), SIGNED, AS_OF)
        assert gate.open and "trending to target" in gate.conditions[0].text

    def test_closed_with_a_reason_per_failed_condition(self):
        gate = evaluate_gate(PROGRAM, "wave-2", goals(unit_result(0.25, [0.3, 0.2, 0.25])),
                             training(7), [], AS_OF)
        assert not gate.open
        failed = [c.text for c in gate.conditions if not c.ok]
        assert len(failed) == 3
        assert "not met, not trending" in failed[0]
        assert "7/10 complete (70%, below the 80% threshold" in failed[1]
        assert "sign-off by bo (Bo, Field): missing" in failed[2]

    def test_no_tickets_since_go_live_closes_the_gate(self):
        gate = evaluate_gate(PROGRAM, "wave-2", goals(unit_result(None, [], unknown="no tickets")),
                             training(10), SIGNED, AS_OF)
        assert not gate.open
        assert gate.conditions[0].text.endswith(": unknown, counted as not met (no tickets)")

    def test_an_unknown_value_past_the_target_is_not_met(self):
        """55% is past the 50% target, but on too few tickets: the gate stays closed and
        says so with the sample."""
        why = "only 12 ticket(s) since go-live; at least 20 needed (min_sample)"
        gate = evaluate_gate(PROGRAM, "wave-2", goals(unit_result(0.55, [0.5], unknown=why)),
                             training(10), SIGNED, AS_OF)
        assert not gate.open and not gate.conditions[0].ok
        assert f"unknown, counted as not met ({why})" in gate.conditions[0].text

    def test_training_not_assigned_closes_the_gate(self):
        gate = evaluate_gate(PROGRAM, "wave-2", goals(unit_result(0.6, [])), training(0, 0),
                             SIGNED, AS_OF)
        assert not gate.open and "not assigned yet" in gate.conditions[1].text

    def test_pilot_checks_only_signoffs(self):
        gate = evaluate_gate(PROGRAM, "pilot", [], training(0, 0), [], AS_OF)
        assert gate.previous is None
        assert [(c.check, c.ok) for c in gate.conditions] == [("signoff", False)]
        signed = [SignOff("p", "pilot", "ann", AS_OF, "")]
        assert evaluate_gate(PROGRAM, "pilot", [], training(0, 0), signed, AS_OF).open


# -- the commands, on the demo's data --------------------------------------------------------


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("demo-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ITSM_CHANGE_HOME", str(home))
        mp.delenv("ITSM_CHANGE_DB", raising=False)
        mp.delenv("ITSM_CHANGE_SANDBOX_DB", raising=False)
        result = CliRunner().invoke(cli, ["demo", "--weeks", "10"])
        assert result.exit_code == 0, result.output
    return home


@pytest.fixture
def run(demo_home, tmp_path, monkeypatch):
    home = tmp_path / "demo"
    shutil.copytree(demo_home, home)
    monkeypatch.setenv("ITSM_CHANGE_HOME", str(home))

    def invoke(*args: str):
        return CliRunner().invoke(cli, [str(a) for a in args])
    return invoke


class TestGateCommand:
    def test_closed_until_the_alliance_signs_then_open(self, run):
        """After the demo the pilot met both goals with training done; wave-2 waits only for
        its two sign-offs."""
        closed = run("gate", EXAMPLE, "wave-2")
        assert closed.exit_code == 1, closed.output
        assert "CLOSED" in closed.output
        assert "[--] sign-off by priya-nair" in closed.output
        assert "[ok] goal portal-share for sd-tier1" in closed.output
        assert "[ok] training for sd-tier1: " in closed.output
        for member in ("priya-nair", "tom-becker"):
            signed = run("signoff", EXAMPLE, "wave-2", "--member", member, "--note", "ok")
            assert signed.exit_code == 0 and "Recorded" in signed.output
        opened = run("gate", EXAMPLE, "wave-2")
        assert opened.exit_code == 0, opened.output
        assert "OPEN" in opened.output and "[--]" not in opened.output

    def test_pilot_gate_checks_only_signoffs(self, run):
        result = run("gate", EXAMPLE, "pilot")
        assert result.exit_code == 0, "the demo's pilot manager signed it off up front"
        assert "goal" not in result.output.split("note:")[0].replace("(first wave)", "")
        assert "[ok] sign-off by dana-reyes (Dana Reyes, Service Desk): signed" in result.output

    def test_unknown_wave_is_bad_input(self, run):
        result = run("gate", EXAMPLE, "wave-9")
        assert result.exit_code == 2 and "no wave 'wave-9'" in result.output


class TestSignoffCommand:
    def test_signing_again_is_reported_not_duplicated(self, run, demo_home):
        first = run("signoff", EXAMPLE, "wave-2", "--member", "priya-nair")
        assert first.exit_code == 0 and "already" not in first.output
        again = run("signoff", EXAMPLE, "wave-2", "--member", "priya-nair")
        assert again.exit_code == 0 and "already" in again.output
        gate = run("gate", EXAMPLE, "wave-2")
        assert gate.output.count("sign-off by priya-nair") == 1
        assert "[ok] sign-off by priya-nair" in gate.output

    @pytest.mark.parametrize(("args", "message"), [
        (("wave-2", "--member", "nobody"), "no alliance member 'nobody'"),
        (("wave-9", "--member", "dana-reyes"), "no wave 'wave-9'"),
        (("wave-2", "--member", "dana-reyes"), "dana-reyes does not sign wave-2 off"),
    ], ids=["unknown-member", "unknown-wave", "not-their-wave"])
    def test_bad_input_exits_2(self, run, args, message):
        result = run("signoff", EXAMPLE, *args)
        assert result.exit_code == 2 and message in result.output
