"""Jira payloads to and from the core model.

Correlation: an issue carries its effect's key as a label (:func:`key_label`, reversible) or
in a configured text custom field, plus an ``itsm-change`` issue property with the key and
kind. A comment carries a reference token in its text (:func:`comment_token`, a single word
that JQL text search finds) and an ``itsm-change`` comment property.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from itsm_change_sdk.model import Comment, Effect, EffectKind, Person, Ticket

from . import adf

__all__ = [
    "PROPERTY",
    "RETIRED_LABEL",
    "comment_from_payload",
    "comment_token",
    "issue_fields",
    "key_from_label",
    "key_label",
    "parse_time",
    "person_from_user",
    "ticket_from_issue",
]

PROPERTY = "itsm-change"
JSM_VISIBILITY = "sd.public.comment"
"""The comment property JSM reads for an internal (``{"internal": true}``) comment."""
RETIRED_LABEL = "itsm-change-retired"
KIND_LABELS: Mapping[EffectKind, str] = {
    EffectKind.TRAINING: "itsm-change-training",
    EffectKind.MESSAGE: "itsm-change-message",
    EffectKind.FEEDBACK_REQUEST: "itsm-change-feedback",
    EffectKind.PROMPT: "itsm-change-prompt",
}
LABEL_MAX = 255
_SAFE = re.compile(r"[A-Za-z0-9_.\-]")
TICKET_FIELDS = (
    "summary", "issuetype", "status", "created", "updated", "resolutiondate", "priority",
    "assignee", "reporter", "labels", "components", "project",
)


def key_label(key: str) -> str:
    """A label for ``key``: ``:`` becomes ``~``, other unsafe bytes ``!XX`` (reversible).

    Labels may not contain spaces and are at most 255 characters; a longer key becomes a
    digest label (found by key, not reversible; the issue property still holds the key).
    """
    out: list[str] = []
    for ch in key:
        if ch == ":":
            out.append("~")
        elif _SAFE.fullmatch(ch):
            out.append(ch)
        else:
            out.extend(f"!{b:02X}" for b in ch.encode())
    label = "".join(out)
    if len(label) > LABEL_MAX:
        return "chg#" + hashlib.sha256(key.encode()).hexdigest()[:40]
    return label


def key_from_label(label: str) -> str | None:
    """The key a :func:`key_label` label carries, or None for another label."""
    if not label.startswith("chg~"):
        return None
    raw = bytearray()
    i = 0
    while i < len(label):
        ch = label[i]
        if ch == "~":
            raw += b":"
            i += 1
        elif ch == "!" and re.fullmatch(r"[0-9A-F]{2}", label[i + 1:i + 3]):
            raw.append(int(label[i + 1:i + 3], 16))
            i += 3
        else:
            raw += ch.encode()
            i += 1
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return None


def comment_token(key: str) -> str:
    """One searchable word that names a comment's effect (JQL ``comment ~`` finds it)."""
    return "itsmchg" + hashlib.sha256(key.encode()).hexdigest()[:20]


def comment_text(effect: Effect) -> str:
    return f"{effect.body.rstrip()}\n\n[itsm-change ref {comment_token(effect.key)}]"


def strip_token(text: str) -> str:
    return re.sub(r"\s*\[itsm-change ref itsmchg[0-9a-f]{20}\]\s*$", "", text)


def written_by_us(text: str) -> bool:
    """Our comments end with their ref token; they are never staff feedback, even though a
    survey request quotes the feedback marker."""
    return re.search(r"\[itsm-change ref itsmchg[0-9a-f]{20}\]", text) is not None


def property_value(effect: Effect) -> dict[str, str]:
    return {"key": effect.key, "kind": str(effect.kind), "program": effect.program}


def issue_fields(
    effect: Effect,
    *,
    project: str,
    issue_type: str,
    correlation: str,
    parent: str | None = None,
) -> dict[str, Any]:
    """The ``fields`` of an issue for a task-like effect (training, ack task, feedback)."""
    labels = ["itsm-change", KIND_LABELS[effect.kind]]
    fields: dict[str, Any] = {
        "project": {"key": project},
        "issuetype": {"name": issue_type},
        "summary": effect.title[:255],
        "description": adf.from_plain_text(effect.body),
    }
    if effect.recipient is not None:
        fields["assignee"] = {"id": effect.recipient.id}
    if effect.due is not None:
        fields["duedate"] = effect.due.isoformat()
    if parent:
        fields["parent"] = {"key": parent}
    if correlation == "label":
        labels.append(key_label(effect.key))
    else:
        fields[correlation] = effect.key
    fields["labels"] = labels
    return fields


def parse_time(value: Any) -> datetime | None:
    """Jira's ``2024-01-31T10:20:30.123+0000`` (and ISO forms) as aware UTC."""
    if not value:
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1000, UTC)
    text = str(value).replace("Z", "+00:00")
    text = re.sub(r"([+-]\d{2})(\d{2})$", r"\1:\2", text)
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


_STATE_BY_CATEGORY = {"new": "open", "indeterminate": "open", "undefined": "open"}
_CLOSED_NAMES = frozenset({"closed", "cancelled", "canceled", "declined", "won't do"})


def ticket_state(fields: Mapping[str, Any]) -> str:
    status = fields.get("status") or {}
    category = ((status.get("statusCategory") or {}).get("key") or "").lower()
    if category != "done":
        return _STATE_BY_CATEGORY.get(category, "open")
    name = str(status.get("name") or "").lower()
    return "closed" if name in _CLOSED_NAMES else "resolved"


def _name(value: Any, key: str = "name") -> str | None:
    if isinstance(value, dict):
        found = value.get(key) or value.get("value")
        return str(found) if found else None
    if isinstance(value, str):
        return value or None
    return None


def ticket_from_issue(
    issue: Mapping[str, Any],
    site_url: str,
    channel_field: str | None = None,
    group_field: str | None = None,
) -> Ticket:
    fields: Mapping[str, Any] = issue.get("fields") or {}
    components = [c.get("name") for c in fields.get("components") or [] if c.get("name")]
    labels = [str(label) for label in fields.get("labels") or []
              if not str(label).startswith(("itsm-change", "chg~", "chg#"))]
    category = components[0] if components else (labels[0] if labels else None)
    created = parse_time(fields.get("created"))
    updated = parse_time(fields.get("updated")) or created
    assert created is not None and updated is not None
    channel = None
    if channel_field:
        channel = _name(fields.get(channel_field))
    return Ticket(
        platform="jira",
        id=str(issue["id"]),
        number=str(issue.get("key") or issue["id"]),
        title=str(fields.get("summary") or ""),
        kind=(_name(fields.get("issuetype")) or "issue").lower(),
        state=ticket_state(fields),
        opened_at=created,
        updated_at=updated,
        resolved_at=parse_time(fields.get("resolutiondate")),
        category=category,
        group=_name(fields.get(group_field)) if group_field else None,
        channel=channel.lower() if channel else None,
        priority=_name(fields.get("priority")),
        assignee=_name(fields.get("assignee"), "accountId"),
        requester=_name(fields.get("reporter"), "accountId"),
        url=f"{site_url.rstrip('/')}/browse/{issue.get('key')}" if issue.get("key") else None,
    )


def comment_from_payload(comment: Mapping[str, Any], ticket_id: str) -> Comment:
    author = comment.get("author") or {}
    created = parse_time(comment.get("created"))
    assert created is not None
    visibility = comment.get("visibility")
    internal = bool(visibility) or comment.get("jsdPublic") is False
    for prop in comment.get("properties") or []:
        if prop.get("key") == "sd.public.comment" and (prop.get("value") or {}).get("internal"):
            internal = True
    return Comment(
        platform="jira",
        id=str(comment["id"]),
        ticket_id=ticket_id,
        author=str(author.get("accountId") or author.get("displayName") or ""),
        created_at=created,
        text=adf.to_plain_text(comment.get("body")),
        internal=internal,
    )


def person_from_user(user: Mapping[str, Any]) -> Person:
    return Person(
        id=str(user["accountId"]),
        name=str(user.get("displayName") or user["accountId"]),
        platform="jira",
        email=user.get("emailAddress") or None,
    )
