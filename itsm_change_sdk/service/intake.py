"""Webhook intake: verify through the platform's parse hook, de-duplicate, record durably.

The 2xx answer is given only after the ledger has committed every event of the request
(SQLite runs with ``synchronous=FULL``), so an acknowledged event survives a crash. Work on
the event happens later, in :mod:`.processor`, so a slow platform never makes the webhook
time out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from ..errors import ITSMError, WebhookRejected
from ..http.redact import Redactor
from ..ledger import Ledger
from ..model import TicketEvent, WebhookRequest, utcnow
from ..plugins import Platforms
from .batch import GroupCommitter
from .codec import event_to_payload

__all__ = ["Intake", "IntakeResult"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IntakeResult:
    """The answer to give: an HTTP status and a small JSON body (never a secret)."""

    status: int
    body: Mapping[str, Any] = field(default_factory=dict)
    recorded: int = 0
    duplicates: int = 0


class Intake:
    """Turns one webhook request into recorded ledger events.

    :param secrets: each platform's configured ``webhook_secret`` (None where unset: the
        platform's parse hook then refuses every request, as it must).
    :param on_recorded: called after new events were committed (wakes the processor).
    :param on_events: called with the newly recorded events after their commit (the
        cluster engine enqueues a task per event).
    """

    def __init__(self, platforms: Platforms, ledger: Ledger,
                 secrets: Mapping[str, str | None], *,
                 clock: Callable[[], datetime] = utcnow,
                 on_recorded: Callable[[], None] | None = None,
                 on_events: Callable[[list[TicketEvent]], None] | None = None,
                 program: str = "") -> None:
        self.program = program
        self.platforms = platforms
        self.ledger = ledger
        self.secrets = dict(secrets)
        self.clock = clock
        self.on_recorded = on_recorded
        self.on_events = on_events
        self.redact = Redactor(self.secrets.values())
        self.committer: GroupCommitter | None = None
        if ledger.engine.dialect.name in ("sqlite", "postgresql"):
            # One writer thread commits concurrent requests' events together: one fsync
            # for many, and no SQLite busy-wait between our own writers.
            self.committer = GroupCommitter(ledger, program)
            self.committer.start()

    def close(self) -> None:
        if self.committer is not None:
            self.committer.stop()
            self.committer = None

    def accepts(self, platform: str) -> bool:
        return platform in self.secrets and platform in self.platforms.instances

    def receive(self, platform: str, headers: Mapping[str, str], body: bytes,
                query: Mapping[str, str] | None = None, remote: str = "-") -> IntakeResult:
        if not self.accepts(platform):
            return IntakeResult(404, {"error": f"no webhook endpoint for {platform!r}"})
        request = WebhookRequest(platform, dict(headers), body, dict(query or {}),
                                 self.secrets.get(platform))
        try:
            events = self._parse(platform, request)
        except WebhookRejected as exc:
            reason = self.redact(exc.reason)
            status = exc.status if 400 <= exc.status < 500 else 400
            log.warning("webhook %s from %s rejected (%d): %s", platform, remote, status, reason)
            return IntakeResult(status, {"error": reason})
        except Exception as exc:  # a plugin bug: answer 500 so the platform sends it again
            log.error("webhook %s from %s: the parse hook failed: %s", platform, remote,
                      type(exc).__name__)
            return IntakeResult(500, {"error": "the event could not be parsed; see the log"})
        try:
            fresh = self._record(events)
        except (SQLAlchemyError, ITSMError) as exc:
            # Not acknowledged: the platform re-delivers, and a re-delivery is de-duplicated.
            log.error("webhook %s: the ledger refused the event: %s", platform,
                      type(exc).__name__)
            return IntakeResult(503, {"error": "the ledger is unavailable; retry later"})
        recorded, duplicates = len(fresh), len(events) - len(fresh)
        if recorded and self.on_recorded is not None:
            self.on_recorded()
        if fresh and self.on_events is not None:
            self.on_events(fresh)
        log.info("webhook %s from %s: %d recorded, %d duplicates", platform, remote,
                 recorded, duplicates)
        status = 202 if recorded else 200
        return IntakeResult(status, {"recorded": recorded, "duplicates": duplicates},
                            recorded, duplicates)

    def _parse(self, platform: str, request: WebhookRequest) -> list[TicketEvent]:
        if not self.platforms.implements(platform, "itsm_change_parse_webhook"):
            raise WebhookRejected(404, f"{platform} does not accept webhooks")
        events = self.platforms.call(platform, "itsm_change_parse_webhook", request=request)
        if events is None:
            raise WebhookRejected(404, f"{platform} does not accept webhooks")
        for event in events:
            if not isinstance(event, TicketEvent) or event.platform != platform:
                raise WebhookRejected(422, "the request carries an event for another platform")
        return list(events)

    def _record(self, events: list[TicketEvent]) -> list[TicketEvent]:
        """The events newly recorded (re-deliveries left out), once committed."""
        if not events:
            return []
        items = [(e, event_to_payload(e)) for e in events]
        if self.committer is not None:
            fresh = self.committer.add(items, self.clock())
        else:
            fresh = self.ledger.add_events(items, self.clock(), self.program)
        return [event for event, new in zip(events, fresh, strict=True) if new]
