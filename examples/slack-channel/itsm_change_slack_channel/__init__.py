"""A ``slack`` channel: a program's communication posted to a Slack channel.

It uses a Slack *incoming webhook* (https://api.slack.com/messaging/webhooks): one URL per
channel, created in the Slack app's settings, that accepts a JSON message and answers
``ok``. The URL carries its own token, so it is a secret.

An incoming webhook can only post: it cannot edit a message or find one again. So a
communication already posted is left as it is when the program edits it (the next
occurrence carries the new text), and after a lost answer the message is posted again
(at least once, never silently lost).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import requests

from itsm_change_sdk.config import http_timeout
from itsm_change_sdk.errors import (
    APIError,
    AuthenticationError,
    ConfigurationError,
    NotFound,
    PermissionDenied,
)
from itsm_change_sdk.hookspecs import hookimpl
from itsm_change_sdk.http.retry import is_uncertain
from itsm_change_sdk.http.transport import Transport
from itsm_change_sdk.model import Addressing, Effect, EffectRef, EffectResult
from itsm_change_sdk.plugins import ChannelRegistry

__all__ = ["CHANNEL_NAME", "SlackChannel", "message_payload"]

CHANNEL_NAME = "slack"
SETTINGS = ("webhook_url", "timeout")
SECRETS = ("webhook_url",)
WEBHOOK_PREFIX = "https://hooks.slack.com/"
HEADER_LIMIT = 150
"""Slack's limit on a header block's text."""
SECTION_LIMIT = 3000
"""Slack's limit on a section block's text."""
MAX_SECTIONS = 45
"""A message holds at most 50 blocks: the header, the context and the body's sections."""


DEAD_WEBHOOK = (AuthenticationError, PermissionDenied, NotFound)
"""Answers after which no message can go through (a 410 ``channel_is_archived`` too)."""


def _escape(text: str) -> str:
    """The three characters Slack's ``text`` field reads as markup, escaped as Slack says."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _chunks(text: str, size: int) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)] or [" "]


def message_payload(effect: Effect) -> dict[str, Any]:
    """The message for one communication: a header, the body as plain text (never markup),
    and a context line naming the audience and the correlation key. ``text`` is what
    notifications and screen readers show."""
    sections = _chunks(effect.body, SECTION_LIMIT)[:MAX_SECTIONS]
    audience = ", ".join(effect.audience_groups) or "everyone in the program"
    return {
        "text": _escape(f"{effect.title}: {effect.body}")[:SECTION_LIMIT],
        "blocks": [
            {"type": "header",
             "text": {"type": "plain_text", "text": effect.title[:HEADER_LIMIT]}},
            *({"type": "section", "text": {"type": "plain_text", "text": part}}
              for part in sections),
            {"type": "context", "elements": [
                {"type": "plain_text", "text": f"For {audience} · {effect.key}"}]},
        ],
        "unfurl_links": False,
        "unfurl_media": False,
    }


def slack_error(response: requests.Response) -> tuple[str, list[str]]:
    """Slack answers errors as a short plain-text code (``invalid_payload``, ``no_service``,
    ``channel_is_archived`` ...)."""
    code = response.text.strip()[:200]
    return (code or response.reason or f"HTTP {response.status_code}", [])


class SlackChannel:
    """Posts communications to one Slack incoming webhook."""

    def __init__(self, webhook_url: str, *, timeout: tuple[float, float] = (5.0, 30.0),
                 transport: Transport | None = None) -> None:
        if not webhook_url.startswith(WEBHOOK_PREFIX):
            raise ConfigurationError(
                f"slack: webhook_url must be a Slack incoming-webhook URL starting with "
                f"{WEBHOOK_PREFIX} (set ITSM_CHANGE_SLACK_WEBHOOK_URL or [platforms.slack] "
                "webhook_url in the config file)")
        self.webhook_url = webhook_url
        self.transport = transport or Transport(
            CHANNEL_NAME, WEBHOOK_PREFIX, timeout=timeout, secrets=[webhook_url],
            error_parser=slack_error, headers={"Content-Type": "application/json"})

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> SlackChannel:
        url = settings.get("webhook_url")
        if not url:
            raise ConfigurationError(
                "slack: no webhook_url; create an incoming webhook in your Slack app and set "
                "ITSM_CHANGE_SLACK_WEBHOOK_URL (or [platforms.slack] webhook_url)")
        return cls(str(url), timeout=http_timeout(CHANNEL_NAME, settings))

    def deliver(self, effects: Sequence[Effect], known: Mapping[str, EffectRef]
                ) -> list[EffectResult]:
        """Post each new communication once; one already posted is left as it is."""
        return [EffectResult(effect.key, True, ref=known[effect.key]) if effect.key in known
                else self._post(effect) for effect in effects]

    def _post(self, effect: Effect) -> EffectResult:
        try:
            self.transport.request("POST", self.webhook_url, json=message_payload(effect))
        except APIError as exc:
            if isinstance(exc, DEAD_WEBHOOK) or getattr(exc, "status_code", None) == 410:
                # The webhook is revoked, its app removed or its channel archived: no message
                # can go through, so the whole call fails with what to fix.
                raise ConfigurationError(
                    f"slack: the incoming webhook refused the message ({exc}); create a new "
                    "webhook for the channel and update webhook_url") from exc
            return EffectResult(effect.key, False, error=str(exc), uncertain=is_uncertain(exc),
                                retryable=exc.retryable)
        return EffectResult(effect.key, True,
                            ref=EffectRef(effect.key, CHANNEL_NAME, remote_id=effect.key))

    def find_effects(self, keys: Sequence[str]) -> list[EffectRef]:
        """An incoming webhook cannot read messages back."""
        return []

    def close(self) -> None:
        self.transport.session.close()


@hookimpl
def itsm_change_register_channels(register: ChannelRegistry) -> None:
    register.add(CHANNEL_NAME, Addressing.AUDIENCE,
                 "a message in a Slack channel, through an incoming webhook",
                 factory=SlackChannel.from_settings, settings=SETTINGS, secrets=SECRETS)
