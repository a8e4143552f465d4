"""Every error the SDK and its plugins raise.

Plugins raise only these classes (subclassing them if they must), so a caller can handle
any platform the same way::

    ITSMError
    ├── ConfigurationError         settings or credentials missing or malformed
    ├── ProgramError               a program file that cannot be loaded or is invalid
    ├── PluginError                a plugin that cannot be loaded or broke the contract
    ├── UnsupportedOperation       the platform cannot do what was asked
    ├── WebhookRejected            a webhook request that must not be processed
    └── APIError                   a call to a platform's API failed
        ├── TransportError
        │   ├── ConnectError       the request never reached the server
        │   └── TimeoutException   no answer in time (the server may have acted)
        ├── HTTPStatusError
        │   ├── AuthenticationError  401
        │   ├── PermissionDenied     403
        │   ├── NotFound             404
        │   ├── Conflict             409
        │   ├── InvalidRequest       400, 405, 406, 410, 413, 415, 422
        │   ├── RateLimited          429
        │   └── ServerError          5xx
        └── ResponseDecodeError    the answer was not what the API documents
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = [
    "APIError",
    "AuthenticationError",
    "ConfigurationError",
    "Conflict",
    "ConnectError",
    "HTTPStatusError",
    "ITSMError",
    "InvalidRequest",
    "NotFound",
    "PermissionDenied",
    "PluginError",
    "ProgramError",
    "ProgramIssue",
    "RateLimited",
    "ResponseDecodeError",
    "ServerError",
    "TimeoutException",
    "TransportError",
    "UnsupportedOperation",
    "WebhookRejected",
    "printable",
]


_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def printable(text: str) -> str:
    """``text`` with control characters and lone surrogates written as escapes (``\\x1b``).

    Values from program files and platforms end up in messages; shown raw, an escape sequence
    would drive the terminal and a lone surrogate would crash the write.
    """
    return _UNPRINTABLE.sub(lambda match: ascii(match.group())[1:-1], text)


class ITSMError(Exception):
    """Root of every error raised by the SDK and its plugins."""


class ConfigurationError(ITSMError):
    """Settings are missing or malformed; the message says which and how to fix it."""


@dataclass(frozen=True)
class ProgramIssue:
    """One problem found in a program file."""

    path: str
    """Dotted field path, e.g. ``training.0.objectives``."""
    message: str
    line: int | None = None

    def render(self, file: str) -> str:
        where = f"{file}:{self.line}" if self.line else file
        field_part = f" {self.path}:" if self.path else ""
        return printable(f"{where}:{field_part} {self.message}")


class ProgramError(ITSMError):
    """A program file could not be loaded or failed validation.

    :ivar file: the file that was read.
    :ivar issues: every problem found, each with its field path and, where known, its line.
    """

    def __init__(self, file: str, issues: list[ProgramIssue]) -> None:
        self.file = file
        self.issues = issues
        lines = [issue.render(file) for issue in issues]
        super().__init__("\n".join(lines) if lines else f"{file}: invalid program")


class PluginError(ITSMError):
    """A plugin could not be loaded, or answered outside the hook contract."""


class UnsupportedOperation(ITSMError):
    """The platform has no way to do what was asked (e.g. a channel it lacks)."""


class WebhookRejected(ITSMError):
    """A webhook request that must not be processed.

    :ivar status: the HTTP status to answer with (400, 401, 403, 413, 422 ...).
    """

    def __init__(self, status: int, reason: str) -> None:
        self.status = status
        self.reason = reason
        super().__init__(f"{status}: {reason}")


@dataclass(eq=False)
class APIError(ITSMError):
    """A call to a platform's API failed.

    :ivar platform: the platform's name (``servicenow``, ``jira`` ...).
    :ivar method: the HTTP method.
    :ivar url: the URL, with secrets removed.
    :ivar status_code: the HTTP status, where there was an answer.
    :ivar request_id: the platform's request id header, for its support team.
    :ivar body: the start of the answer's body, with secrets removed.
    :ivar retryable: whether sending the same request again is safe and may succeed.
    """

    message: str
    platform: str = ""
    method: str = ""
    url: str = ""
    status_code: int | None = None
    request_id: str | None = None
    body: str = ""
    retryable: bool = False
    details: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        call = f"{self.method} {self.url}".strip()
        prefix = f"{self.platform}: " if self.platform else ""
        status = f" -> {self.status_code}" if self.status_code is not None else ""
        where = f" ({call}{status})" if call else ""
        extra = "".join(f"\n  - {d}" for d in self.details)
        return f"{prefix}{self.message}{where}{extra}"


class TransportError(APIError):
    """The exchange with the server failed below HTTP."""


class ConnectError(TransportError):
    """The request never reached the server; sending it again is always safe."""


class TimeoutException(TransportError):
    """No answer in time. The server may have acted: look the effect up before re-sending."""


class HTTPStatusError(APIError):
    """The server answered with an error status."""


class AuthenticationError(HTTPStatusError):
    """401: the credentials were refused. Never retried: repeated failures lock accounts."""


class PermissionDenied(HTTPStatusError):
    """403: the account lacks a role or permission the call needs."""


class NotFound(HTTPStatusError):
    """404: no such record, or the account may not see it."""


class Conflict(HTTPStatusError):
    """409: the record changed or already exists."""


class InvalidRequest(HTTPStatusError):
    """4xx other than the above: the request itself is wrong."""


@dataclass(eq=False)
class RateLimited(HTTPStatusError):
    """429: slow down.

    :ivar retry_after: seconds the platform asked us to wait, where it said.
    """

    retry_after: float | None = None


class ServerError(HTTPStatusError):
    """5xx: the platform failed."""


class ResponseDecodeError(APIError):
    """The answer could not be read as the API documents it (e.g. an HTML login page)."""
