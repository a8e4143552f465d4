"""``serve --engine celery``: what the web process does with the cluster. Events are
recorded in the ledger before the webhook is answered, as always; then a task per event is
enqueued. When the broker is away the event is still safe in the ledger, and the workers'
sweep enqueues it once the broker is back."""

from __future__ import annotations

import logging
from typing import Any

from ..model import TicketEvent
from .ops import ClusterProbe
from .settings import ClusterSettings

__all__ = ["ClusterLink"]

log = logging.getLogger(__name__)


class ClusterLink:
    def __init__(self, program: str, settings: ClusterSettings | None = None) -> None:
        from .app import make_app

        self.program = program
        self.settings = settings or ClusterSettings.from_env()
        self.app = make_app(self.settings)
        self.probe = ClusterProbe(self.settings)
        self.enqueued = 0
        self.enqueue_failures = 0

    def enqueue(self, events: list[TicketEvent]) -> None:
        try:
            with self.app.producer_or_acquire() as producer:
                for event in events:
                    self.app.send_task("itsm_change.process_event",
                                       args=[self.program, event.platform, event.event_id],
                                       producer=producer, retry=False)
                    self.enqueued += 1
        except Exception as exc:  # the broker is down: the ledger has the events
            self.enqueue_failures += 1
            log.warning("%d events recorded but not enqueued (%s: %s); the workers' sweep "
                        "enqueues them once the broker answers", len(events),
                        type(exc).__name__, exc)

    def health(self) -> dict[str, Any]:
        document = self.probe.snapshot()
        document["enqueued"] = self.enqueued
        document["enqueue_failures"] = self.enqueue_failures
        return document
