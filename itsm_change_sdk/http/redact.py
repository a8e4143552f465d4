"""Keep secrets out of messages, logs, reports and the ledger."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["REDACTED", "Redactor", "redact_url"]

REDACTED = "***"

# Query parameters that carry credentials on the platforms we talk to.
_SECRET_PARAMS = frozenset(
    {"secret", "token", "access_token", "refresh_token", "api_key", "apikey", "password",
     "client_secret", "code", "sig", "signature"}
)
_AUTH_RE = re.compile(r"(?i)\b(authorization|proxy-authorization)\s*[:=]\s*\S+(\s+\S+)?")


def redact_url(url: str) -> str:
    """Drop userinfo and secret query values from a URL."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    query = urlencode(
        [(k, REDACTED if k.lower() in _SECRET_PARAMS else v)
         for k, v in parse_qsl(parts.query, keep_blank_values=True)],
        safe="*",
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


class Redactor:
    """Replaces known secret values (and anything that looks like an auth header) with ``***``.

    Secrets shorter than 4 characters are ignored: replacing them would mangle ordinary text
    and they are no secret worth the name.
    """

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._secrets: set[str] = set()
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | None) -> None:
        if secret and len(secret) >= 4:
            self._secrets.add(secret)

    def __call__(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, REDACTED)
        return _AUTH_RE.sub(lambda m: f"{m.group(1)}: {REDACTED}", text)
