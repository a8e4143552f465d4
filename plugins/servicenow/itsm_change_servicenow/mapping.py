"""ServiceNow payloads <-> model objects, and the value maps both ways."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from itsm_change_sdk.model import Comment, Effect, Ticket, TicketFilter

__all__ = [
    "CORRELATION_DISPLAY",
    "TASK_CLOSED_COMPLETE",
    "TASK_CLOSED_SKIPPED",
    "TICKET_TABLES",
    "marker",
    "parse_sn_datetime",
    "render_journal",
    "stored_key",
    "ticket_from_row",
]

CORRELATION_DISPLAY = "itsm_change_sdk"
"""Written to ``correlation_display``: names the system that owns the record."""

# task.state choices shared by every table that does not override them (1 Open and
# 2 Work in Progress are the open ones).
TASK_CLOSED_COMPLETE = "3"
TASK_CLOSED_INCOMPLETE = "4"
TASK_CLOSED_SKIPPED = "7"
TASK_CLOSED_STATES = frozenset({TASK_CLOSED_COMPLETE, TASK_CLOSED_INCOMPLETE, TASK_CLOSED_SKIPPED})

TICKET_TABLES: dict[str, str] = {
    "incident": "incident",
    "request": "sc_request",
    "sc_request": "sc_request",
    "change": "change_request",
    "change_request": "change_request",
}
"""Ticket kinds a program's filter may name -> the table holding them."""

KIND_OF_TABLE = {"incident": "incident", "sc_request": "request", "change_request": "change"}

# incident.state: 6 Resolved, 7 Closed, 8 Canceled. change_request: 0 Review, 3 Closed,
# 4 Canceled. sc_request uses the task states. ``active=false`` always means closed.
_RESOLVED_STATES = {"incident": {"6"}, "change_request": {"0"}}

CHANNELS_IN = {"self-service": "portal", "virtual_agent": "chat", "walk-in": "walk-in"}
CHANNELS_OUT = {"portal": "self-service"}
PRIORITY_NAMES = {"critical": "1", "high": "2", "moderate": "3", "medium": "3", "low": "4",
                  "planning": "5"}

KEY_LIMIT = 100
"""Length of ``task.correlation_id`` (string, 100): longer keys are stored as a digest."""

_MARKER_RE = re.compile(r"\[itsm-change:[^\]\s]+\]")
_CODE_TAG_RE = re.compile(r"\[(\s*/?\s*code\s*)\]", re.IGNORECASE)
_ZERO_WIDTH = "\u200b"


def stored_key(key: str, limit: int = KEY_LIMIT) -> str:
    """The value written to the correlation field: the key itself, or a digest if too long."""
    if len(key) <= limit:
        return key
    return "chg-sha256:" + hashlib.sha256(key.encode()).hexdigest()[:40]


def marker(key: str) -> str:
    """The token a journal entry carries so that the note can be found by its key."""
    return f"[itsm-change:{stored_key(key, 200)}]"


def markers_in(text: str) -> list[str]:
    """The markers (as :func:`marker` writes them) that ``text`` carries."""
    return _MARKER_RE.findall(text or "")


def neutralise(text: str) -> str:
    """Plain text for a journal field: ``[code]`` tags would render as HTML, so break them."""
    return _CODE_TAG_RE.sub(lambda m: f"[{_ZERO_WIDTH}{m.group(1)}]", text)


def render_journal(effect: Effect) -> str:
    title = neutralise(effect.title).strip()
    body = neutralise(effect.body).strip()
    head = f"{title}\n\n" if title and title not in body else ""
    return f"{head}{body}\n\n{marker(effect.key)}"


def render_task_description(effect: Effect) -> str:
    return neutralise(effect.body)


def parse_sn_datetime(value: Any) -> datetime | None:
    """The Table API's ``YYYY-MM-DD HH:MM:SS`` (UTC with display values off)."""
    value = _value(value)
    if not value:
        return None
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"):
        try:
            return datetime.strptime(str(value)[:19], fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


def _value(field: Any) -> Any:
    """The raw value of a field in any ``sysparm_display_value`` shape."""
    if isinstance(field, Mapping):
        return field.get("value")
    return field


def _display(field: Any) -> str | None:
    if isinstance(field, Mapping):
        shown = field.get("display_value")
        return str(shown) if shown not in (None, "") else None
    return str(field) if field not in (None, "") else None


def _count(field: Any) -> int | None:
    """A counter field, or None when the instance did not return it (metrics that need it
    then say "unknown" instead of counting zero)."""
    if field is None or _value(field) in (None, ""):
        return None
    return _int(field)


def _int(field: Any) -> int:
    try:
        return int(str(_value(field) or 0))
    except ValueError:
        return 0


def ticket_state(table: str, state: str | None, active: str | None) -> str:
    if str(active).lower() == "false":
        return "closed"
    if state in _RESOLVED_STATES.get(table, set()):
        return "resolved"
    return "open"


def channel_in(contact_type: str | None) -> str | None:
    if not contact_type:
        return None
    return CHANNELS_IN.get(contact_type, contact_type)


def record_table(row: Mapping[str, Any], table: str) -> str:
    """The table a row read from ``table`` (or its parent) really lives in."""
    return str(_value(row.get("sys_class_name")) or table)


def ticket_from_row(row: Mapping[str, Any], table: str, platform: str,
                    instance_url: str) -> Ticket:
    """A ticket read with ``sysparm_display_value=all`` (``{"value","display_value"}`` pairs)."""
    sys_id = str(_value(row.get("sys_id")))
    table = record_table(row, table)
    opened = parse_sn_datetime(row.get("opened_at")) or parse_sn_datetime(
        row.get("sys_created_on"))
    updated = parse_sn_datetime(row.get("sys_updated_on")) or opened
    assert updated is not None
    state = ticket_state(table, _value(row.get("state")), _value(row.get("active")))
    resolved = parse_sn_datetime(row.get("resolved_at")) or parse_sn_datetime(
        row.get("closed_at"))
    return Ticket(
        platform=platform,
        id=sys_id,
        number=str(_value(row.get("number")) or sys_id),
        title=str(_value(row.get("short_description")) or ""),
        kind=KIND_OF_TABLE.get(table, table),
        state=state,
        opened_at=opened or updated,
        updated_at=updated,
        resolved_at=resolved if state != "open" else None,
        category=_value(row.get("category")) or None,
        service=_display(row.get("business_service")),
        group=_display(row.get("assignment_group")),
        group_id=_value(row.get("assignment_group")) or None,
        channel=channel_in(_value(row.get("contact_type"))),
        priority=_value(row.get("priority")) or None,
        assignee=_value(row.get("assigned_to")) or None,
        requester=_value(row.get("caller_id")) or _value(row.get("requested_for")) or None,
        reopen_count=_count(row.get("reopen_count")),
        reassignment_count=_count(row.get("reassignment_count")),
        url=record_url(instance_url, table, sys_id),
    )


def record_url(instance_url: str, table: str, sys_id: str) -> str:
    return f"{instance_url}/nav_to.do?uri={table}.do%3Fsys_id%3D{sys_id}"


def normalise_filter(filter: TicketFilter) -> TicketFilter:
    """The filter in ServiceNow's values (``portal`` -> ``self-service``, ``high`` -> ``2``)."""
    return TicketFilter(
        platform=filter.platform,
        kinds=filter.kinds,
        categories=filter.categories,
        services=filter.services,
        groups=filter.groups,
        channels=tuple(CHANNELS_OUT.get(c.casefold(), c) for c in filter.channels),
        priorities=tuple(PRIORITY_NAMES.get(p.casefold(), p) for p in filter.priorities),
    )


def comment_from_journal(row: Mapping[str, Any], platform: str, author: str) -> Comment:
    created = parse_sn_datetime(row.get("sys_created_on"))
    assert created is not None
    return Comment(
        platform=platform,
        id=str(row.get("sys_id")),
        ticket_id=str(row.get("element_id")),
        author=author,
        created_at=created,
        text=str(row.get("value") or ""),
        internal=row.get("element") == "work_notes",
    )
