"""Credentials: API token (basic) or OAuth 2.0 (3LO) with rotating refresh tokens.

Atlassian rotates the refresh token on every refresh, and the old one stops working. The new
one is written to the token store (a temporary file renamed over the old one, mode 0600)
*before* the new access token is used, so a crash in between never loses the only valid
refresh token.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
from requests.auth import AuthBase

from itsm_change_sdk.errors import ConfigurationError
from itsm_change_sdk.http import Transport

__all__ = ["TOKEN_URL", "BearerAuth", "OAuthTokens", "TokenStore"]

TOKEN_URL = "https://auth.atlassian.com/oauth/token"
API_GATEWAY = "https://api.atlassian.com/ex/jira"


class TokenStore:
    """A JSON file holding the current refresh token, replaced atomically."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()

    def __repr__(self) -> str:
        return f"TokenStore({str(self.path)!r})"

    def load(self) -> str | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise ConfigurationError(
                f"jira: cannot read the token store {self.path}: {exc.__class__.__name__}; "
                "fix or delete it and set a fresh refresh_token"
            ) from exc
        token = data.get("refresh_token") if isinstance(data, dict) else None
        return str(token) if token else None

    def save(self, refresh_token: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".jira-token-", dir=self.path.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump({"refresh_token": refresh_token, "saved_at": int(time.time())}, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise


class OAuthTokens:
    """Holds the access token and refreshes it (once per expiry or refused token)."""

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        refresh_token: str | None,
        access_token: str | None,
        store: TokenStore | None,
        transport: Transport,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client_id = client_id
        self._client_secret = client_secret
        self._store = store
        stored = store.load() if store else None
        self._refresh_token = stored or refresh_token
        self._access_token = access_token
        self._expires_at: float | None = None
        self._transport = transport
        self._clock = clock
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"OAuthTokens(client_id={self.client_id!r}, store={self._store!r})"

    def secrets(self) -> list[str | None]:
        return [self._client_secret, self._refresh_token, self._access_token]

    def access_token(self) -> str:
        with self._lock:
            expired = self._expires_at is not None and self._clock() >= self._expires_at - 60
            if not self._access_token or expired:
                self._refresh_locked()
            assert self._access_token
            return self._access_token

    def refresh(self, refused: str | None = None) -> None:
        """Refresh, unless another thread already replaced the ``refused`` token."""
        with self._lock:
            if refused is not None and self._access_token != refused:
                return
            self._refresh_locked()

    def _refresh_locked(self) -> None:
        if not self._refresh_token:
            raise ConfigurationError(
                "jira: the OAuth access token expired and no refresh_token is set; authorise "
                "the app again (with the offline_access scope) and set refresh_token"
            )
        response = self._transport.request(
            "POST",
            TOKEN_URL,
            json={
                "grant_type": "refresh_token",
                "client_id": self.client_id,
                "client_secret": self._client_secret,
                "refresh_token": self._refresh_token,
            },
            idempotent=False,
        )
        body: Any = self._transport.json(response)
        if not isinstance(body, dict) or not body.get("access_token"):
            raise ConfigurationError("jira: the OAuth token endpoint answered without a token")
        new_refresh = body.get("refresh_token")
        for value in (body["access_token"], new_refresh):
            self._transport.redact.add(value)
        if new_refresh and new_refresh != self._refresh_token:
            if self._store is not None:
                self._store.save(str(new_refresh))
            self._refresh_token = str(new_refresh)
        self._access_token = str(body["access_token"])
        expires_in = body.get("expires_in")
        self._expires_at = self._clock() + float(expires_in) if expires_in else None


class BearerAuth(AuthBase):
    """Adds ``Authorization: Bearer`` from :class:`OAuthTokens` to each request."""

    def __init__(self, tokens: OAuthTokens) -> None:
        self.tokens = tokens

    def __repr__(self) -> str:
        return "BearerAuth(***)"

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.tokens.access_token()}"
        return request
