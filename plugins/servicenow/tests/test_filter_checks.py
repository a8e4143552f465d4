"""Categories by value and by label: a filter may name "Inquiry / Help" or ``inquiry``; both
find the same tickets, and ``validate --platform`` says which is stored and suggests the
closest choices for one that is neither."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from itsm_change_sdk.model import CheckStatus, Goal, Prompt, TicketFilter
from itsm_change_sdk.testing.contract import _prompt_program

T0 = datetime(2027, 1, 11, 9, tzinfo=UTC)


def prompt(ident: str, **filter_values: tuple[str, ...]) -> Prompt:
    return Prompt(ident, ident.title(), TicketFilter(**filter_values), "Text.",
                  T0 - timedelta(days=1), T0 + timedelta(days=30))


def flagged(checks):
    return [c for c in checks if c.status is not CheckStatus.OK]


class TestCategoryLabels:
    def test_a_label_finds_the_tickets_its_value_does(self, platform, double):
        double.add_ticket(title="Question", opened_at=T0, category="inquiry")
        double.add_ticket(title="Broken", opened_at=T0, category="hardware")
        by_label = list(platform.itsm_change_find_tickets(
            TicketFilter(categories=("Inquiry / Help",)), since=None, open_only=True))
        by_value = list(platform.itsm_change_find_tickets(
            TicketFilter(categories=("inquiry",)), since=None, open_only=True))
        assert [t.title for t in by_label] == [t.title for t in by_value] == ["Question"]


class TestCheckFilters:
    def test_label_warns_unknown_fails_with_closest_choices(self, platform, double):
        double.add_ticket(title="Question", opened_at=T0, category="inquiry")
        program = replace(_prompt_program("servicenow"), prompts=(
            prompt("label", categories=("Inquiry / Help",)),
            prompt("value", categories=("inquiry",)),
            prompt("typo", categories=("inqiury",)),
            prompt("kind", kinds=("problem",))))
        checks = platform.itsm_change_check_filters(program=program)
        by_prompt = {c.message.split(":")[0]: c for c in flagged(checks)}
        assert set(by_prompt) == {"prompt 'label'", "prompt 'typo'", "prompt 'kind'"}
        label = by_prompt["prompt 'label'"]
        assert label.status is CheckStatus.WARN
        assert "label of the value 'inquiry'" in label.message and "[inquiry]" in label.fix
        typo = by_prompt["prompt 'typo'"]
        assert typo.status is CheckStatus.FAIL and "'inquiry'" in typo.fix
        assert by_prompt["prompt 'kind'"].status is CheckStatus.FAIL

    def test_a_label_in_a_goal_fails_goals_compare_stored_values(self, platform, double):
        double.add_ticket(title="Question", opened_at=T0, category="inquiry")
        goal = Goal("asks", "Questions", "volume", 10.0, 5.0,
                    filter=TicketFilter(categories=("Inquiry / Help",)))
        program = replace(_prompt_program("servicenow"), goals=(goal,), prompts=())
        (bad,) = flagged(platform.itsm_change_check_filters(program=program))
        assert bad.status is CheckStatus.FAIL and "goal 'asks'" in bad.message
        assert "[inquiry]" in bad.fix
