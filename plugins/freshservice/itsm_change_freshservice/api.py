"""The thin endpoint layer over Freshservice API v2: paths, pagination and rate pacing.

Freshservice has no bulk endpoint: every record is one call. The account's per-minute budget
is read from ``X-Ratelimit-Remaining`` after each call and spread over the rest of the minute
(:class:`~itsm_change_sdk.http.BudgetPacer`); the lower per-endpoint sub-limits (list
tickets 40/min on Starter ...) are kept with a sliding window per endpoint class when the
plan is known, and a 429's ``Retry-After`` is honoured either way.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import requests

from itsm_change_sdk.errors import ConfigurationError, ResponseDecodeError
from itsm_change_sdk.http import (
    BudgetPacer,
    KeyedLimiter,
    Pacer,
    Transport,
    default_error_parser,
    paginate_link,
    paginate_token,
)

__all__ = ["PLAN_LIMITS", "FreshserviceAPI", "FreshservicePacer", "endpoint_class", "error_body"]

log = logging.getLogger(__name__)

PLAN_LIMITS: dict[str, dict[str, int]] = {
    "starter": {"total": 100, "list_tickets": 40, "ticket": 50, "list_agents": 40},
    "growth": {"total": 200, "list_tickets": 70, "ticket": 80, "list_agents": 70},
    "pro": {"total": 400, "list_tickets": 120, "ticket": 140, "list_agents": 120},
    "enterprise": {"total": 500, "list_tickets": 140, "ticket": 160, "list_agents": 140},
}
_PLAN_ALIASES = {"blossom": "starter", "garden": "growth", "estate": "pro", "forest": "enterprise",
                 "msp": "growth", "msp core": "growth"}

FILTER_PAGES = 10
"""The ticket filter endpoint answers pages 1 to 10; page 11 is a 400."""
FILTER_PAGE_SIZE = 30
"""Tickets a filter page holds (the endpoint takes no ``per_page``)."""
EARLIEST = date(2000, 1, 1)
"""Where a filter split by update day starts when there is no cursor."""
_TICKET_LIST = re.compile(r"/api/v2/tickets/?(?:filter/?)?$")
_TICKET_ONE = re.compile(r"/api/v2/tickets/\d+/?$")
_AGENT_LIST = re.compile(r"/api/v2/(?:agents|requesters)/?$")


def endpoint_class(method: str, url: str) -> str | None:
    """The sub-limit an endpoint counts against (FS-RL table), or None for the total only."""
    path = url.split("?", 1)[0]
    if method == "GET" and _TICKET_LIST.search(path):
        return "list_tickets"
    if _TICKET_ONE.search(path) or (method == "POST" and path.rstrip("/").endswith("/tickets")):
        return "ticket"
    if method == "GET" and _AGENT_LIST.search(path):
        return "list_agents"
    return None


def plan_limits(plan: str | None) -> dict[str, int] | None:
    if not plan:
        return None
    name = plan.strip().lower()
    name = _PLAN_ALIASES.get(name, name)
    if name not in PLAN_LIMITS:
        raise ConfigurationError(
            f"freshservice: plan {plan!r} is unknown; use one of starter, growth, pro, "
            "enterprise (or leave it unset to pace from the response headers only)"
        )
    return PLAN_LIMITS[name]


@dataclass
class FreshservicePacer(Pacer):
    """The account budget from the headers, plus a per-minute window per endpoint class."""

    budget: BudgetPacer
    sub_limits: Mapping[str, int] = field(default_factory=dict)
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _limiters: dict[str, KeyedLimiter] = field(default_factory=dict, init=False)

    def before_request(self, method: str, url: str) -> None:
        name = endpoint_class(method, url)
        if name and name in self.sub_limits:
            limiter = self._limiters.get(name)
            if limiter is None:
                limiter = KeyedLimiter(self.sub_limits[name], 60.0, clock=self.clock,
                                       sleep=self.sleep)
                self._limiters[name] = limiter
            limiter.acquire(name)
        self.budget.before_request(method, url)

    def after_response(self, headers: Mapping[str, str], status: int) -> None:
        self.budget.after_response(headers, status)


def make_pacer(
    plan: str | None,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> FreshservicePacer:
    limits = plan_limits(plan) or {}
    budget = BudgetPacer(
        remaining_header="X-Ratelimit-Remaining",
        total_header="X-Ratelimit-Total",
        window=60.0,
        clock=clock,
        sleep=sleep,
    )
    subs = {k: v for k, v in limits.items() if k != "total"}
    return FreshservicePacer(budget=budget, sub_limits=subs, clock=clock, sleep=sleep)


def _items(body: Any, *names: str) -> list[dict[str, Any]]:
    if isinstance(body, Mapping):
        for name in names:
            value = body.get(name)
            if isinstance(value, list):
                return [item for item in value if isinstance(item, dict)]
    raise ResponseDecodeError(
        f"expected a JSON object with {' or '.join(names)}", platform="freshservice"
    )


def _one(body: Any, name: str) -> dict[str, Any]:
    if isinstance(body, Mapping) and isinstance(body.get(name), dict):
        return dict(body[name])
    raise ResponseDecodeError(f"expected a JSON object with {name}", platform="freshservice")


class FreshserviceAPI:
    """One method per endpoint; list methods are lazy generators over pages."""

    def __init__(self, transport: Transport, *, page_size: int = 100,
                 workspace_id: str | None = None) -> None:
        self.transport = transport
        self.page_size = page_size
        self.workspace_id = workspace_id

    def _params(self, **params: Any) -> dict[str, Any]:
        out = {k: v for k, v in params.items() if v is not None}
        if self.workspace_id is not None:
            out.setdefault("workspace_id", self.workspace_id)
        return out

    def _list(self, path: str, names: tuple[str, ...], **params: Any) -> Iterator[dict[str, Any]]:
        return paginate_link(
            self.transport, path,
            params=self._params(per_page=self.page_size, **params),
            extract=lambda body: _items(body, *names),
        )

    def _create(self, path: str, payload: Mapping[str, Any], name: str) -> dict[str, Any]:
        """A POST sent once: the caller resolves an uncertain failure by lookup."""
        return _one(self.transport.json(self.transport.send_once("POST", path, json=payload)),
                    name)

    def _update(self, path: str, payload: Mapping[str, Any], name: str) -> dict[str, Any]:
        return _one(self.transport.json(self.transport.request("PUT", path, json=payload)), name)

    # -- agents and groups ---------------------------------------------------------------

    def agents(self, **params: Any) -> Iterator[dict[str, Any]]:
        return self._list("/api/v2/agents", ("agents",), **params)

    def agent_groups(self) -> Iterator[dict[str, Any]]:
        # FSSPEC names the list "departments" (a copy-paste slip); the API docs say groups.
        return self._list("/api/v2/agent_groups", ("agent_groups", "groups", "departments"))

    def ticket_fields(self) -> list[dict[str, Any]]:
        """``GET /api/v2/ticket_form_fields``: the ticket form's fields with their choices."""
        body = self.transport.get_json("/api/v2/ticket_form_fields", params=self._params())
        return _items(body, "ticket_fields")

    def requester_groups(self) -> Iterator[dict[str, Any]]:
        return self._list("/api/v2/requester_groups", ("requester_groups",))

    def requester_group_members(self, group_id: int) -> Iterator[dict[str, Any]]:
        return self._list(f"/api/v2/requester_groups/{group_id}/members", ("requesters",))

    # -- tickets ---------------------------------------------------------------------------

    def tickets(self, *, updated_since: str, include: str | None = None,
                **params: Any) -> Iterator[dict[str, Any]]:
        """Tickets updated since, oldest first. ``updated_since`` is required: without it the
        list holds only tickets created in the last 30 days."""
        return self._list("/api/v2/tickets", ("tickets",), updated_since=updated_since,
                          order_type="asc", include=include, **params)

    def filter_tickets(self, query: str, since: date | None = None
                       ) -> Iterator[dict[str, Any]]:
        """``GET /tickets/filter``: paged by ``page`` with ``total`` in the body, no Link.

        The endpoint answers pages 1 to :data:`FILTER_PAGES` only (page 11 is a 400). When
        more tickets match, the query is split by update day, halving the window from
        ``since`` (or :data:`EARLIEST`) to tomorrow until each part fits; overlapping edges
        are read twice and each ticket given once. A single day with more matches than ten
        pages hold is read through the ticket list from that day (see :meth:`_day_from_list`),
        never the whole ticket list.
        """
        items, total = self._filter_page(query, 1)
        if total is None or total <= FILTER_PAGES * FILTER_PAGE_SIZE:
            yield from self._filter_pages(query, items, total)
            return
        seen: set[Any] = set()
        first = since or EARLIEST
        # To tomorrow, or a year on where ``since`` is later (a rehearsal's future dates).
        last = max(datetime.now(UTC).date(), first + timedelta(days=365)) + timedelta(days=1)
        for ticket in self._filter_window(query, first, last):
            if ticket.get("id") not in seen:
                seen.add(ticket.get("id"))
                yield ticket

    def _filter_page(self, query: str, page: int) -> tuple[list[dict[str, Any]], int | None]:
        body = self.transport.get_json(
            "/api/v2/tickets/filter", params=self._params(query=f'"{query}"', page=page))
        total = body.get("total") if isinstance(body, Mapping) else None
        return _items(body, "tickets"), total if isinstance(total, int) else None

    def _filter_pages(self, query: str, first: list[dict[str, Any]], total: int | None
                      ) -> Iterator[dict[str, Any]]:
        seen = 0

        def fetch(page: str | None) -> tuple[list[dict[str, Any]], str | None]:
            nonlocal seen, total
            number = int(page or 1)
            items = first if number == 1 else None
            if items is None:
                items, total = self._filter_page(query, number)
            seen += len(items)
            if not items or number >= FILTER_PAGES or (total is not None and seen >= total):
                return items, None
            return items, str(number + 1)

        return paginate_token(fetch)

    def _filter_window(self, query: str, first: date, last: date
                       ) -> Iterator[dict[str, Any]]:
        """Tickets matching ``query`` updated from ``first`` to ``last`` (days, inclusive)."""
        windowed = (f"({query}) AND updated_at:>'{(first - timedelta(days=1)).isoformat()}'"
                    f" AND updated_at:<'{(last + timedelta(days=1)).isoformat()}'")
        items, total = self._filter_page(windowed, 1)
        if total is None or total <= FILTER_PAGES * FILTER_PAGE_SIZE:
            yield from self._filter_pages(windowed, items, total)
        elif first < last:
            middle = first + (last - first) // 2
            yield from self._filter_window(query, first, middle)
            yield from self._filter_window(query, middle + timedelta(days=1), last)
        else:
            yield from self._day_from_list(first)

    def _day_from_list(self, day: date) -> Iterator[dict[str, Any]]:
        """One update day holds more matches than the filter endpoint's ten pages and the
        filter query has no finer time than a day: read that day through the ticket list
        (``updated_since`` takes a time; it has no page cap), keeping the tickets updated
        that day. The caller applies the prompt's filter to them. This reads the tickets
        changed since that day, never the whole list."""
        log.info("freshservice: more than %d filter matches updated on %s; reading that day "
                 "from the ticket list", FILTER_PAGES * FILTER_PAGE_SIZE, day.isoformat())
        for ticket in self.tickets(updated_since=f"{day.isoformat()}T00:00:00Z"):
            updated = str(ticket.get("updated_at") or "")
            if updated[:10] == day.isoformat():
                yield ticket

    def ticket(self, ticket_id: int, include: str | None = None) -> dict[str, Any]:
        params = self._params(include=include)
        return _one(self.transport.get_json(f"/api/v2/tickets/{ticket_id}",
                                            params=params or None), "ticket")

    def create_ticket(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        return self._create("/api/v2/tickets", payload, "ticket")

    def update_ticket(self, ticket_id: int, payload: Mapping[str, Any]) -> dict[str, Any]:
        return self._update(f"/api/v2/tickets/{ticket_id}", payload, "ticket")

    # -- conversations and tasks -----------------------------------------------------------

    def conversations(self, ticket_id: int) -> Iterator[dict[str, Any]]:
        return self._list(f"/api/v2/tickets/{ticket_id}/conversations", ("conversations",))

    def create_note(self, ticket_id: int, payload: Mapping[str, Any]) -> dict[str, Any]:
        return self._create(f"/api/v2/tickets/{ticket_id}/notes", payload, "conversation")

    def tasks(self, ticket_id: int) -> Iterator[dict[str, Any]]:
        return self._list(f"/api/v2/tickets/{ticket_id}/tasks", ("tasks",))

    def update_note(self, ticket_id: int, conversation_id: int,
                    payload: Mapping[str, Any]) -> dict[str, Any]:
        return self._update(f"/api/v2/tickets/{ticket_id}/conversations/{conversation_id}",
                            payload, "conversation")

    def create_task(self, ticket_id: int, payload: Mapping[str, Any]) -> dict[str, Any]:
        return self._create(f"/api/v2/tickets/{ticket_id}/tasks", payload, "task")

    def update_task(self, ticket_id: int, task_id: int,
                    payload: Mapping[str, Any]) -> dict[str, Any]:
        return self._update(f"/api/v2/tickets/{ticket_id}/tasks/{task_id}", payload, "task")

    def csat_response(self, ticket_id: int) -> dict[str, Any] | None:
        body = self.transport.get_json(f"/api/v2/tickets/{ticket_id}/csat_response")
        if isinstance(body, Mapping) and isinstance(body.get("csat_response"), dict):
            return dict(body["csat_response"])
        return None

    # -- announcements ---------------------------------------------------------------------

    def announcements(self, state: str | None = None) -> Iterator[dict[str, Any]]:
        return self._list("/api/v2/announcements", ("announcements",), state=state)

    def create_announcement(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        return self._create("/api/v2/announcements", payload, "announcement")

    def update_announcement(self, announcement_id: int,
                            payload: Mapping[str, Any]) -> dict[str, Any]:
        return self._update(f"/api/v2/announcements/{announcement_id}", payload, "announcement")


def error_body(response: requests.Response) -> tuple[str, list[str]]:
    """Freshservice's error bodies: ``{"description", "errors": [{"field", "message",
    "code"}]}`` for a refused request, ``{"code", "message"}`` for a refused login or right."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, Mapping):
        return default_error_parser(response)
    details: list[str] = []
    for item in body.get("errors") or []:
        if isinstance(item, Mapping):
            label = f"{item['field']}: " if item.get("field") else ""
            suffix = f" ({item['code']})" if item.get("code") else ""
            details.append(f"{label}{item.get('message', '')}{suffix}".strip())
    message = str(body.get("description") or body.get("message") or "")
    if not message and details:
        message = details.pop(0)
    if not message:
        return default_error_parser(response)
    return message, details
