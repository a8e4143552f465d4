"""Forwarding the events of platforms that cannot call a webhook themselves.

A platform offers an :class:`~itsm_change_sdk.hookspecs.EventForwarder` through the
``itsm_change_event_forwarder`` hook; ``serve`` polls it in one thread per platform.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from ..hookspecs import EventForwarder

__all__ = ["ForwarderThread"]

log = logging.getLogger(__name__)


class ForwarderThread(threading.Thread):
    """Polls one platform's :class:`~itsm_change_sdk.hookspecs.EventForwarder` (the sandbox is
    written by other processes, the CLI and the demo, so its events are polled, not pushed)."""

    def __init__(self, platform: str, forwarder: EventForwarder, clock: Callable[[], datetime],
                 poll: float = 1.0) -> None:
        super().__init__(name=f"itsm-change-{platform}-events", daemon=True)
        self.platform = platform
        self.forwarder = forwarder
        self.clock = clock
        self.poll = poll
        self.stopping = threading.Event()

    def stop(self, timeout: float = 10.0) -> None:
        self.stopping.set()
        self.join(timeout)

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                busy = self.forwarder.forward_once(self.clock()) >= self.forwarder.batch
            except Exception as exc:  # the platform's store is busy or gone: try again
                log.error("%s events: %s: %s", self.platform, type(exc).__name__, exc)
                busy = False
            if not busy:
                self.stopping.wait(self.poll)
