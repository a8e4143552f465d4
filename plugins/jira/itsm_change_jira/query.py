"""JQL built from values that can never change the query.

Every value goes through :func:`quote` (a string literal with ``"`` and ``\\`` escaped and
control characters dropped). Dates are JQL date literals in the account's own time zone,
which is how Jira reads them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta, tzinfo

__all__ = ["and_", "date_literal", "in_", "quote", "text_contains"]


def quote(value: str) -> str:
    """A JQL string literal for ``value``."""
    cleaned = "".join(ch for ch in str(value) if ch >= " " or ch == "\t")
    escaped = cleaned.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def in_(field: str, values: Iterable[str]) -> str:
    items = ", ".join(quote(v) for v in values)
    if not items:
        raise ValueError(f"no values for {field}")
    return f"{field} in ({items})"


def text_contains(field: str, value: str) -> str:
    """A text search (``~``) for ``value`` as one phrase."""
    phrase = value.replace("\\", " ").replace('"', " ")
    return f"{field} ~ {quote(chr(34) + phrase + chr(34))}"


def date_literal(when: datetime, zone: tzinfo, overlap: timedelta = timedelta(minutes=1)) -> str:
    """``"yyyy-MM-dd HH:mm"`` in ``zone``, moved back by ``overlap``.

    JQL has minute precision, so the window starts a minute early and callers drop what they
    have already seen (by id and updated time).
    """
    local = (when - overlap).astimezone(zone)
    return quote(local.strftime("%Y-%m-%d %H:%M"))


def and_(*clauses: str | None) -> str:
    return " AND ".join(f"({c})" if " OR " in c else c for c in clauses if c)
