"""Webhook verification (HMAC over the raw body) and event mapping."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from itsm_change_jira.webhook import sign

from itsm_change_sdk.errors import WebhookRejected
from itsm_change_sdk.model import TicketEventKind, WebhookRequest

FIXTURES = Path(__file__).parent / "fixtures"
SECRET = "whsec-0123456789"


def request(body: bytes, signature: str | None = "auto", secret: str | None = SECRET,
            **headers: str) -> WebhookRequest:
    all_headers = dict(headers)
    if signature == "auto":
        all_headers["X-Hub-Signature"] = sign(body, SECRET)
    elif signature is not None:
        all_headers["X-Hub-Signature"] = signature
    return WebhookRequest(platform="jira", headers=all_headers, body=body, secret=secret)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_training_issue_moved_to_done_completes_the_task(platform):
    body = fixture("webhook-issue-updated-done.json")
    events = platform.itsm_change_parse_webhook(
        request=request(body, **{"X-Atlassian-Webhook-Identifier": "wh-1"}))
    kinds = [e.kind for e in events]
    assert kinds == [TicketEventKind.TICKET_UPDATED, TicketEventKind.TASK_COMPLETED]
    task = events[1]
    assert task.effect_key == ("chg:portal-rollout:training:portal-basics:"
                               "712020:00000002-aaaa-bbbb-cccc-000000000001")
    assert events[0].event_id == "wh-1" and task.event_id != events[0].event_id


def test_moved_back_reopens(platform):
    payload = json.loads(fixture("webhook-issue-updated-done.json"))
    payload["issue"]["fields"]["status"] = {"name": "To Do",
                                            "statusCategory": {"key": "new", "name": "To Do"}}
    payload["changelog"]["items"] = [
        {"field": "resolution", "from": "10000", "fromString": "Done", "to": None,
         "toString": None},
        {"field": "status", "from": "10002", "fromString": "Done", "to": "10000",
         "toString": "To Do"}]
    body = json.dumps(payload).encode()
    events = platform.itsm_change_parse_webhook(request=request(body))
    assert events[-1].kind is TicketEventKind.TASK_REOPENED
    assert events[0].event_id == "1717232400000:10042:jira:issue_updated:"


def test_comment_event_carries_the_comment(platform):
    events = platform.itsm_change_parse_webhook(
        request=request(fixture("webhook-comment-created.json")))
    (event,) = events
    assert event.kind is TicketEventKind.COMMENT_ADDED
    assert event.comment.text.startswith("#feedback A4")
    assert event.ticket_id == "10043"
    assert event.needs_refresh


@pytest.mark.parametrize(("signature", "secret", "status"), [
    (None, SECRET, 401),
    ("sha256=" + "0" * 64, SECRET, 403),
    ("auto", None, 401),
])
def test_unsigned_or_forged_requests_are_rejected(platform, signature, secret, status):
    body = fixture("webhook-comment-created.json")
    with pytest.raises(WebhookRejected) as info:
        platform.itsm_change_parse_webhook(request=request(body, signature, secret))
    assert info.value.status == status
    assert SECRET not in str(info.value)


def test_body_changed_after_signing_is_rejected(platform):
    body = fixture("webhook-comment-created.json")
    forged = request(body)
    forged = WebhookRequest(platform="jira", headers=forged.headers,
                            body=body.replace(b"slow", b"fast"), secret=SECRET)
    with pytest.raises(WebhookRejected) as info:
        platform.itsm_change_parse_webhook(request=forged)
    assert info.value.status == 403


@pytest.mark.parametrize(("body", "status"), [
    (b"not json", 400),
    (b'{"timestamp": 1}', 400),
    (b'{"webhookEvent": "jira:version_released", "issue": {"id": "1"}}', 422),
    (b'{"webhookEvent": "comment_created", "issue": {"id": "1"}}', 400),
])
def test_malformed_and_unknown_events(platform, body, status):
    with pytest.raises(WebhookRejected) as info:
        platform.itsm_change_parse_webhook(request=request(body))
    assert info.value.status == status
