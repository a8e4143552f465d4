"""One pooled session per platform client, with timeouts, retries, pacing and error mapping."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from ..errors import (
    AuthenticationError,
    Conflict,
    ConnectError,
    HTTPStatusError,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    RateLimited,
    ResponseDecodeError,
    ServerError,
    TimeoutException,
    TransportError,
)
from .pacing import Pacer, shared_limit
from .redact import Redactor, redact_url
from .retry import IDEMPOTENT_METHODS, RETRYABLE_STATUSES, RetryPolicy, wait_hint

__all__ = ["ErrorParser", "Transport", "default_error_parser"]

log = logging.getLogger("itsm_change_sdk.http")

ErrorParser = Callable[[requests.Response], tuple[str, list[str]]]

_BODY_LIMIT = 2000


def default_error_parser(response: requests.Response) -> tuple[str, list[str]]:
    """The message of an error body in the common shapes (``{"message"}``, ``{"error":
    "..."}``, ``{"error": {"message"}}``), else the HTTP reason.

    A platform plugin passes its own parser for the error body its platform documents.
    """
    reason = response.reason or f"HTTP {response.status_code}"
    try:
        body = response.json()
    except ValueError:
        return (reason, [])
    if not isinstance(body, dict):
        return (reason, [])
    error = body.get("error")
    message = error.get("message") if isinstance(error, dict) else error
    if not isinstance(message, str) or not message:
        message = body.get("message")
    return (str(message) if message else reason, [])


_STATUS_CLASSES: dict[int, type[HTTPStatusError]] = {
    401: AuthenticationError,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    429: RateLimited,
}

_HINTS: dict[type[HTTPStatusError], str] = {
    AuthenticationError: "check the credentials in the platform's settings",
    PermissionDenied: "the account lacks a role or permission this call needs; "
    "run 'itsm-change doctor' for the list",
}


class Transport:
    """Sends requests to one platform.

    :param platform: the platform's name, for messages.
    :param base_url: prefixed to relative paths.
    :param auth: a ``requests`` auth object (basic auth tuple, or a bearer-token auth that
        refreshes itself).
    :param timeout: ``(connect, read)`` seconds; every request has one.
    :param policy: the retry policy.
    :param pacer: spends the platform's rate limit evenly.
    :param secrets: values that must never appear in a message or log.
    :param error_parser: reads the platform's error body (the plugin's own).
    :param request_id_headers: where the platform puts its request id, for its support team.
    """

    def __init__(
        self,
        platform: str,
        base_url: str,
        *,
        auth: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: tuple[float, float] = (5.0, 30.0),
        policy: RetryPolicy | None = None,
        pacer: Pacer | None = None,
        secrets: list[str | None] | None = None,
        error_parser: ErrorParser = default_error_parser,
        request_id_headers: Sequence[str] = ("X-Request-Id",),
        pool_size: int = 10,
    ) -> None:
        self.platform = platform
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.policy = policy or RetryPolicy()
        self.pacer = pacer or Pacer()
        self.redact = Redactor(secrets or [])
        self.error_parser = error_parser
        self.request_id_headers = tuple(request_id_headers)
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.session.auth = auth
        self.session.headers.update({"Accept": "application/json",
                                     "User-Agent": "itsm-change-sdk"})
        if headers:
            self.session.headers.update(headers)
        self.calls = 0
        """Requests sent, including retries (for benchmarks and tests)."""

    def safe_url(self, url: str) -> str:
        """``url`` fit for a log or an error: no userinfo, secret query values or known
        secrets (a webhook URL whose path is its token)."""
        return self.redact(redact_url(url))

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | list[tuple[str, Any]] | None = None,
        json: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        retry: bool = True,
    ) -> requests.Response:
        """Send a request, retrying only what is safe to retry (see :mod:`.retry`).

        :param idempotent: overrides the method's own idempotency (e.g. a POST search is).
        :param retry: False sends once; :func:`.retry.create_once` wraps creates instead.
        """
        method = method.upper()
        safe = method in IDEMPOTENT_METHODS if idempotent is None else idempotent

        def attempt() -> requests.Response:
            return self.send_once(method, path, params=params, json=json, data=data,
                                  headers=headers, idempotent=safe)

        return self.policy.call(attempt) if retry else attempt()

    def send_once(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | list[tuple[str, Any]] | None = None,
        json: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool = False,
    ) -> requests.Response:
        """One request, with its failure mapped to an :class:`~itsm_change_sdk.errors.APIError`."""
        url = self.url(path)
        self.pacer.before_request(method, url)
        shared = shared_limit()
        if shared is not None:
            shared.acquire(self.platform, self.base_url)
        started = time.monotonic()
        self.calls += 1
        try:
            response = self.session.request(
                method, url, params=params, json=json, data=data, headers=headers,
                timeout=self.timeout,
            )
        except requests.exceptions.ConnectTimeout as exc:
            # ConnectTimeout is both a ConnectionError and a Timeout; it never reached the
            # server, so it is the safe kind.
            raise self._transport_error(ConnectError, "could not connect (timed out)", method,
                                        url, True) from exc
        except requests.exceptions.Timeout as exc:
            raise self._transport_error(TimeoutException, "no answer in time", method, url,
                                        idempotent) from exc
        except requests.exceptions.ConnectionError as exc:
            sent = "RemoteDisconnected" in repr(exc) or "reset" in repr(exc).lower()
            cls = TimeoutException if sent else ConnectError
            text = "connection lost after sending" if sent else "could not connect"
            raise self._transport_error(cls, f"{text}: {self.redact(str(exc))[:200]}", method,
                                        url, idempotent or not sent) from exc
        except requests.exceptions.RequestException as exc:
            raise self._transport_error(TransportError, self.redact(str(exc))[:200], method,
                                        url, False) from exc
        elapsed = (time.monotonic() - started) * 1000
        log.info("%s %s %s %s %.0fms", self.platform, method, self.safe_url(url),
                 response.status_code, elapsed)
        self.pacer.after_response(response.headers, response.status_code)
        if response.status_code >= 400:
            raise self._status_error(response, method, url, idempotent)
        return response

    def json(self, response: requests.Response) -> Any:
        """The response body as JSON, or a clear error when it is not (an HTML login page)."""
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            kind = response.headers.get("Content-Type", "unknown")
            raise ResponseDecodeError(
                f"expected JSON but got {kind}; is the URL right and the account an API user?",
                platform=self.platform,
                method=response.request.method or "",
                url=self.safe_url(response.url),
                status_code=response.status_code,
                body=self.redact(response.text[:_BODY_LIMIT]),
            ) from exc

    def get_json(self, path: str, **kwargs: Any) -> Any:
        return self.json(self.request("GET", path, **kwargs))

    def close(self) -> None:
        self.session.close()

    # -- error mapping --------------------------------------------------------------------

    def _transport_error(
        self, cls: type[TransportError], message: str, method: str, url: str, retryable: bool
    ) -> TransportError:
        return cls(message, platform=self.platform, method=method, url=self.safe_url(url),
                   retryable=retryable)

    def _status_error(
        self, response: requests.Response, method: str, url: str, idempotent: bool
    ) -> HTTPStatusError:
        status = response.status_code
        message, details = self.error_parser(response)
        cls: type[HTTPStatusError]
        if status in _STATUS_CLASSES:
            cls = _STATUS_CLASSES[status]
        elif status >= 500:
            cls = ServerError
        else:
            cls = InvalidRequest
        retryable = status == 429 or (status in RETRYABLE_STATUSES and idempotent)
        hint = _HINTS.get(cls)
        if hint:
            details = [*details, hint]
        body = response.text[:_BODY_LIMIT] if response.content else ""
        request_id = next(
            (response.headers[h] for h in self.request_id_headers if h in response.headers),
            None
        )
        kwargs: dict[str, Any] = dict(
            platform=self.platform,
            method=method,
            url=self.safe_url(url),
            status_code=status,
            request_id=request_id,
            body=self.redact(body),
            retryable=retryable,
            details=[self.redact(d) for d in details],
        )
        message = self.redact(message)
        if cls is RateLimited:
            return RateLimited(message, retry_after=wait_hint(response.headers), **kwargs)
        error = cls(message, **kwargs)
        if status == 503 and "Retry-After" in response.headers:
            # Atlassian sends Retry-After on some 503s; honour it like a 429's.
            error.retry_after = wait_hint(response.headers)  # type: ignore[attr-defined]
        return error

