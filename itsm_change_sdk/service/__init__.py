"""The event service behind ``itsm-change serve``: webhook intake, event processing and the
scheduler (see ``docs/serve.md``)."""

from __future__ import annotations

from .app import DEFAULT_MAX_BODY, ServiceApp
from .intake import Intake, IntakeResult
from .processor import EventWorker, Processor
from .scheduler import Scheduler, TickLock
from .server import EventService, ServeOptions

__all__ = [
    "DEFAULT_MAX_BODY",
    "EventService",
    "EventWorker",
    "Intake",
    "IntakeResult",
    "Processor",
    "Scheduler",
    "ServeOptions",
    "ServiceApp",
    "TickLock",
]
