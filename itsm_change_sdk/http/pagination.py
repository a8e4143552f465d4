"""Lazy pagination: pages are fetched as the caller iterates, never collected into a list.

A failure mid-stream (after retries) raises where it happened; what was yielded before stays
with the caller, who can resume from its own cursor (the updated-since read).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

from .transport import Transport

__all__ = ["paginate_link", "paginate_offset", "paginate_token"]

T = TypeVar("T")


def paginate_offset(fetch: Callable[[int], tuple[list[T], bool]]) -> Iterator[T]:
    """``fetch(start) -> (items, is_last)`` from offset 0 (Jira's ``startAt`` pages)."""
    start = 0
    while True:
        items, last = fetch(start)
        yield from items
        if last or not items:
            return
        start += len(items)


def paginate_token(fetch: Callable[[str | None], tuple[list[T], str | None]]) -> Iterator[T]:
    """``fetch(token) -> (items, next_token)`` until no token comes back."""
    token: str | None = None
    seen: set[str] = set()
    while True:
        items, token = fetch(token)
        yield from items
        if not token or token in seen:
            return
        seen.add(token)


def paginate_link(
    transport: Transport,
    path: str,
    *,
    params: Mapping[str, Any] | None,
    extract: Callable[[Any], list[T]],
    max_pages: int | None = None,
) -> Iterator[T]:
    """Follow the ``Link: <...>; rel="next"`` header (ServiceNow, Freshservice).

    The next URL already carries the query, so ``params`` go on the first request only.
    """
    url: str | None = path
    first = True
    pages = 0
    while url:
        response = transport.request("GET", url, params=params if first else None)
        first = False
        pages += 1
        yield from extract(transport.json(response))
        next_link = response.links.get("next", {}).get("url")
        url = next_link if next_link and next_link != response.url else None
        if max_pages is not None and pages >= max_pages:
            return
