"""Spending a platform's rate limit evenly instead of running into 429s.

Two shapes cover the platforms we talk to:

* :class:`BudgetPacer` reads the remaining budget the platform reports after each call
  (Freshservice's ``X-Ratelimit-Remaining`` per minute, ServiceNow's per-hour rule headers)
  and spreads what is left over the rest of the window.
* :class:`KeyedLimiter` caps calls per key in a sliding window (Jira allows about 20 writes
  per 2 seconds to one issue).

Both pace one process. Where several processes call the same platform instance (Celery
workers), :func:`use_shared_limit` installs a budget they all draw from (see
:mod:`itsm_change_sdk.cluster.ratelimit`); without one, each process paces alone.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from .retry import parse_rate_limit_reset

__all__ = ["BudgetPacer", "KeyedLimiter", "Pacer", "SharedLimit", "shared_limit",
           "use_shared_limit"]


class SharedLimit(Protocol):
    """A rate limit shared by every process that calls a platform instance."""

    def acquire(self, platform: str, base_url: str) -> None:
        """Wait until one more call to this instance fits its budget, then take it."""


_shared: SharedLimit | None = None


def use_shared_limit(limit: SharedLimit | None) -> None:
    """Make every :class:`~itsm_change_sdk.http.Transport` of this process draw from
    ``limit`` before each request (None: back to pacing alone)."""
    global _shared
    _shared = limit


def shared_limit() -> SharedLimit | None:
    return _shared


class Pacer:
    """Does nothing; the interface the transport calls around every request."""

    def before_request(self, method: str, url: str) -> None:
        """Called before each request; may sleep."""

    def after_response(self, headers: Mapping[str, str], status: int) -> None:
        """Called with each response's headers."""


def _int_header(headers: Mapping[str, str], name: str | None) -> int | None:
    if not name:
        return None
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(float(value))
    except ValueError:
        return None


@dataclass
class BudgetPacer(Pacer):
    """Paces requests from the remaining budget a platform reports in its headers.

    While more than ``slow_below`` of the budget is left, requests go at full speed. Below
    that, each request waits ``time left in window / calls left``; at ``reserve`` calls left
    it waits for the window to reset. Without a reset header the window is assumed to start
    when the reported remaining budget goes up.
    """

    remaining_header: str
    total_header: str | None = None
    reset_header: str | None = None
    window: float = 60.0
    slow_below: float = 0.2
    reserve: int = 1
    clock: Callable[[], float] = time.monotonic
    wall_clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    _remaining: int | None = field(default=None, init=False)
    _total: int | None = field(default=None, init=False)
    _window_end: float | None = field(default=None, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    @property
    def remaining(self) -> int | None:
        return self._remaining

    def delay(self) -> float:
        """Seconds to wait before the next request, from what is known now."""
        with self._lock:
            if self._remaining is None:
                return 0.0
            now = self.clock()
            if self._window_end is None or now >= self._window_end:
                return 0.0
            left = self._window_end - now
            if self._remaining <= self.reserve:
                return left
            total = self._total or 0
            if total and self._remaining > total * self.slow_below:
                return 0.0
            return left / self._remaining

    def before_request(self, method: str, url: str) -> None:
        wait = self.delay()
        if wait > 0:
            self.sleep(wait)

    def after_response(self, headers: Mapping[str, str], status: int) -> None:
        remaining = _int_header(headers, self.remaining_header)
        if remaining is None:
            return
        now = self.clock()
        with self._lock:
            total = _int_header(headers, self.total_header)
            if total is not None:
                self._total = total
            reset_in = parse_rate_limit_reset(
                headers.get(self.reset_header) if self.reset_header else None,
                now=self.wall_clock(),
            )
            if reset_in is not None:
                self._window_end = now + reset_in
            elif (
                self._window_end is None
                or now >= self._window_end
                or (self._remaining is not None and remaining > self._remaining)
            ):
                self._window_end = now + self.window
            self._remaining = remaining


@dataclass
class KeyedLimiter:
    """At most ``limit`` calls per ``per`` seconds for each key (e.g. per Jira issue)."""

    limit: int
    per: float
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _calls: dict[str, deque[float]] = field(default_factory=dict, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def acquire(self, key: str) -> None:
        while True:
            with self._lock:
                now = self.clock()
                calls = self._calls.setdefault(key, deque())
                while calls and now - calls[0] >= self.per:
                    calls.popleft()
                if len(calls) < self.limit:
                    calls.append(now)
                    return
                wait = self.per - (now - calls[0])
            self.sleep(max(wait, 0.001))
