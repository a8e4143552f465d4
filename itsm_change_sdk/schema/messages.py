"""How values and field paths are worded in issues, shared by every stage of loading."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

UNKNOWN = "\x00unknown field\x00"
"""marshmallow's message for an unknown field; replaced by a hint once the path is known."""

SCHEMA_KEY = "_schema"
"""marshmallow's key for errors about a whole mapping rather than one field."""


def short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe(value: Any) -> str:
    """Name what was found, for messages such as 'expected a date, found a list'."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"true/false ({str(value).lower()})"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the text {short(value)!r}" if value.strip() else "empty text"
    if isinstance(value, datetime):
        return f"the date-time {value.isoformat()}"
    if isinstance(value, date):
        return f"the date {value.isoformat()}"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, bytes):
        return "binary data"
    return f"a {type(value).__name__}"


def join_path(prefix: str, part: str) -> str:
    """Extend a dotted field path (``training.1`` + ``objectives``)."""
    if not part:
        return prefix
    return f"{prefix}.{part}" if prefix else part
