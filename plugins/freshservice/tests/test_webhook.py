"""Workflow Automator webhooks: a shared-secret header, and the payload only as a trigger."""

from __future__ import annotations

import json

import pytest
from itsm_change_freshservice.webhook import payload_template

from itsm_change_sdk.errors import WebhookRejected
from itsm_change_sdk.model import TicketEventKind, WebhookRequest


def request(body, secret_header="whsec-freshservice-0a1b2c3d", secret=None):
    headers = {"Content-Type": "application/json"}
    if secret_header is not None:
        headers["X-ITSM-Change-Secret"] = secret_header
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return WebhookRequest(platform="freshservice", headers=headers, body=raw, secret=secret)


def rendered(event="ticket_updated", ticket="#INC-42", subject="Printer", note=""):
    text = payload_template(event)
    for placeholder, value in (("{{ticket.id}}", ticket), ("{{ticket.subject}}", subject),
                               ("{{ticket.status}}", "Open"),
                               ("{{ticket.latest_private_comment}}", note)):
        text = text.replace(placeholder, value)
    return text.encode()


class TestParseWebhook:
    def test_rendered_template_becomes_a_refresh_trigger(self, platform, webhook_secret):
        [event] = platform.itsm_change_parse_webhook(request(rendered(), secret=webhook_secret))
        assert event.ticket_id == "42" and event.needs_refresh
        assert event.kind == TicketEventKind.TICKET_UPDATED and event.ticket is None

    def test_note_added_event(self, platform, webhook_secret):
        body = rendered(event="note_added", ticket="42")
        [event] = platform.itsm_change_parse_webhook(request(body, secret=webhook_secret))
        assert event.kind == TicketEventKind.COMMENT_ADDED

    def test_redelivery_has_the_same_event_id(self, platform, webhook_secret):
        first = platform.itsm_change_parse_webhook(request(rendered(), secret=webhook_secret))
        again = platform.itsm_change_parse_webhook(request(rendered(), secret=webhook_secret))
        assert first[0].event_id == again[0].event_id

    def test_a_subject_with_quotes_still_yields_the_trigger(self, platform, webhook_secret):
        body = rendered(subject='Monitor "Dell" broken', note='said "hi"')
        with pytest.raises(ValueError):
            json.loads(body)
        [event] = platform.itsm_change_parse_webhook(request(body, secret=webhook_secret))
        assert event.ticket_id == "42"

    def test_the_configured_secret_is_used_when_the_request_has_none(self, platform):
        assert platform.itsm_change_parse_webhook(request(rendered()))

    @pytest.mark.parametrize(("header", "status"), [(None, 401), ("wrong-secret-value", 403),
                                                    ("whsec-freshservice-0a1b2c3X", 403)],
                             ids=["missing", "wrong", "same-length"])
    def test_bad_secret_is_rejected(self, platform, header, status):
        with pytest.raises(WebhookRejected) as info:
            platform.itsm_change_parse_webhook(request(rendered(), secret_header=header))
        assert info.value.status == status
        assert "whsec-freshservice-0a1b2c3d" not in str(info.value)

    def test_no_configured_secret_refuses_everything(self, make_platform):
        platform = make_platform(webhook_secret=None)
        with pytest.raises(WebhookRejected) as info:
            platform.itsm_change_parse_webhook(request(rendered()))
        assert info.value.status == 401

    @pytest.mark.parametrize("body", [b"not json at all", b"[1, 2]", {"event": "ticket_updated"},
                                      {"event": "ticket_updated", "ticket_id": "abc"}],
                             ids=["garbage", "array", "no-ticket", "bad-ticket"])
    def test_malformed_body_is_400(self, platform, body):
        with pytest.raises(WebhookRejected) as info:
            platform.itsm_change_parse_webhook(request(body))
        assert info.value.status == 400

    def test_unknown_event_is_422(self, platform):
        with pytest.raises(WebhookRejected) as info:
            platform.itsm_change_parse_webhook(request({"event": "asset_added", "ticket_id": 1}))
        assert info.value.status == 422


class TestTemplate:
    def test_template_with_plain_values_is_valid_json(self):
        data = json.loads(rendered())
        assert data["event"] == "ticket_updated" and data["ticket_id"] == "#INC-42"
        assert "{{ticket.id}}" in payload_template("ticket_created")
