"""Reads: search paging, incremental streams, safe JQL, comments, groups, tickets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from itsm_change_sdk.model import Effect, EffectKind, TicketFilter, Unit

T0 = datetime(2025, 6, 1, 8, 0, tzinfo=UTC)


def search_calls(double):
    return [r for r in double.requests_log if r[1].startswith("/rest/api/3/search")]


class TestSearch:
    def test_pages_follow_next_page_token_and_never_the_removed_endpoint(self, platform,
                                                                           double):
        for i in range(7):
            double.add_ticket(title=f"T{i}", opened_at=T0 + timedelta(minutes=i))
        double.set_page_size(3)
        tickets = list(platform.itsm_change_stream_tickets(since=None))
        assert [t.title for t in tickets] == [f"T{i}" for i in range(7)]
        calls = search_calls(double)
        assert {c[1] for c in calls} == {"/rest/api/3/search/jql"}
        assert len(calls) == 3
        assert "nextPageToken" not in calls[0][2] and calls[1][2]["nextPageToken"]
        assert all(c[2]["fields"] and "summary" in c[2]["fields"] for c in calls)
        assert all("project in" in c[2]["jql"] for c in calls)

    def test_stream_is_lazy(self, platform, double):
        for i in range(5):
            double.add_ticket(title=f"T{i}", opened_at=T0 + timedelta(minutes=i))
        double.set_page_size(2)
        stream = platform.itsm_change_stream_tickets(since=None)
        next(iter(stream))
        assert len(search_calls(double)) == 1

    def test_incremental_overlaps_a_minute_and_drops_what_was_seen(self, platform, double):
        double.add_ticket(title="old", opened_at=T0)
        double.add_ticket(title="same-minute", opened_at=T0 + timedelta(seconds=40))
        double.add_ticket(title="new", opened_at=T0 + timedelta(minutes=5))
        since = T0 + timedelta(seconds=30)
        titles = [t.title for t in platform.itsm_change_stream_tickets(since=since)]
        assert titles == ["same-minute", "new"]
        assert '"2025-06-01 07:59"' in search_calls(double)[-1][2]["jql"]

    def test_date_literal_is_in_the_accounts_time_zone(self, make_platform, double):
        double.timezone = "Australia/Sydney"
        double.add_ticket(title="late", opened_at=T0 + timedelta(hours=1))
        platform = make_platform()
        titles = [t.title for t in platform.itsm_change_stream_tickets(since=T0)]
        assert titles == ["late"]
        assert '"2025-06-01 17:59"' in search_calls(double)[-1][2]["jql"]

    def test_hostile_filter_value_cannot_reach_another_project(self, platform, double):
        double._new_issue("SECRET", {"summary": "payroll", "issuetype": {"name": "Incident"},
                                     "labels": ["y"]})
        double.add_ticket(title="mine", opened_at=T0)
        hostile = TicketFilter(kinds=('x" OR project = SECRET OR labels = "y',))
        assert list(platform.itsm_change_find_tickets(filter=hostile, since=None,
                                                      open_only=False)) == []
        backslash = TicketFilter(kinds=('x\\" OR project = SECRET OR labels = "y\\',))
        assert list(platform.itsm_change_find_tickets(filter=backslash, since=None,
                                                      open_only=False)) == []
        assert not any(key.startswith("SECRET-") for key in double.hits)

    def test_filter_and_mapping(self, platform, double):
        double.add_ticket(title="a", opened_at=T0, kind="incident", category="Network",
                          channel="email")
        double.add_ticket(title="b", opened_at=T0, kind="incident", channel="portal")
        found = list(platform.itsm_change_find_tickets(
            filter=TicketFilter(kinds=("incident",), channels=("email",)), since=None,
            open_only=True))
        assert [(t.title, t.category, t.channel, t.state, t.kind) for t in found] == [
            ("a", "Network", "email", "open", "incident")]

    def test_a_prompt_on_a_found_ticket_rereads_nothing(self, platform, double):
        """The search returns each issue's project type, so a JSM note costs one request:
        the comment, carrying its correlation property; no re-read of the issue."""
        for i in range(3):
            double.add_ticket(title=f"T{i}", opened_at=T0 + timedelta(minutes=i))
        found = list(platform.itsm_change_find_tickets(filter=TicketFilter(), since=None,
                                                       open_only=True))
        start = len(double.requests_log)
        effects = [Effect(key=f"chg:p:prompt:reset:jira:{t.id}", kind=EffectKind.PROMPT,
                          platform="jira", program="p", title="Reset",
                          body="Point the caller to self-service reset.",
                          channel="ticket_note", ticket_id=t.id) for t in found]
        results = platform.itsm_change_post_prompts(effects=effects, known={})
        assert all(r.ok for r in results)
        calls = [(m, p) for m, p, _ in double.requests_log[start:]]
        assert not [c for c in calls if c[0] == "GET"], "no per-ticket re-read"
        assert sorted(calls) == sorted(("POST", f"/rest/api/3/issue/{t.id}/comment")
                                       for t in found)

    def test_get_ticket_missing_is_none(self, platform, double):
        ticket = double.add_ticket(title="a", opened_at=T0)
        assert platform.itsm_change_get_ticket(ticket_id=ticket.number).id == ticket.id
        assert platform.itsm_change_get_ticket(ticket_id="HELP-999") is None


class TestComments:
    def test_marked_comments_after_since(self, platform, double):
        person = double.add_person("Ann", "ann@example.com")
        ticket = double.add_ticket(title="a", opened_at=T0)
        double.add_comment(ticket.id, person, "#feedback A4 D3 great", T0 + timedelta(hours=1))
        double.add_comment(ticket.id, person, "no marker here", T0 + timedelta(hours=2))
        double.add_comment(ticket.id, person, "#feedback too early", T0 - timedelta(hours=1))
        found = list(platform.itsm_change_find_comments(marker="#feedback", since=T0))
        assert [c.text for c in found] == ["#feedback A4 D3 great"]
        assert found[0].author == person.id and found[0].ticket_id == ticket.id
        jql_sent = search_calls(double)[-1][2]["jql"]
        assert "comment ~" in jql_sent and "updated >=" in jql_sent

    def test_comments_are_paged(self, platform, double):
        person = double.add_person("Ann", "ann@example.com")
        ticket = double.add_ticket(title="a", opened_at=T0)
        for i in range(5):
            double.add_comment(ticket.id, person, f"#feedback {i}", T0 + timedelta(minutes=i))
        double.set_page_size(2)
        assert len(list(platform.itsm_change_find_comments(marker="#feedback", since=None))) == 5


class TestUnitMembers:
    def test_group_name_is_resolved_and_paged(self, platform, double):
        people = [double.add_person(f"P{i}", f"p{i}@example.com") for i in range(5)]
        extra = double.add_person("Lead", "lead@example.com")
        group = double.add_group("service-desk", people)
        double.add_group("service-desk-admins", [extra])
        double.set_page_size(2)
        unit = Unit(id="sd", title="SD", wave="pilot", platform="jira", group=group,
                    members=(extra.id,))
        members = platform.itsm_change_unit_members(unit=unit)
        assert {m.id for m in members} == {p.id for p in [*people, extra]}
        pages = [r for r in double.requests_log if r[1] == "/rest/api/3/group/member"]
        assert len(pages) == 3

    def test_unknown_group_is_a_configuration_error(self, platform):
        from itsm_change_sdk.errors import ConfigurationError

        with pytest.raises(ConfigurationError, match="no group named"):
            platform.itsm_change_unit_members(
                unit=Unit(id="x", title="X", wave="w", platform="jira", group="nope"))
