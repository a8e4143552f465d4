"""The event service's WSGI application: ``POST /webhooks/<platform>`` and ``GET /healthz``.

Plain WSGI, no framework: two routes do not need one, and every byte read is bounded.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from .intake import Intake

__all__ = ["DEFAULT_MAX_BODY", "ServiceApp"]

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY = 1024 * 1024
_CHUNK = 64 * 1024
_REASONS = {200: "OK", 202: "Accepted", 400: "Bad Request", 401: "Unauthorized",
            403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
            411: "Length Required", 413: "Content Too Large", 422: "Unprocessable Content",
            500: "Internal Server Error", 503: "Service Unavailable"}

StartResponse = Callable[..., Any]


def _headers(environ: Mapping[str, Any]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            name = key[5:]
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            name = key
        else:
            continue
        headers["-".join(part.capitalize() for part in name.split("_"))] = str(value)
    return headers


class ServiceApp:
    """The WSGI callable.

    :param health: returns the health document and whether the service is healthy.
    :param max_body: the largest body accepted, in bytes; more is answered with 413.
    """

    def __init__(self, intake: Intake, health: Callable[[], tuple[bool, dict[str, Any]]],
                 max_body: int = DEFAULT_MAX_BODY) -> None:
        self.intake = intake
        self.health = health
        self.max_body = max_body

    def __call__(self, environ: dict[str, Any], start_response: StartResponse
                 ) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", ""))
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        if path == "/healthz":
            if method not in ("GET", "HEAD"):
                return self._answer(start_response, 405, {"error": "use GET"}, allow="GET, HEAD")
            healthy, document = self.health()
            return self._answer(start_response, 200 if healthy else 503, document)
        parts = path.strip("/").split("/")
        if len(parts) != 2 or parts[0] != "webhooks" or not parts[1]:
            return self._answer(start_response, 404, {"error": "not found"})
        platform = parts[1]
        if not self.intake.accepts(platform):
            return self._answer(start_response, 404,
                                {"error": f"no webhook endpoint for {platform!r}"})
        if method != "POST":
            return self._answer(start_response, 405, {"error": "use POST"}, allow="POST")
        body, status, error = self._read_body(environ)
        remote = str(environ.get("REMOTE_ADDR", "-"))
        if body is None:
            log.warning("webhook %s from %s rejected (%d): %s", platform, remote, status, error)
            return self._answer(start_response, status, {"error": error}, close=True)
        query = dict(parse_qsl(str(environ.get("QUERY_STRING", "")), keep_blank_values=True))
        result = self.intake.receive(platform, _headers(environ), body, query, remote)
        return self._answer(start_response, result.status, result.body)

    def _read_body(self, environ: Mapping[str, Any]) -> tuple[bytes | None, int, str]:
        """Read at most ``max_body + 1`` bytes, honouring Content-Length."""
        raw_length = str(environ.get("CONTENT_LENGTH") or "").strip()
        stream = environ["wsgi.input"]
        limit = self.max_body + 1
        if raw_length:
            if not raw_length.isdigit():
                return None, 400, "Content-Length is not a number"
            length = int(raw_length)
            if length > self.max_body:
                return None, 413, f"the body is larger than {self.max_body} bytes"
            limit = length
        chunks: list[bytes] = []
        size = 0
        while size < limit:
            chunk = stream.read(min(_CHUNK, limit - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > self.max_body:
            return None, 413, f"the body is larger than {self.max_body} bytes"
        if raw_length and size < limit:
            return None, 400, "the body is shorter than its Content-Length"
        return b"".join(chunks), 200, ""

    @staticmethod
    def _answer(start_response: StartResponse, status: int, body: Mapping[str, Any],
                allow: str | None = None, close: bool = False) -> list[bytes]:
        data = json.dumps(body, sort_keys=True, default=str).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(data))),
                   ("Cache-Control", "no-store")]
        if allow:
            headers.append(("Allow", allow))
        if close:
            # The unread rest of an oversized body must not be taken for the next request.
            headers.append(("Connection", "close"))
        start_response(f"{status} {_REASONS.get(status, 'Error')}", headers)
        return [data]
