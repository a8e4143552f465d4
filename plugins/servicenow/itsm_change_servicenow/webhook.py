"""Events from the Business Rules that ``itsm-change install`` puts on the instance.

ServiceNow signs nothing by itself: the rules send a shared secret in ``X-ITSM-Change-Secret``
(compared in constant time). Payloads (built by the scripts in :mod:`.admin`)::

    {"kind": "record", "operation": "insert"|"update", "table", "sys_id", "number",
     "sys_updated_on", "sys_mod_count", "state", "previous_state", "correlation_id",
     "correlation_display"}
    {"kind": "journal", "table", "sys_id", "number", "sys_updated_on",
     "entry": {"sys_id", "element", "value", "sys_created_on", "sys_created_by", "author_id"}}

A record event is a hint (``needs_refresh``): the core re-reads the ticket through the API.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from itsm_change_sdk.errors import WebhookRejected
from itsm_change_sdk.model import Comment, TicketEvent, TicketEventKind, WebhookRequest
from itsm_change_sdk.webhooks import verify_shared_secret

from .mapping import (
    CORRELATION_DISPLAY,
    TASK_CLOSED_COMPLETE,
    TASK_CLOSED_STATES,
    parse_sn_datetime,
)
from .settings import PLATFORM_NAME as PLATFORM

__all__ = ["SECRET_HEADER", "parse"]

SECRET_HEADER = "X-ITSM-Change-Secret"


def _text(payload: Mapping[str, Any], name: str) -> str:
    value = payload.get(name)
    if value in (None, "") or not isinstance(value, str | int):
        raise WebhookRejected(400, f"missing field {name!r}")
    return str(value)


def parse(request: WebhookRequest, secret: str | None) -> list[TicketEvent]:
    verify_shared_secret(request, SECRET_HEADER, secret)
    try:
        payload = json.loads(request.body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WebhookRejected(400, "the body is not JSON") from exc
    if not isinstance(payload, dict):
        raise WebhookRejected(400, "the body is not a JSON object")
    kind = payload.get("kind")
    if kind == "record":
        return _record(payload)
    if kind == "journal":
        return _journal(payload)
    raise WebhookRejected(422, f"unknown event kind {kind!r}")


def _when(payload: Mapping[str, Any], name: str) -> Any:
    when = parse_sn_datetime(payload.get(name))
    if when is None:
        raise WebhookRejected(400, f"{name!r} is not a ServiceNow date-time")
    return when


def _record(payload: Mapping[str, Any]) -> list[TicketEvent]:
    table = _text(payload, "table")
    sys_id = _text(payload, "sys_id")
    operation = _text(payload, "operation")
    if operation not in ("insert", "update"):
        raise WebhookRejected(422, f"unknown operation {operation!r}")
    occurred = _when(payload, "sys_updated_on")
    revision = str(payload.get("sys_mod_count") or payload.get("sys_updated_on"))
    event_id = f"{table}:{sys_id}:{revision}"
    key = payload.get("correlation_id") or None
    ours = payload.get("correlation_display") == CORRELATION_DISPLAY and key
    if ours:
        state = str(payload.get("state") or "")
        before = str(payload.get("previous_state") or "")
        if state == TASK_CLOSED_COMPLETE and before != TASK_CLOSED_COMPLETE:
            kind = TicketEventKind.TASK_COMPLETED
        elif before in TASK_CLOSED_STATES and state not in TASK_CLOSED_STATES:
            kind = TicketEventKind.TASK_REOPENED
        else:
            return []
        return [TicketEvent(platform=PLATFORM, event_id=event_id, kind=kind,
                            occurred_at=occurred, ticket_id=sys_id, effect_key=str(key))]
    kind = (TicketEventKind.TICKET_CREATED if operation == "insert"
            else TicketEventKind.TICKET_UPDATED)
    return [TicketEvent(platform=PLATFORM, event_id=event_id, kind=kind, occurred_at=occurred,
                        ticket_id=sys_id, needs_refresh=True)]


def _journal(payload: Mapping[str, Any]) -> list[TicketEvent]:
    sys_id = _text(payload, "sys_id")
    entry = payload.get("entry")
    if not isinstance(entry, dict):
        raise WebhookRejected(400, "missing field 'entry'")
    entry_id = _text(entry, "sys_id")
    element = _text(entry, "element")
    created = _when(entry, "sys_created_on")
    author = str(entry.get("author_id") or entry.get("sys_created_by") or "")
    comment = Comment(platform=PLATFORM, id=entry_id, ticket_id=sys_id, author=author,
                      created_at=created, text=str(entry.get("value") or ""),
                      internal=element == "work_notes")
    return [TicketEvent(platform=PLATFORM, event_id=f"journal:{entry_id}",
                        kind=TicketEventKind.COMMENT_ADDED, occurred_at=created,
                        ticket_id=sys_id, comment=comment)]
