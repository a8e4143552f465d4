"""Reading tickets: the stream, the filter query, comments and CSAT."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from itsm_change_freshservice.mapping import key_tag
from itsm_change_freshservice.query import MAX_QUERY, tag_queries

from itsm_change_sdk.errors import InvalidRequest
from itsm_change_sdk.model import Program, Survey, TicketFilter

NOW = datetime.now(UTC).replace(microsecond=0)


def params(request):
    return {k: v[0] for k, v in parse_qs(urlsplit(request.url).query).items()}


class TestStreamTickets:
    def test_every_list_call_carries_updated_since_and_ascending_order(self, platform, fake):
        fake.add_ticket(title="Old", opened_at=NOW - timedelta(days=90))
        fake.add_ticket(title="New", opened_at=NOW - timedelta(days=1))
        fake.set_page_size(1)
        titles = [t.title for t in platform.itsm_change_stream_tickets(None)]
        assert titles == ["Old", "New"], "tickets older than 30 days are still read"
        calls = fake.calls("GET", "/api/v2/tickets")
        assert len(calls) == 2, "followed the Link header"
        for call in calls:
            query = params(call)
            assert "updated_since" in query and query["order_type"] == "asc"
            assert query["per_page"] == "100"

    def test_incremental_read_and_mapping(self, platform, fake):
        fake.add_group("Service Desk", [])
        fake.add_ticket(title="Before", opened_at=NOW - timedelta(hours=5))
        fake.add_ticket(title="After", opened_at=NOW - timedelta(hours=1), channel="phone",
                        group="Service Desk", category="Hardware")
        [ticket] = list(platform.itsm_change_stream_tickets(NOW - timedelta(hours=2)))
        assert (ticket.title, ticket.channel, ticket.group, ticket.category) == (
            "After", "phone", "Service Desk", "Hardware")
        assert ticket.state == "open" and ticket.priority == "medium"
        assert ticket.number == f"#INC-{ticket.id}"
        assert params(fake.calls("GET", "/api/v2/tickets")[0])["updated_since"] == _ts(
            NOW - timedelta(hours=2))

    def test_the_plugins_own_tickets_are_left_out_of_metrics(self, platform, fake):
        alice = fake.add_person("Alice Smith", "alice@acme.example")
        from itsm_change_sdk.model import Effect, EffectKind

        platform.itsm_change_publish_training([Effect(
            key="chg:p:training:m:1", kind=EffectKind.TRAINING, platform="freshservice",
            program="p", title="T", body="B", channel="task", recipient=alice)], {})
        fake.add_ticket(title="Real", opened_at=NOW)
        assert [t.title for t in platform.itsm_change_stream_tickets(None)] == ["Real"]

    def test_source_codes_map_to_channel_names(self, platform, fake):
        for channel in ("email", "portal", "chat", "walkup", "slack"):
            fake.add_ticket(title=channel, opened_at=NOW, channel=channel)
        assert {t.title: t.channel for t in platform.itsm_change_stream_tickets(None)} == {
            c: c for c in ("email", "portal", "chat", "walkup", "slack")}

    def test_page_size_setting_above_100_is_refused(self, make_platform):
        import pytest

        from itsm_change_sdk.errors import ConfigurationError

        with pytest.raises(ConfigurationError):
            make_platform(page_size=500)


def _ts(value):
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


class TestFindTickets:
    def test_filter_query_narrows_by_group_id_and_quoted_category(self, platform, fake):
        fake.add_group("Service Desk", [])
        fake.add_ticket(title="Match", opened_at=NOW, group="Service Desk", category="Access")
        fake.add_ticket(title="Other", opened_at=NOW, group="Service Desk", category="Network")
        found = list(platform.itsm_change_find_tickets(
            TicketFilter(groups=("service desk",), categories=("Access",)), None, True))
        assert [t.title for t in found] == ["Match"]
        query = params(fake.calls("GET", "/api/v2/tickets/filter")[0])["query"]
        group_id = next(iter(fake.groups))
        assert query == f"\"group_id:{group_id} AND category:'Access' AND (status:2 OR status:3)\""

    def test_a_hostile_value_never_reaches_the_query(self, platform, fake):
        fake.add_group("Service Desk", [])
        fake.add_ticket(title="Urgent one", opened_at=NOW, group="Service Desk",
                        category="Network")
        fake.add_ticket(title="Target", opened_at=NOW, group="Service Desk",
                        category="x' OR priority:2 OR category:'y")
        hostile = "x' OR priority:2 OR category:'y"
        found = list(platform.itsm_change_find_tickets(
            TicketFilter(groups=("Service Desk",), categories=(hostile,)), None, False))
        assert [t.title for t in found] == ["Target"]
        for call in fake.calls("GET", "/api/v2/tickets/filter"):
            assert "priority" not in params(call)["query"]
            assert "'y" not in params(call)["query"]

    def test_hostile_group_name_matches_nothing(self, platform, fake):
        fake.add_group("Service Desk", [])
        fake.add_ticket(title="A", opened_at=NOW, group="Service Desk")
        hostile = "Service Desk' OR group_id:1 OR x:'"
        assert list(platform.itsm_change_find_tickets(
            TicketFilter(groups=(hostile,)), None, False)) == []
        assert not fake.calls("GET", "/api/v2/tickets/filter")

    def test_filter_pages_by_page_number_until_total(self, platform, fake):
        fake.add_group("Service Desk", [])
        for n in range(35):
            fake.add_ticket(title=f"T{n}", opened_at=NOW - timedelta(minutes=n),
                            group="Service Desk")
        found = list(platform.itsm_change_find_tickets(
            TicketFilter(groups=("Service Desk",)), None, False))
        assert len(found) == 35
        assert [params(c)["page"] for c in fake.calls("GET", "/api/v2/tickets/filter")] == [
            "1", "2"]
        assert [t.updated_at for t in found] == sorted(t.updated_at for t in found)

    def test_more_matches_than_ten_filter_pages_are_read_by_update_day(self, platform, fake):
        """The filter endpoint stops at page 10 (300 tickets); more matches are read in
        windows of update days, every ticket once, never through the whole ticket list."""
        start = datetime(2027, 1, 4, 9, tzinfo=UTC)
        for i in range(400):
            fake.add_ticket(title=f"reset {i}", category="password reset",
                            opened_at=start + timedelta(hours=i % 96, seconds=i))
        found = list(platform.itsm_change_find_tickets(
            filter=TicketFilter(categories=("password reset",)),
            since=start - timedelta(days=1), open_only=True))
        assert sorted(t.title for t in found) == sorted(f"reset {i}" for i in range(400))
        pages = [int(parse_qs(urlsplit(r.url).query)["page"][0])
                 for r in fake.calls("GET", "/api/v2/tickets/filter")]
        assert max(pages) <= 10
        assert fake.calls("GET", "/api/v2/tickets") == [], "no fall-back to the full list"

    def test_more_matches_on_one_day_than_ten_pages_are_read_from_that_days_list(
            self, platform, fake):
        """The filter query has no finer time than a day: a day with more than 300 matches
        is read through the ticket list from that day, every match once."""
        start = datetime(2027, 1, 4, 9, tzinfo=UTC)
        fake.add_ticket(title="reset earlier", category="password reset",
                        opened_at=start - timedelta(days=20))
        for i in range(310):
            fake.add_ticket(title=f"reset {i}", category="password reset",
                            opened_at=start + timedelta(seconds=i))
        fake.add_ticket(title="hardware", category="hardware", opened_at=start)
        found = list(platform.itsm_change_find_tickets(
            filter=TicketFilter(categories=("password reset",)),
            since=start - timedelta(days=1), open_only=True))
        assert sorted(t.title for t in found) == sorted(f"reset {i}" for i in range(310))
        lists = fake.calls("GET", "/api/v2/tickets")
        assert lists and {params(c)["updated_since"] for c in lists} == {"2027-01-04T00:00:00Z"}

    def test_a_rejected_filter_query_fails_with_freshservice_words_and_reads_no_list(
            self, platform, fake):
        fake.add_group("Service Desk", [])
        fake.add_ticket(title="A", opened_at=NOW, group="Service Desk")
        fake.queue("GET", "/api/v2/tickets/filter", 400, {
            "description": "Validation failed",
            "errors": [{"field": "query", "message": "Invalid filter query format",
                        "code": "invalid_value"}]})
        with pytest.raises(InvalidRequest, match="Invalid filter query format"):
            list(platform.itsm_change_find_tickets(
                TicketFilter(groups=("Service Desk",)), None, False))
        assert fake.calls("GET", "/api/v2/tickets") == []

    def test_get_ticket_accepts_display_ids(self, platform, fake):
        ticket = fake.add_ticket(title="A", opened_at=NOW)
        assert platform.itsm_change_get_ticket(f"#INC-{ticket.id}").title == "A"
        assert platform.itsm_change_get_ticket("999999") is None


class TestComments:
    def test_marked_notes_after_since_are_found_and_our_own_notes_are_not(self, platform,
                                                                          fake):
        alice = fake.add_person("Alice Smith", "alice@acme.example")
        ticket = fake.add_ticket(title="A", opened_at=NOW - timedelta(hours=3))
        fake.add_comment(ticket.id, alice, "#feedback old", NOW - timedelta(hours=2))
        fake.add_comment(ticket.id, alice, "#feedback awareness=4 great", NOW)
        fake.add_comment(ticket.id, alice, "unrelated", NOW)
        from itsm_change_sdk.model import Effect, EffectKind

        platform.itsm_change_post_prompts([Effect(
            key="chg:p:prompt:x:1", kind=EffectKind.PROMPT, platform="freshservice",
            program="p", title="", body="Reply with #feedback", channel="ticket_note",
            ticket_id=ticket.id)], {})
        found = list(platform.itsm_change_find_comments("#feedback", NOW - timedelta(hours=1)))
        assert [c.text for c in found] == ["#feedback awareness=4 great"]
        assert found[0].author == alice.id and found[0].ticket_id == ticket.id


class TestSurveyAnswers:
    def test_csat_answers_on_resolved_feedback_tickets(self, platform, fake):
        from itsm_change_sdk.model import Effect, EffectKind

        bob = fake.add_person("Bob Jones", "bob@acme.example")
        [result] = platform.itsm_change_request_feedback([Effect(
            key="chg:p:feedback_request:pulse:bob", kind=EffectKind.FEEDBACK_REQUEST,
            platform="freshservice", program="p", title="Pulse", body="Tell us",
            channel="task", recipient=bob)], {})
        tid = int(result.ref.remote_id.split(":")[1])
        fake.complete_task(result.ref, NOW)
        fake.csat[tid] = {"id": 77, "overall_rating": 1, "created_at": _ts(NOW),
                          "questionnaire_responses": [
                              {"question": {"question_text": "Rate your awareness (1-5)"},
                               "answers": [{"answer_text": "4"}]}],
                          "opinion": "Good so far"}
        program = Program(id="p", title="P", platforms=("freshservice",), goals=(), waves=(),
                          units=(), alliance=(), training=(), communications=(),
                          surveys=(Survey(id="pulse", title="Pulse", question="How?"),),
                          prompts=())
        [answer] = platform.itsm_change_collect_survey_answers(program, None)
        assert answer.scores == {"awareness": 4} and answer.text == "Good so far"
        assert answer.id == "csat:77" and answer.source == "survey"


def test_key_tags_are_batched_under_the_query_limit():
    tags = [key_tag(f"chg:p:training:m:freshservice:{i}") for i in range(40)]
    batches = tag_queries(tags)
    assert len(batches) > 1
    assert [t for batch, _ in batches for t in batch] == tags
    assert all(len(query) <= MAX_QUERY and query.count("tag:'") == len(batch)
               for batch, query in batches)
    with pytest.raises(ValueError):
        tag_queries(["itsm-k-abc' OR status:2"])
