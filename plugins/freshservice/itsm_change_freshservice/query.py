"""The text of ``GET /tickets/filter`` queries, built so that no value can change them.

Every value in a query is either a number the plugin produced, a key tag it produced
(``itsm-k-<hex>``), or a category that passed a strict allow-list and is single-quoted. A
value that cannot be quoted safely drops its whole clause; the caller applies that part of
the filter on its side instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta

from itsm_change_sdk.model import TicketFilter

from .mapping import CHANNEL_SOURCES, PRIORITIES

__all__ = ["MAX_QUERY", "NO_MATCH", "filter_query", "tag_queries"]

MAX_QUERY = 500
"""Longest query text sent; longer ones are split (tags) or not sent (filters)."""
NO_MATCH = "no-match"
"""What :func:`filter_query` returns when the filter can match no ticket at all."""
_SAFE_VALUE = re.compile(r"^[\w .,&/+-]{1,100}$")
_TAG = re.compile(r"^itsm-k-[0-9a-f]{1,64}$")


def _any_of(field: str, values: Iterable[int | str]) -> str | None:
    rendered = [f"{field}:{v}" if isinstance(v, int) else f"{field}:'{v}'" for v in values]
    if not rendered:
        return None
    return rendered[0] if len(rendered) == 1 else "(" + " OR ".join(rendered) + ")"


def filter_query(
    filter: TicketFilter,
    since: datetime | None,
    open_only: bool,
    group_ids: Callable[[Iterable[str]], Mapping[str, int | None]],
) -> str | None:
    """The narrowing query for ``filter``, :data:`NO_MATCH`, or None when nothing can be
    narrowed safely on the server (the caller then reads the ticket list).

    ``group_ids`` resolves agent group names to ids, so a name never reaches the query.
    """
    clauses: list[str | None] = []
    if filter.groups:
        ids = [gid for gid in group_ids(filter.groups).values() if gid is not None]
        if not ids:
            return NO_MATCH
        clauses.append(_any_of("group_id", sorted(set(ids))))
    if filter.priorities:
        codes = {c for c, n in PRIORITIES.items() for p in filter.priorities if p.casefold() == n}
        if len(codes) == len(filter.priorities):
            clauses.append(_any_of("priority", sorted(codes)))
    if filter.channels:
        sources = [CHANNEL_SOURCES.get(c.casefold()) for c in filter.channels]
        if all(s is not None for s in sources):
            clauses.append(_any_of("source", sorted({s for s in sources if s is not None})))
    if filter.categories and all(_SAFE_VALUE.match(c) for c in filter.categories):
        clauses.append(_any_of("category", filter.categories))
    parts = [c for c in clauses if c]
    if not parts:
        return None
    if open_only:
        parts.append("(status:2 OR status:3)")
    if since is not None:
        parts.append(f"updated_at:>'{(since - timedelta(days=1)).date().isoformat()}'")
    query = " AND ".join(parts)
    return query if len(query) <= MAX_QUERY else None


def tag_queries(tags: Iterable[str]) -> list[tuple[list[str], str]]:
    """Key tags OR-ed into queries of at most :data:`MAX_QUERY` characters, each with the
    tags it asks for."""
    out: list[tuple[list[str], str]] = []
    batch: list[str] = []

    def text(items: list[str]) -> str:
        return " OR ".join(f"tag:'{t}'" for t in items)

    for tag in tags:
        if not _TAG.match(tag):
            raise ValueError(f"not a key tag: {tag!r}")
        if batch and len(text([*batch, tag])) > MAX_QUERY:
            out.append((batch, text(batch)))
            batch = []
        batch.append(tag)
    if batch:
        out.append((batch, text(batch)))
    return out
