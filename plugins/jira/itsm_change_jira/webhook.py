"""Jira admin webhooks: signature check and issue/comment events.

Jira signs the raw body with the webhook's secret: ``X-Hub-Signature: sha256=<hex>``. There
is no event header; the event is ``webhookEvent`` in the body.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from itsm_change_sdk.errors import WebhookRejected
from itsm_change_sdk.model import EffectKind, TicketEvent, TicketEventKind, WebhookRequest
from itsm_change_sdk.webhooks import hmac_sha256, verify_hmac_sha256

from . import mapping

__all__ = ["parse", "sign", "verify"]

_DONE_NAMES = frozenset({"done", "closed", "resolved", "complete", "completed"})
_KNOWN = frozenset({"jira:issue_created", "jira:issue_updated", "jira:issue_deleted",
                    "comment_created"})


sign = hmac_sha256


def verify(request: WebhookRequest) -> None:
    verify_hmac_sha256(request, "X-Hub-Signature")


def _training_key(issue: Mapping[str, Any]) -> str | None:
    labels = (issue.get("fields") or {}).get("labels") or []
    if mapping.KIND_LABELS[EffectKind.TRAINING] not in labels:
        return None
    for label in labels:
        key = mapping.key_from_label(str(label))
        if key:
            return key
    return None


def _task_event(payload: Mapping[str, Any], issue: Mapping[str, Any]) -> TicketEventKind | None:
    items = (payload.get("changelog") or {}).get("items") or []
    status_items = [i for i in items if i.get("field") == "status"]
    if not status_items:
        return None
    state = mapping.ticket_state(issue.get("fields") or {})
    if state != "open":
        return TicketEventKind.TASK_COMPLETED
    was_done = any(str(i.get("fromString", "")).lower() in _DONE_NAMES for i in status_items)
    reset = any(i.get("field") == "resolution" and not i.get("to") for i in items)
    return TicketEventKind.TASK_REOPENED if was_done or reset else None


def parse(
    request: WebhookRequest,
    site_url: str,
    channel_field: str | None = None,
    group_field: str | None = None,
) -> list[TicketEvent]:
    verify(request)
    try:
        payload = json.loads(request.body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WebhookRejected(400, "body is not JSON") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("webhookEvent"), str):
        raise WebhookRejected(400, "no webhookEvent in the body")
    event = payload["webhookEvent"]
    if event not in _KNOWN:
        raise WebhookRejected(422, f"unhandled event {event!r}")
    issue = payload.get("issue")
    if not isinstance(issue, dict) or "id" not in issue:
        raise WebhookRejected(400, "no issue in the body")
    timestamp = payload.get("timestamp")
    occurred = mapping.parse_time(timestamp) or datetime.now(UTC)
    comment = payload.get("comment") if isinstance(payload.get("comment"), dict) else None
    event_id = request.header("X-Atlassian-Webhook-Identifier") or ":".join(
        str(p) for p in (timestamp, issue["id"], event, (comment or {}).get("id", "")))
    issue_id = str(issue["id"])
    try:
        ticket = (mapping.ticket_from_issue(issue, site_url, channel_field, group_field)
                  if (issue.get("fields") or {}).get("created") else None)
        parsed_comment = (mapping.comment_from_payload(comment, issue_id)
                          if comment is not None else None)
    except (KeyError, TypeError, ValueError) as exc:
        raise WebhookRejected(400, f"malformed {event} payload") from exc
    base: dict[str, Any] = {"platform": "jira", "occurred_at": occurred, "ticket": ticket,
                            "ticket_id": issue_id, "needs_refresh": ticket is None}
    if event == "comment_created":
        if parsed_comment is None:
            raise WebhookRejected(400, "comment_created without a comment")
        return [TicketEvent(event_id=event_id, kind=TicketEventKind.COMMENT_ADDED,
                            comment=parsed_comment, **base)]
    if event == "jira:issue_created":
        return [TicketEvent(event_id=event_id, kind=TicketEventKind.TICKET_CREATED, **base)]
    if event == "jira:issue_deleted":
        return [TicketEvent(event_id=event_id, kind=TicketEventKind.TICKET_UPDATED,
                            **{**base, "ticket": None, "needs_refresh": True})]
    events = [TicketEvent(event_id=event_id, kind=TicketEventKind.TICKET_UPDATED, **base)]
    key = _training_key(issue)
    task_kind = _task_event(payload, issue) if key else None
    if task_kind is not None:
        events.append(TicketEvent(event_id=f"{event_id}:{task_kind}", kind=task_kind,
                                  effect_key=key, **base))
    return events
