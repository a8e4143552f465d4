"""Freshservice payloads to and from the core model, and the small encodings they need.

Freshservice bodies are HTML, so every plain-text body from an effect is escaped here and
nowhere else; correlation keys travel as a hashed tag (tickets) or a marker (notes, tasks,
announcements).
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from itsm_change_sdk.errors import ConfigurationError
from itsm_change_sdk.model import Comment, Ticket

__all__ = [
    "CHANNEL_SOURCES",
    "MANAGED_TAG",
    "PRIORITIES",
    "SOURCE_CHANNELS",
    "body_html",
    "carries_key",
    "comment_from_conversation",
    "due_datetime",
    "fs_time",
    "key_tag",
    "kind_line",
    "kind_tag",
    "marker",
    "normalize_domain",
    "parse_ticket_number",
    "parse_time",
    "ticket_from_payload",
]

SOURCE_CHANNELS: dict[int, str] = {
    1: "email",
    2: "portal",
    3: "phone",
    4: "chat",
    5: "feedback_widget",
    6: "yammer",
    7: "aws_cloudwatch",
    8: "pagerduty",
    9: "walkup",
    10: "slack",
}
CHANNEL_SOURCES: dict[str, int] = {name: code for code, name in SOURCE_CHANNELS.items()}
PRIORITIES: dict[int, str] = {1: "low", 2: "medium", 3: "high", 4: "urgent"}
STATUS_OPEN, STATUS_PENDING, STATUS_RESOLVED, STATUS_CLOSED = 2, 3, 4, 5
TASK_OPEN, TASK_IN_PROGRESS, TASK_COMPLETED = 1, 2, 3

MANAGED_TAG = "itsm-change"
"""On every ticket the plugin creates, so metrics can leave them out."""

_DOMAIN_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_URL_RE = re.compile(r"^https://([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)\.freshservice\.com/?$")
_NUMBER_RE = re.compile(r"^#?(?:[A-Za-z]+-)?(\d+)$")
_MARKER_PREFIX = "itsm-change-key:"


def normalize_domain(value: str) -> str:
    """``https://<name>.freshservice.com`` from ``<name>``, the host, or the full URL.

    Freshservice's API answers only on its own domains (not on custom CNAMEs), so anything
    else is refused before a request is sent.
    """
    raw = value.strip().lower()
    if _DOMAIN_RE.match(raw):
        return f"https://{raw}.freshservice.com"
    if raw.endswith(".freshservice.com") and "/" not in raw:
        raw = f"https://{raw}"
    match = _URL_RE.match(raw)
    if match:
        return f"https://{match.group(1)}.freshservice.com"
    raise ConfigurationError(
        f"freshservice: domain {value!r} is not a Freshservice domain; give the account name "
        "(acme) or its URL (https://acme.freshservice.com). Custom CNAMEs do not serve the API."
    )


def parse_ticket_number(value: str | int) -> int | None:
    """The ticket id from ``123``, ``#123``, ``INC-123`` or ``#SR-123``."""
    match = _NUMBER_RE.match(str(value).strip())
    return int(match.group(1)) if match else None


def key_tag(key: str) -> str:
    """A tag-safe, fixed-length stand-in for a correlation key (tags have a length limit and
    a charset the key does not respect)."""
    return "itsm-k-" + hashlib.sha256(key.encode()).hexdigest()[:24]


def kind_tag(kind: str) -> str:
    return f"itsm-{kind.replace('_', '-')}"


def kind_line(kind: str) -> str:
    """Names the effect kind on a task (tasks have no tags), after its key's marker."""
    return f"itsm-change-kind:{kind}"


def marker(key: str) -> str:
    return f"{_MARKER_PREFIX}{key}"


def carries_key(payload: Mapping[str, Any], key: str, *fields: str) -> bool:
    """Whether one of ``fields`` (HTML or text) holds the key's marker, the whole key: the
    marker must end where the key ends (at a tag, whitespace or the end), since keys differ
    only in their tail and one can be the start of another (``...:1001`` and ``...:10011``).
    """
    plain = marker(key)
    escaped = html.escape(plain, quote=True)
    pattern = re.compile(f"(?:{re.escape(plain)}|{re.escape(escaped)})(?=$|[\\s<])")
    for name in fields:
        value = payload.get(name)
        if isinstance(value, str) and pattern.search(value):
            return True
    return False


def has_any_marker(payload: Mapping[str, Any], *fields: str) -> bool:
    return any(
        isinstance(payload.get(name), str) and _MARKER_PREFIX in payload[name] for name in fields
    )


def body_html(text: str, key: str) -> str:
    """Plain text as escaped HTML, with the key's marker in a hidden block after it.

    The marker stays in ``body_text`` even where Freshservice drops the styling, so it can
    always be found again.
    """
    paragraphs = [
        html.escape(part, quote=True).replace("\n", "<br>") for part in text.split("\n\n")
    ]
    rendered = "".join(f"<p>{p}</p>" for p in paragraphs if p) or "<p></p>"
    hidden = html.escape(marker(key), quote=True)
    return f'{rendered}<div style="display:none">{hidden}</div>'


def fs_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def due_datetime(due: date | None, now: datetime) -> str | None:
    """End of the due day (UTC); None when that is already past (Freshservice refuses a due
    time in the past, and a late assignment is still worth creating)."""
    if due is None:
        return None
    end = datetime.combine(due, time(17, 0), tzinfo=UTC)
    if end <= now + timedelta(hours=1):
        return None
    return fs_time(end)


def ticket_number(payload: Mapping[str, Any]) -> str:
    kind = str(payload.get("type") or "Incident")
    prefix = "SR" if kind.lower().startswith("service") else "INC"
    return f"#{prefix}-{payload.get('id')}"


def ticket_state(status: Any) -> str:
    if status == STATUS_RESOLVED:
        return "resolved"
    if status == STATUS_CLOSED:
        return "closed"
    return "open"


def ticket_from_payload(
    payload: Mapping[str, Any], *, platform: str, base_url: str, groups: Mapping[int, str]
) -> Ticket:
    created = parse_time(payload.get("created_at")) or datetime.fromtimestamp(0, UTC)
    updated = parse_time(payload.get("updated_at")) or created
    raw_stats = payload.get("stats")
    stats: Mapping[str, Any] = raw_stats if isinstance(raw_stats, Mapping) else {}
    resolved = parse_time(stats.get("resolved_at")) or parse_time(stats.get("closed_at"))
    group_id = payload.get("group_id")
    kind = str(payload.get("type") or "incident").lower()
    return Ticket(
        platform=platform,
        id=str(payload["id"]),
        number=ticket_number(payload),
        title=str(payload.get("subject") or ""),
        kind=kind,
        state=ticket_state(payload.get("status")),
        opened_at=created,
        updated_at=updated,
        resolved_at=resolved,
        category=payload.get("category") or None,
        group=groups.get(group_id) if isinstance(group_id, int) else None,
        channel=_code(SOURCE_CHANNELS, payload.get("source")),
        priority=_code(PRIORITIES, payload.get("priority")),
        assignee=str(payload["responder_id"]) if payload.get("responder_id") else None,
        requester=str(payload["requester_id"]) if payload.get("requester_id") else None,
        url=f"{base_url}/a/tickets/{payload['id']}",
    )


def _code(names: Mapping[int, str], value: Any) -> str | None:
    return names.get(value) if isinstance(value, int) else None


def is_managed(payload: Mapping[str, Any]) -> bool:
    tags = payload.get("tags")
    return isinstance(tags, list) and MANAGED_TAG in tags


def comment_from_conversation(
    payload: Mapping[str, Any], *, platform: str, ticket_id: str
) -> Comment:
    created = parse_time(payload.get("created_at")) or datetime.fromtimestamp(0, UTC)
    text = payload.get("body_text")
    if not isinstance(text, str):
        text = html.unescape(re.sub(r"<[^>]+>", " ", str(payload.get("body") or "")))
    private = payload.get("private")
    return Comment(
        platform=platform,
        id=str(payload["id"]),
        ticket_id=ticket_id,
        author=str(payload.get("user_id") or ""),
        created_at=created,
        text=text,
        internal=bool(private) if private is not None else payload.get("source") == 2,
    )
