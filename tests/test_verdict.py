"""The verdict block: what the report says first, against hand-computed expectations."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from itsm_change_sdk.metrics import GoalResult, UnitResult
from itsm_change_sdk.model import Goal, Program, Unit, Wave
from itsm_change_sdk.report.gates import Condition, GateResult
from itsm_change_sdk.report.measures import FeedbackMeasures, TextAnswer, UnitFeedback
from itsm_change_sdk.report.verdict import GoalStanding, verdict

AS_OF = datetime(2027, 2, 20, tzinfo=UTC)
DIMS = ("awareness", "desire", "knowledge", "ability", "reinforcement")
PROGRAM = Program(
    id="p", title="P", platforms=("sandbox",),
    goals=(Goal("share", "Portal share", "channel_share", 0.2, 0.5),
           Goal("mttr", "Faster", "median_time_to_resolve", 30, 20)),
    waves=(Wave("pilot", "Pilot", date(2027, 1, 11), date(2027, 1, 18)),
           Wave("wave-2", "Wave 2", date(2027, 3, 1), date(2027, 3, 8))),
    units=(Unit("u1", "Desk", "pilot", "sandbox", group="Desk"),
           Unit("u3", "Desk 2", "pilot", "sandbox", group="Desk 2"),
           Unit("u2", "Field", "wave-2", "sandbox", group="Field")),
    alliance=(), training=(), communications=(), surveys=(), prompts=())


def texts(count: int) -> list[TextAnswer]:
    return [TextAnswer(AS_OF, f"text {i}", "survey", {}) for i in range(count)]


def goal_results() -> list[GoalResult]:
    share, mttr = PROGRAM.goals
    return [
        GoalResult(share, "Share", "share", {
            "u1": UnitResult("u1", 0.2, 0.5, True, current=0.55, current_count=40),
            "u2": UnitResult("u2", 0.2, 0.5, True, live=False, unknown="not live yet")}),
        GoalResult(mttr, "Median", "hours", {
            "u1": UnitResult("u1", 30, 20, False, current=None, current_count=30,
                             unknown="fewer than half of 30 tickets are known to be resolved")}),
    ]


def feedback() -> FeedbackMeasures:
    u1 = UnitFeedback("u1", averages={"awareness": 4.0, "desire": 3.0, "knowledge": 2.5,
                                      "ability": 2.5},
                      counts={"awareness": 2, "desire": 2, "knowledge": 2, "ability": 2},
                      texts={"ability": texts(2), "knowledge": texts(1)})
    u3 = UnitFeedback("u3", averages={"knowledge": 4.0, "ability": 2.0},
                      counts={"knowledge": 2, "ability": 6},
                      texts={"ability": texts(1), "no scores": texts(5)})
    u2 = UnitFeedback("u2", averages={"ability": 1.0}, counts={"ability": 10},
                      texts={"desire": texts(9)})
    return FeedbackMeasures({"u1": u1, "u3": u3, "u2": u2}, DIMS)


GATES = {
    "pilot": GateResult("pilot", None, [Condition("signoff", True, "signed")]),
    "wave-2": GateResult("wave-2", "pilot", [
        Condition("goal", True, "goal share for u1: met"),
        Condition("goal", False, "goal mttr for u1: unknown"),
        Condition("signoff", False, "sign-off by bo: missing")]),
}


@pytest.fixture
def found():
    return verdict(PROGRAM, goal_results(), GATES, feedback(), AS_OF)


def test_goals_of_live_units_only(found):
    """u2 goes live on 03-08, after the report's date: it is left out."""
    assert found.goals == [
        GoalStanding("share", "Portal share", "u1", "met", "55% (target 50%)", ""),
        GoalStanding("mttr", "Faster", "u1", "unknown", "- (target 20.0h)",
                     "fewer than half of 30 tickets are known to be resolved"),
    ]


def test_next_wave_gate_with_its_blocking_reasons(found):
    assert (found.next_wave, found.next_wave_starts, found.gate_open) == (
        "wave-2", "2027-03-01", False)
    assert found.blocking == ["goal mttr for u1: unknown", "sign-off by bo: missing"]


def test_weakest_dimension_over_live_units_weighted_by_answers(found):
    """ability: (2.5 x 2 + 2.0 x 6) / 8 = 2.125; knowledge: (2.5 x 2 + 4.0 x 2) / 4 = 3.25;
    u2's 1.0 is left out (not live)."""
    assert found.weakest == "ability"
    assert found.weakest_score == pytest.approx(2.125)


def test_most_frequent_feedback(found):
    """Live units' written answers by their writer's lowest dimension: ability 2 + 1,
    knowledge 1; answers without scores and u2's are left out -> ability, 3 of 4."""
    assert (found.frequent, found.frequent_count, found.frequent_total) == ("ability", 3, 4)


def test_every_wave_started():
    late = datetime(2027, 3, 2, tzinfo=UTC)
    assert verdict(PROGRAM, goal_results(), GATES, feedback(), late).next_wave is None
