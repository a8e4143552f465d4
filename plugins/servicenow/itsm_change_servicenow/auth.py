"""Credentials for the Table API: basic auth, or OAuth 2.0 bearer tokens from ``/oauth_token.do``.

The token endpoint takes form-encoded bodies only (a JSON body yields "an unspecified
error"). A token is renewed a minute before it expires; the password grant renews with its
refresh token and falls back to the password when the refresh token is refused.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import requests
from requests.auth import AuthBase, HTTPBasicAuth

from itsm_change_sdk.errors import (
    AuthenticationError,
    ConfigurationError,
    InvalidRequest,
    ResponseDecodeError,
)
from itsm_change_sdk.http import Transport

from .settings import SETTINGS

__all__ = ["AUTH_MODES", "OAuthTokenAuth", "build_auth"]

AUTH_MODES = ("basic", "oauth_password", "oauth_client_credentials")
TOKEN_PATH = "/oauth_token.do"
REFRESH_MARGIN = 60.0


@dataclass
class _Token:
    access: str
    expires_at: float
    refresh: str | None = None


class OAuthTokenAuth(AuthBase):
    """A ``requests`` auth object that adds ``Authorization: Bearer`` and renews the token.

    :param transport: sends the token requests (its redactor knows every secret).
    :param grant: ``password`` or ``client_credentials``.
    """

    def __init__(
        self,
        transport: Transport,
        *,
        grant: str,
        client_id: str,
        client_secret: str,
        username: str | None = None,
        password: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._transport = transport
        self._grant = grant
        self._client_id = client_id
        self._client_secret = client_secret
        self._username = username
        self._password = password
        self._clock = clock
        self._token: _Token | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"OAuthTokenAuth(grant={self._grant!r}, client_id={self._client_id!r})"

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.access_token()}"
        return request

    def access_token(self) -> str:
        with self._lock:
            token = self._token
            if token is None or self._clock() >= token.expires_at - REFRESH_MARGIN:
                token = self._renew(token)
                self._token = token
            return token.access

    def _renew(self, current: _Token | None) -> _Token:
        if current is not None and current.refresh and self._grant == "password":
            try:
                return self._request({"grant_type": "refresh_token",
                                      "refresh_token": current.refresh}, current.refresh)
            except (AuthenticationError, InvalidRequest):
                pass
        if self._grant == "password":
            return self._request({"grant_type": "password", "username": self._username or "",
                                  "password": self._password or ""}, None)
        return self._request({"grant_type": "client_credentials"}, None)

    def _request(self, form: dict[str, str], old_refresh: str | None) -> _Token:
        data = {**form, "client_id": self._client_id, "client_secret": self._client_secret}
        try:
            response = self._transport.request(
                "POST", TOKEN_PATH, data=data,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                idempotent=True,
            )
        except InvalidRequest as exc:
            # ServiceNow answers a refused grant with 400/401 and {"error": "access_denied"}.
            raise AuthenticationError(
                "the OAuth token request was refused; check client_id, client_secret and the "
                "user (for client credentials: the OAuth Application User and the property "
                "glide.oauth.inbound.client.credential.grant_type.enabled)",
                platform=exc.platform, method=exc.method, url=exc.url,
                status_code=exc.status_code, body=exc.body,
            ) from exc
        body = self._transport.json(response)
        if not isinstance(body, dict) or not body.get("access_token"):
            raise ResponseDecodeError(
                "the token endpoint answered without an access_token",
                platform=self._transport.platform, method="POST", url=TOKEN_PATH,
                status_code=response.status_code,
            )
        access = str(body["access_token"])
        refresh = body.get("refresh_token") or old_refresh
        self._transport.redact.add(access)
        if refresh:
            self._transport.redact.add(str(refresh))
        try:
            lifetime = float(body.get("expires_in", 1800))
        except (TypeError, ValueError):
            lifetime = 1800.0
        return _Token(access, self._clock() + lifetime, str(refresh) if refresh else None)


def build_auth(
    mode: str,
    *,
    transport_factory: Callable[[], Transport],
    username: str | None,
    password: str | None,
    client_id: str | None,
    client_secret: str | None,
    clock: Callable[[], float] = time.time,
) -> AuthBase:
    """The auth object for ``mode``; a missing credential is a :class:`ConfigurationError`."""

    def need(value: str | None, key: str) -> str:
        if not value:
            raise SETTINGS.error(key, f"is needed with auth={mode}")
        return value

    if mode == "basic":
        return HTTPBasicAuth(need(username, "username"), need(password, "password"))
    if mode == "oauth_password":
        return OAuthTokenAuth(transport_factory(), grant="password",
                              client_id=need(client_id, "client_id"),
                              client_secret=need(client_secret, "client_secret"),
                              username=need(username, "username"),
                              password=need(password, "password"), clock=clock)
    if mode == "oauth_client_credentials":
        return OAuthTokenAuth(transport_factory(), grant="client_credentials",
                              client_id=need(client_id, "client_id"),
                              client_secret=need(client_secret, "client_secret"), clock=clock)
    raise ConfigurationError(
        f"servicenow: auth={mode!r} is not one of {', '.join(AUTH_MODES)}"
    )
