"""Announcements, private notes, acknowledgement tickets, feedback requests and prompts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from itsm_change_sdk.errors import UnsupportedOperation
from itsm_change_sdk.model import Effect, EffectKind


def message(key, channel, **extra):
    base = dict(key=key, kind=EffectKind.MESSAGE, platform="freshservice",
                program="portal-rollout", title="Portal goes live", channel=channel,
                body="Go-live is Monday.\n\nUse <b>the portal</b> & tell us.")
    base.update(extra)
    return Effect(**base)


class TestAnnouncement:
    def test_announcement_goes_to_groups_resolved_by_name_with_escaped_body(self, platform,
                                                                           fake):
        alice = fake.add_person("Alice Smith", "alice@acme.example")
        fake.add_group("Service Desk", [alice])
        start = datetime.now(UTC) + timedelta(hours=1)
        effect = message("chg:p:message:kickoff:0", "announcement",
                         audience_groups=("service desk",), visible_from=start,
                         visible_until=start + timedelta(days=7))
        [result] = platform.itsm_change_deliver_communication([effect], {})
        assert result.ok and result.ref.remote_id.startswith("announcement:")
        payload = json.loads(fake.calls("POST", "/api/v2/announcements")[0].body)
        group_id = next(iter(fake.groups))
        assert payload["groups"] == [group_id]
        assert payload["visibility"] == "agents_and_groups"
        assert payload["visible_till"] == (start + timedelta(days=7)).strftime(
            "%Y-%m-%dT%H:%M:%SZ")
        assert "&lt;b&gt;the portal&lt;/b&gt; &amp; tell us." in payload["body_html"]
        [record] = fake.records(EffectKind.MESSAGE)
        assert record.audience_groups == ("Service Desk",)

    def test_known_announcement_is_updated_in_place(self, platform, fake):
        fake.add_group("Service Desk", [])
        effect = message("chg:p:message:kickoff:0", "announcement",
                         audience_groups=("Service Desk",))
        [first] = platform.itsm_change_deliver_communication([effect], {})
        changed = message("chg:p:message:kickoff:0", "announcement", title="New date",
                          audience_groups=("Service Desk",))
        [second] = platform.itsm_change_deliver_communication([changed], {changed.key: first.ref})
        assert second.ref == first.ref
        assert len(fake.announcements) == 1
        assert next(iter(fake.announcements.values()))["title"] == "New date"

    def test_unknown_group_fails_that_item(self, platform, fake):
        effect = message("chg:p:message:kickoff:0", "announcement", audience_groups=("Nope",))
        [result] = platform.itsm_change_deliver_communication([effect], {})
        assert not result.ok and "Nope" in result.error
        assert not fake.announcements

    def test_announcement_timeout_after_apply_is_found_again(self, platform, fake):
        fake.add_group("Service Desk", [])
        fake.fail_next_write(after_apply=True)
        effect = message("chg:p:message:kickoff:0", "announcement",
                         audience_groups=("Service Desk",))
        [result] = platform.itsm_change_deliver_communication([effect], {})
        assert result.ok and len(fake.announcements) == 1


class TestTicketNote:
    def test_private_note_on_a_ticket_named_by_its_display_id(self, platform, fake):
        ticket = fake.add_ticket(title="Tracking", opened_at=datetime.now(UTC))
        effect = message("chg:p:message:note:0", "ticket_note", ticket_id=f"#INC-{ticket.id}")
        [result] = platform.itsm_change_deliver_communication([effect], {})
        assert result.ok and result.ref.remote_id.startswith(f"note:{ticket.id}:")
        payload = json.loads(fake.calls("POST", f"/api/v2/tickets/{ticket.id}/notes")[0].body)
        assert payload["private"] is True
        assert "<b>" not in payload["body"]

    def test_unsupported_channel_raises_before_writing(self, platform, fake):
        effect = message("chg:p:message:x:0", "public_comment", ticket_id="1")
        with pytest.raises(UnsupportedOperation):
            platform.itsm_change_deliver_communication([effect], {})
        assert fake.write_calls() == 0


class TestAcknowledgementAndFeedback:
    def test_task_channel_creates_a_ticket_for_the_recipient(self, platform, fake):
        bob = fake.add_person("Bob Jones", "bob@acme.example")
        effect = message("chg:p:message:ack:bob", "task", recipient=bob)
        [result] = platform.itsm_change_deliver_communication([effect], {})
        assert result.ok
        assert json.loads(fake.calls("POST", "/api/v2/tickets")[0].body)["responder_id"] == int(
            bob.id)

    def test_feedback_request_is_tagged_as_feedback(self, platform, fake):
        bob = fake.add_person("Bob Jones", "bob@acme.example")
        effect = Effect(key="chg:p:feedback_request:pulse:bob", kind=EffectKind.FEEDBACK_REQUEST,
                        platform="freshservice", program="p", title="How is it going?",
                        body="Add a note starting with #feedback", channel="task",
                        recipient=bob)
        [result] = platform.itsm_change_request_feedback([effect], {})
        assert result.ok
        tags = json.loads(fake.calls("POST", "/api/v2/tickets")[0].body)["tags"]
        assert "itsm-feedback-request" in tags
        assert platform.itsm_change_find_effects(EffectKind.FEEDBACK_REQUEST,
                                                 [effect.key]) == [result.ref]


class TestPrompts:
    def prompt(self, ticket):
        return Effect(key=f"chg:p:prompt:portal-tip:{ticket.id}", kind=EffectKind.PROMPT,
                      platform="freshservice", program="p", title="Tip",
                      body="Point the user to the portal", channel="ticket_note",
                      ticket_id=ticket.id)

    def test_prompt_is_a_private_note_and_known_keys_are_skipped(self, platform, fake):
        ticket = fake.add_ticket(title="Password reset", opened_at=datetime.now(UTC))
        effect = self.prompt(ticket)
        [first] = platform.itsm_change_post_prompts([effect], {})
        [again] = platform.itsm_change_post_prompts([effect], {effect.key: first.ref})
        assert first.ok and again.ref == first.ref
        assert len(fake.records(EffectKind.PROMPT)) == 1

    def test_find_effects_finds_a_prompt_by_its_marker(self, make_platform, fake):
        ticket = fake.add_ticket(title="Password reset", opened_at=datetime.now(UTC))
        effect = self.prompt(ticket)
        [posted] = make_platform().itsm_change_post_prompts([effect], {})
        fresh = make_platform()
        assert fresh.itsm_change_find_effects(EffectKind.PROMPT, [effect.key]) == [posted.ref]

    def test_prompt_timeout_after_apply_is_not_posted_twice(self, platform, fake):
        ticket = fake.add_ticket(title="Password reset", opened_at=datetime.now(UTC))
        fake.fail_next_write(after_apply=True)
        [result] = platform.itsm_change_post_prompts([self.prompt(ticket)], {})
        assert result.ok and len(fake.conversations[int(ticket.id)]) == 1
