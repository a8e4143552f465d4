"""TicketEvents to and from the JSON kept in the ledger's ``events.payload``.

The ledger holds the parsed event, not the raw body: processing after a restart needs
only what the platform's parse hook understood, and the raw body may be large.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from ..model import Comment, Ticket, TicketEvent, TicketEventKind

__all__ = ["event_from_payload", "event_to_payload"]

_TICKET_TIMES = ("opened_at", "updated_at", "resolved_at")


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse_time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def _ticket_dict(ticket: Ticket) -> dict[str, Any]:
    data = dict(vars(ticket))
    for name in _TICKET_TIMES:
        data[name] = _time(data[name])
    return data


def _comment_dict(comment: Comment) -> dict[str, Any]:
    data = dict(vars(comment))
    data["created_at"] = _time(comment.created_at)
    return data


def event_to_payload(event: TicketEvent) -> str:
    data: dict[str, Any] = {
        "platform": event.platform,
        "event_id": event.event_id,
        "kind": str(event.kind),
        "occurred_at": _time(event.occurred_at),
        "ticket": _ticket_dict(event.ticket) if event.ticket is not None else None,
        "ticket_id": event.ticket_id,
        "comment": _comment_dict(event.comment) if event.comment is not None else None,
        "effect_key": event.effect_key,
        "needs_refresh": event.needs_refresh,
    }
    return json.dumps(data, sort_keys=True)


def event_from_payload(payload: str) -> TicketEvent:
    data = json.loads(payload)
    ticket = None
    if data.get("ticket"):
        values = dict(data["ticket"])
        for name in _TICKET_TIMES:
            values[name] = _parse_time(values.get(name))
        ticket = Ticket(**values)
    comment = None
    if data.get("comment"):
        values = dict(data["comment"])
        values["created_at"] = _parse_time(values["created_at"])
        comment = Comment(**values)
    occurred = _parse_time(data["occurred_at"])
    assert occurred is not None
    return TicketEvent(
        platform=data["platform"], event_id=data["event_id"],
        kind=TicketEventKind(data["kind"]), occurred_at=occurred, ticket=ticket,
        ticket_id=data.get("ticket_id"), comment=comment, effect_key=data.get("effect_key"),
        needs_refresh=bool(data.get("needs_refresh")),
    )
