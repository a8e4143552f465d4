"""Webhooks from Freshservice's Workflow Automator, taken as triggers only.

Freshservice does not sign webhooks and the body is whatever the admin templated, with
placeholders that are not JSON-escaped (a subject holding a quote breaks the JSON). So the
shared-secret header is the only proof of origin, and the payload only says *which* ticket to
re-read through the API; nothing else in it is trusted.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from typing import Any

from itsm_change_sdk.errors import WebhookRejected
from itsm_change_sdk.model import TicketEvent, TicketEventKind, WebhookRequest
from itsm_change_sdk.webhooks import verify_shared_secret

from .mapping import parse_ticket_number
from .settings import PLATFORM_NAME

__all__ = ["EVENTS", "SECRET_HEADER", "parse", "payload_template"]

SECRET_HEADER = "X-ITSM-Change-Secret"

EVENTS: dict[str, TicketEventKind] = {
    "ticket_created": TicketEventKind.TICKET_CREATED,
    "ticket_updated": TicketEventKind.TICKET_UPDATED,
    "note_added": TicketEventKind.COMMENT_ADDED,
}

_EVENT_RE = re.compile(r'"event"\s*:\s*"([a-z_]+)"')
_TICKET_RE = re.compile(r'"ticket_id"\s*:\s*"?(#?[A-Za-z]*-?\d+)"?')


def payload_template(event: str) -> str:
    """The body an admin pastes into the Trigger Webhook action for ``event``.

    ``event`` and ``ticket_id`` come first and hold no free text, so they can still be read
    when a subject or note with a stray quote breaks the JSON after them. The ticket id is
    quoted because Freshservice may render it with its prefix (``INC-42``).
    """
    return (
        "{\n"
        f'  "event": "{event}",\n'
        '  "ticket_id": "{{ticket.id}}",\n'
        '  "status": "{{ticket.status}}",\n'
        '  "subject": "{{ticket.subject}}",\n'
        '  "latest_note": "{{ticket.latest_private_comment}}"\n'
        "}"
    )


def _fields(body: bytes) -> tuple[str | None, Any]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WebhookRejected(400, "the body is not UTF-8") from exc
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        event = data.get("event")
        ticket = data.get("ticket_id")
        if ticket is None and isinstance(data.get("ticket"), dict):
            ticket = data["ticket"].get("id")
        return (str(event) if isinstance(event, str) else None, ticket)
    if data is not None:
        raise WebhookRejected(400, "the body must be a JSON object")
    # Not JSON: a placeholder broke it. The leading fields are still readable.
    event_match = _EVENT_RE.search(text)
    ticket_match = _TICKET_RE.search(text)
    if not event_match or not ticket_match:
        raise WebhookRejected(400, "the body is not JSON; paste the template from "
                                   "'itsm-change install' into the workflow's webhook action")
    return event_match.group(1), ticket_match.group(1)


def parse(request: WebhookRequest, *, secret: str | None, now: datetime) -> list[TicketEvent]:
    verify_shared_secret(request, SECRET_HEADER, secret)
    event, raw_ticket = _fields(request.body)
    if event is None or raw_ticket is None:
        raise WebhookRejected(400, "the body needs 'event' and 'ticket_id'")
    kind = EVENTS.get(event)
    if kind is None:
        raise WebhookRejected(422, f"unknown event {event!r} (known: {', '.join(EVENTS)})")
    ticket_id = parse_ticket_number(raw_ticket) if isinstance(raw_ticket, (str, int)) else None
    if ticket_id is None or isinstance(raw_ticket, bool):
        raise WebhookRejected(400, f"ticket_id {raw_ticket!r} is not a ticket id")
    # No delivery id exists: the body plus the minute it arrived tells a re-delivery from a
    # later change, and a duplicate refresh is harmless anyway.
    stamp = now.strftime("%Y%m%d%H%M").encode()
    digest = hashlib.sha256(request.body + b"|" + stamp).hexdigest()[:16]
    return [
        TicketEvent(
            platform=PLATFORM_NAME,
            event_id=f"{PLATFORM_NAME}:{event}:{ticket_id}:{digest}",
            kind=kind,
            occurred_at=now,
            ticket_id=str(ticket_id),
            needs_refresh=True,
        )
    ]
