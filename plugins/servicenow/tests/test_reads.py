"""Tickets, comments, members: safe queries, stable pagination, oldest update first."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from itsm_change_servicenow.query import UnsafeQueryValue

from itsm_change_sdk.errors import AuthenticationError, RateLimited
from itsm_change_sdk.model import TicketFilter, Unit

T0 = datetime(2025, 2, 1, 8, tzinfo=UTC)


def at(hour):
    return T0.replace(hour=hour)


def queries(rsps, table):
    out = []
    for call in rsps.calls:
        parts = urlsplit(call.request.url)
        if parts.path.endswith(f"/table/{table}"):
            out.append({k: v[0] for k, v in parse_qs(parts.query).items()})
    return out


class TestFindTickets:
    def test_a_unit_named_by_group_sys_id_owns_its_tickets(self, platform, double):
        """The README lets a unit give its group by sys_id; its tickets carry that id beside
        the group's name, so they are the unit's (prompts, per-unit metrics)."""
        sys_id = double.add_group_id("Service Desk")
        double.add_ticket(title="mine", opened_at=at(9), group="Service Desk")
        double.add_ticket(title="theirs", opened_at=at(10), group="Network")
        by_id = Unit("sd", "Service Desk", "pilot", "servicenow", group=sys_id)
        owned = [t.title for t in platform.itsm_change_stream_tickets(since=None)
                 if by_id.owns_ticket_group(t.group, t.group_id)]
        assert owned == ["mine"]

    def test_filter_maps_to_fields_and_results_come_oldest_first(self, platform, double, rsps):
        double.add_ticket(title="old", opened_at=at(9), category="network", group="Desk")
        double.add_ticket(title="other", opened_at=at(10), category="hardware", group="Desk")
        double.add_ticket(title="new", opened_at=at(11), category="Network", group="Desk")
        double.add_ticket(title="email", opened_at=at(12), category="network", group="Desk",
                          channel="email")

        found = list(platform.itsm_change_find_tickets(
            TicketFilter(kinds=("incident",), categories=("network",), groups=("desk",),
                         channels=("portal",)), since=at(8), open_only=True))

        assert [t.title for t in found] == ["old", "new"]
        assert found[0].group == "Desk" and found[0].channel == "portal"
        (sent,) = queries(rsps, "incident")
        assert sent["sysparm_query"] == (
            "sys_updated_on>2025-02-01 08:00:00^active=true^categoryINnetwork"
            "^assignment_group.nameINdesk^contact_typeINself-service"
            "^ORDERBYsys_updated_on^ORDERBYsys_id")
        assert sent["sysparm_display_value"] == "all"
        assert sent["sysparm_exclude_reference_link"] == "true"

    @pytest.mark.parametrize("hostile", [
        "network^NQactive=true", "network^ORcategory!=x", "javascript:gs.getUserID()",
        "a\nb"], ids=["NQ", "OR", "javascript", "newline"])
    def test_a_hostile_value_never_widens_the_query(self, platform, double, rsps, hostile):
        double.add_ticket(title="secret", opened_at=at(9), category="hr")
        with pytest.raises(UnsafeQueryValue):
            list(platform.itsm_change_find_tickets(
                TicketFilter(categories=(hostile,)), since=None, open_only=False))
        assert queries(rsps, "incident") == []

    def test_comma_in_a_value_uses_or_instead_of_in(self, platform, double, rsps):
        double.add_ticket(title="a", opened_at=at(9), category="x,y")
        double.add_ticket(title="b", opened_at=at(10), category="x")
        found = list(platform.itsm_change_find_tickets(
            TicketFilter(kinds=("incident",), categories=("x,y",)), None, False))
        assert [t.title for t in found] == ["a"]

    def test_stream_pages_through_every_table(self, platform, double, rsps):
        double.set_page_size(2)
        for hour in range(9, 14):
            double.add_ticket(title=f"i{hour}", opened_at=at(hour))
        double.add_ticket(title="chg", opened_at=at(10).replace(minute=30), kind="change")

        found = list(platform.itsm_change_stream_tickets(since=None))

        assert [t.title for t in found] == ["i9", "i10", "chg", "i11", "i12", "i13"]
        assert len(queries(rsps, "incident")) == 3
        assert {t.kind for t in found} == {"incident", "change"}

    def test_ticket_state_map(self, platform, double):
        ticket = double.add_ticket(title="done", opened_at=at(9), state="6",
                                   resolved_at="2025-02-01 12:00:00")
        got = platform.itsm_change_get_ticket(ticket.number)
        assert got.state == "resolved" and got.resolved_at == at(12)
        double.tables["incident"][ticket.id].update(state="7", active="false")
        assert platform.itsm_change_get_ticket(ticket.id).state == "closed"
        assert platform.itsm_change_get_ticket("INC9999999") is None
        assert platform.itsm_change_get_ticket("INC1^NQactive=true") is None


class TestFindComments:
    def test_marked_comments_after_since_with_author_ids(self, platform, double):
        alice = double.add_person("Alice", "alice@example.com")
        ticket = double.add_ticket(title="t", opened_at=at(8))
        double.add_comment(ticket.id, alice, "#feedback awareness=4", at(9))
        double.add_comment(ticket.id, alice, "no marker here", at(10))
        double.add_comment(ticket.id, alice, "#feedback desire=2", at(11), internal=True)

        found = list(platform.itsm_change_find_comments("#feedback", at(9)))

        assert [c.text for c in found] == ["#feedback desire=2"]
        assert found[0].author == alice.id and found[0].internal
        assert found[0].ticket_id == ticket.id
        assert len(list(platform.itsm_change_find_comments("#feedback", None))) == 2


class TestUnitMembers:
    def test_group_by_name_plus_explicit_members(self, platform, double):
        a, b, c = (double.add_person(n, f"{n}@example.com") for n in ("ann", "bob", "cy"))
        double.add_group("Service Desk", [a, b])
        double.tables["sys_user"][b.id]["active"] = "false"
        unit = Unit(id="desk", title="Desk", wave="pilot", platform="servicenow",
                    group="Service Desk", members=(c.id,))
        members = platform.itsm_change_unit_members(unit)
        assert sorted(p.name for p in members) == ["ann", "cy"]
        assert {p.email for p in members} == {"ann@example.com", "cy@example.com"}


class TestErrors:
    def test_429_waits_for_retry_after_then_succeeds(self, platform, double):
        waits = []
        platform.transport.policy.sleep = waits.append
        platform.transport.policy.max_wait = 60
        double.throttle.append(7)
        double.add_ticket(title="t", opened_at=at(9))
        assert len(list(platform.itsm_change_stream_tickets(None))) == 1
        assert waits == [7.0]

    def test_rate_limit_gives_up_with_retry_after(self, platform, double):
        double.throttle.extend([3] * 30)  # more than the 429s one call waits out
        with pytest.raises(RateLimited) as info:
            list(platform.itsm_change_stream_tickets(None))
        assert info.value.retry_after == 3.0

    def test_401_carries_servicenow_message_without_the_password(self, platform, double):
        double.errors.append((401, {"error": {"message": "User Not Authenticated",
                                              "detail": "Required to provide Auth information"},
                                    "status": "failure"}))
        with pytest.raises(AuthenticationError) as info:
            list(platform.itsm_change_stream_tickets(None))
        text = str(info.value) + repr(info.value) + info.value.body
        assert "User Not Authenticated" in text
        assert "s3cret-Passw0rd" not in text and "s3cret-Passw0rd" not in repr(platform)
