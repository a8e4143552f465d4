"""Prompt and goal filters checked against the site before ``sync``: a kind that is not an
issue type would make Jira refuse the whole search; a filter on groups needs group_field."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from itsm_change_sdk.model import CheckStatus, Prompt, TicketFilter
from itsm_change_sdk.testing.contract import _prompt_program

T0 = datetime(2027, 1, 11, 9, tzinfo=UTC)


def prompt(ident: str, **filter_values: tuple[str, ...]) -> Prompt:
    return Prompt(ident, ident.title(), TicketFilter(**filter_values), "Text.",
                  T0 - timedelta(days=1), T0 + timedelta(days=30))


def program_with(*prompts: Prompt):
    return replace(_prompt_program("jira"), prompts=prompts)


def flagged(checks):
    return [c for c in checks if c.status is not CheckStatus.OK]


class TestCheckFilters:
    def test_a_kind_that_is_no_issue_type_fails_with_the_closest_types(self, platform, double):
        double.add_ticket(title="VPN", opened_at=T0, category="network")
        checks = platform.itsm_change_check_filters(program=program_with(
            prompt("generic", kinds=("request",)), prompt("fine", kinds=("incident",))))
        (bad,) = flagged(checks)
        assert bad.status is CheckStatus.FAIL
        assert "prompt 'generic'" in bad.message and "'request'" in bad.message
        assert "refuses the whole search" in bad.message
        assert "'Service Request'" in (bad.fix or "")

    def test_a_category_that_is_no_component_warns(self, platform, double):
        double.add_ticket(title="VPN", opened_at=T0, category="network")
        checks = platform.itsm_change_check_filters(program=program_with(
            prompt("typo", categories=("netwrok",)), prompt("fine", categories=("Network",))))
        (bad,) = flagged(checks)
        assert bad.status is CheckStatus.WARN and "prompt 'typo'" in bad.message
        assert "'network'" in (bad.fix or "")

    def test_groups_without_group_field_fail(self, make_platform, double):
        platform = make_platform(group_field="")
        checks = platform.itsm_change_check_filters(program=program_with(
            prompt("desk", groups=("Service Desk Tier 1",))))
        messages = " ".join(c.message for c in flagged(checks))
        assert "prompt 'desk': filters on groups, but no group_field is set" in messages
        assert "no unit owns a ticket" in messages

    def test_all_well_is_one_ok_line(self, platform, double):
        double.add_ticket(title="VPN", opened_at=T0, category="password reset")
        checks = platform.itsm_change_check_filters(program=_prompt_program("jira"))
        assert [c.status for c in checks] == [CheckStatus.OK]
