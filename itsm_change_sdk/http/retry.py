"""The one retry policy every platform call goes through.

What is retried (stripe's order, with Atlassian's and ServiceNow's rate-limit advice):

* a connect error: the request never reached the server, so any method;
* 429: the platform refused before acting, so any method, waiting ``Retry-After``
  (a ``0`` means "soon", never "give up");
* a read timeout or 500/502/503/504: only idempotent methods (GET, PUT, DELETE ..., and a
  POST the caller marks idempotent, such as a search). One transient 500 on page 37 of a
  listing costs a retry, not the run. A create that timed out or got a 5xx may have been
  applied: :func:`create_once` looks the correlation key up before it sends again.

401 is never retried: repeated failed logins lock accounts (Jira shows a CAPTCHA).
"""

from __future__ import annotations

import email.utils
import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar
from urllib.parse import urlsplit

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_delay,
    stop_any,
    wait_exponential,
    wait_random,
)
from tenacity.stop import stop_base

from ..errors import APIError, RateLimited, ServerError, TimeoutException

__all__ = [
    "IDEMPOTENT_METHODS",
    "RetryCollapser",
    "RetryPolicy",
    "create_once",
    "parse_rate_limit_reset",
    "parse_retry_after",
]

log = logging.getLogger("itsm_change_sdk.http")

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})

T = TypeVar("T")


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date)."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now if now is not None else time.time()
    return max(0.0, when.timestamp() - current)


def parse_rate_limit_reset(value: str | None, now: float | None = None) -> float | None:
    """Seconds until a rate-limit window resets, from ``X-RateLimit-Reset``.

    ServiceNow sends a Unix timestamp, Atlassian an ISO 8601 time; small numbers are read as
    a number of seconds (as some proxies send them).
    """
    if value is None or not value.strip():
        return None
    value = value.strip()
    current = now if now is not None else time.time()
    try:
        number = float(value)
    except ValueError:
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, when.timestamp() - current)
    if number > 1_000_000_000:
        return max(0.0, number - current)
    return max(0.0, number)


def wait_hint(headers: Mapping[str, str]) -> float | None:
    """The platform's own word on how long to wait, from ``Retry-After`` or a reset header."""
    retry_after = parse_retry_after(headers.get("Retry-After"))
    if retry_after is not None:
        return retry_after
    return parse_rate_limit_reset(headers.get("X-RateLimit-Reset"))


class _StopAfterTries(stop_base):
    """Stop after ``attempts`` failures, or ``rate_limited`` 429 answers, for one call."""

    def __init__(self, attempts: int, rate_limited: int) -> None:
        self.limits = {False: attempts, True: rate_limited}
        self.tries: Counter[bool] = Counter()

    def __call__(self, state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        limited = isinstance(exc, RateLimited)
        self.tries[limited] += 1
        return self.tries[limited] >= self.limits[limited]


@dataclass
class RetryPolicy:
    """How many times and how long to retry.

    :ivar attempts: total tries including the first, not counting 429 answers.
    :ivar rate_limited_attempts: how many 429 answers one call waits out (each as long as
        the platform asks): a burst of them is the platform pacing us, not a failure, so it
        does not use up ``attempts``; ``max_total`` still bounds the whole call.
    :ivar max_wait: the longest single wait, whatever the platform asks.
    :ivar max_total: give up once this many seconds have passed.
    :ivar min_wait: the floor for a ``Retry-After: 0``.
    :ivar sleep: injectable, so tests run instantly.
    """

    attempts: int = 5
    rate_limited_attempts: int = 20
    initial_wait: float = 0.5
    max_wait: float = 60.0
    max_total: float = 300.0
    min_wait: float = 0.25
    sleep: Callable[[float], None] = field(default=time.sleep)

    def _wait(self, state: RetryCallState) -> float:
        backoff = (wait_exponential(multiplier=self.initial_wait, max=self.max_wait)
                   + wait_random(0, self.initial_wait))(state)
        exc = state.outcome.exception() if state.outcome else None
        hinted = getattr(exc, "retry_after", None)
        if hinted is not None:
            return min(self.max_wait, max(self.min_wait, float(hinted)))
        return backoff

    def retrying(self) -> Retrying:
        return Retrying(
            stop=stop_any(_StopAfterTries(self.attempts, self.rate_limited_attempts),
                          stop_after_delay(self.max_total)),
            wait=self._wait,
            retry=retry_if_exception(lambda e: isinstance(e, APIError) and e.retryable),
            reraise=True,
            before_sleep=_log_retry,
            sleep=self.sleep,
        )

    def call(self, fn: Callable[[], T]) -> T:
        return self.retrying()(fn)


def call_kind(exc: BaseException) -> str:
    """What kind of call failed, for grouping retries: platform, method and path, no query,
    no record ids (they differ per call and would defeat the grouping)."""
    if not isinstance(exc, APIError) or not exc.method:
        return type(exc).__name__
    path = re.sub(r"/(?=[^/]*\d)[^/]{4,}", "/{id}", urlsplit(exc.url).path or "/")
    return f"{exc.platform} {exc.method} {path}".strip()


def _log_retry(state: RetryCallState) -> None:
    """One short line per retry: the call's kind, why and the wait; never its payload.

    The line carries ``retry_kind`` and ``retry_reason`` so a handler can collapse repeats
    (:class:`RetryCollapser`).
    """
    exc = state.outcome.exception() if state.outcome else None
    if exc is None:
        return
    kind = call_kind(exc)
    status = getattr(exc, "status_code", None)
    reason = str(status) if status else type(exc).__name__
    wait = state.next_action.sleep if state.next_action else 0.0
    log.warning("retrying %s after %s (attempt %d, waiting %.1fs)", kind, reason,
                state.attempt_number, wait,
                extra={"retry_kind": kind, "retry_reason": reason})


class RetryCollapser(logging.Filter):
    """Lets the first retry line of each call kind through and counts the rest.

    A fault run can retry hundreds of times; :meth:`summary` says it in one line per kind.
    """

    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[str, Counter[str]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        kind = getattr(record, "retry_kind", None)
        if kind is None:
            return True
        seen = kind in self.counts
        self.counts.setdefault(kind, Counter())[str(getattr(record, "retry_reason", ""))] += 1
        return not seen

    def summary(self) -> list[str]:
        """``retried jira POST /rest/api/3/issue/bulk 37 times (429 x30, 503 x7)``, per kind
        retried more than once (a single retry was shown as it happened)."""
        lines = []
        for kind, reasons in self.counts.items():
            total = sum(reasons.values())
            if total > 1:
                why = ", ".join(f"{reason} x{count}" for reason, count in reasons.most_common())
                lines.append(f"retried {kind} {total} times ({why})")
        return lines


def is_uncertain(exc: BaseException) -> bool:
    """True when a write may have been applied although it failed."""
    if isinstance(exc, TimeoutException):
        return True
    return isinstance(exc, ServerError) and exc.status_code in {500, 502, 503, 504}


def create_once(
    send: Callable[[], T],
    lookup: Callable[[], T | None],
    policy: RetryPolicy,
) -> T:
    """Send a non-idempotent write at most once per confirmed absence.

    After an uncertain failure (a timeout or a 5xx once the request went out), ``lookup``
    searches the platform for the write's correlation key. Found: that record is the result.
    Absent: the write is sent again, within the policy's attempts.
    """
    last: BaseException | None = None
    for attempt in range(1, policy.attempts + 1):
        try:
            return policy.call(send)
        except APIError as exc:
            if not is_uncertain(exc):
                raise
            last = exc
            log.warning("write outcome unknown after %s on %s; looking it up before re-sending",
                        getattr(exc, "status_code", None) or type(exc).__name__, call_kind(exc))
            found = policy.call(lookup)
            if found is not None:
                return found
            if attempt < policy.attempts:
                policy.sleep(min(policy.max_wait, policy.initial_wait * 2**attempt))
    assert last is not None
    raise last
