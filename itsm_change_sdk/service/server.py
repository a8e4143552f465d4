"""``itsm-change serve``: the WSGI app on waitress, the event worker and the scheduler in
one process.

Several replicas may share a PostgreSQL ledger: intake de-duplicates on the ledger's unique
key, events are claimed with leases, and the scheduler ticks under a shared lock.
"""

from __future__ import annotations

import logging
import secrets as secrets_module
import signal
import threading
from dataclasses import dataclass
from datetime import timedelta
from types import FrameType
from typing import Any

from ..config import platform_settings
from ..model import Program
from ..workspace import Workspace
from .app import DEFAULT_MAX_BODY, ServiceApp
from .forwarding import ForwarderThread
from .intake import Intake
from .processor import MAX_ATTEMPTS, RETENTION, EventWorker, Processor
from .scheduler import Scheduler, SchedulerThread

__all__ = ["EventService", "ServeOptions", "webhook_secret"]

log = logging.getLogger(__name__)

SYNC_MODES = ("auto", "always", "never")
ENGINES = ("embedded", "celery")


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8080
    threads: int = 8
    tick: float = 60.0
    """Seconds between scheduler ticks."""
    max_body: int = DEFAULT_MAX_BODY
    sync: str = "auto"
    """``auto`` polls the platforms without a webhook secret, ``always`` all, ``never`` none."""
    poll: float = 1.0
    """Seconds the event worker waits for new events when idle (other replicas' events)."""
    processing_delay: float = 0.0
    forward_events: bool = True
    """Forward the events of platforms that cannot call a webhook (the sandbox's staff
    actions) to this service's webhook for that platform."""
    max_attempts: int = MAX_ATTEMPTS
    """Failures after which an event is set aside as a dead letter."""
    retention_days: float = RETENTION.days
    """Days processed events are kept before the sweep deletes them."""
    engine: str = "embedded"
    """``embedded`` processes events and ticks in this process; ``celery`` records events
    and enqueues them for the workers (``itsm-change worker``), which also run the ticks."""


def webhook_secret(ws: Workspace, platform: str) -> str | None:
    """The platform's ``webhook_secret`` setting (explicit > environment > config file)."""
    settings = platform_settings(platform, ("webhook_secret",), ("webhook_secret",),
                                 explicit=ws.settings.get(platform))
    value = settings.get("webhook_secret")
    return str(value) if value else None


class EventService:
    """Everything ``serve`` runs, built from a workspace whose platforms are enabled."""

    def __init__(self, ws: Workspace, program: Program, options: ServeOptions) -> None:
        if options.sync not in SYNC_MODES:
            raise ValueError(f"sync must be one of {SYNC_MODES}")
        if options.engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}")
        self.ws = ws
        self.program = program
        self.options = options
        self.secrets: dict[str, str | None] = {
            name: webhook_secret(ws, name) for name in ws.platforms.instances}
        self.generated: set[str] = set()
        self.forwarded = [name for name in ws.platforms.instances if options.forward_events
                          and ws.platforms.implements(name, "itsm_change_event_forwarder")]
        for name in self.forwarded:
            if self.secrets[name] is None:
                # Only this process signs a forwarded platform's events: its own secret will do.
                self.secrets[name] = secrets_module.token_hex(32)
                self.generated.add(name)
        self.processor = Processor(program, ws.platforms, ws.ledger, ws.clock,
                                   max_attempts=options.max_attempts,
                                   retention=timedelta(days=options.retention_days))
        self.worker = EventWorker(self.processor, options.poll, options.processing_delay)
        self.cluster: Any = None
        if options.engine == "celery":
            from ..cluster.service import ClusterLink

            self.cluster = ClusterLink(program.id)
        self.intake = Intake(ws.platforms, ws.ledger, self.secrets, clock=ws.clock,
                             on_recorded=None if self.cluster else self.worker.notify,
                             on_events=self.cluster.enqueue if self.cluster else None,
                             program=program.id)
        self.polled = [p for p in program.platforms if p in ws.platforms.instances and (
            options.sync == "always" or (options.sync == "auto" and not self.secrets.get(p)))]
        self.scheduler = Scheduler(ws, program, self.polled)
        self.scheduler_thread = SchedulerThread(self.scheduler, options.tick)
        self.app = ServiceApp(self.intake, self.health, options.max_body)
        self.forwarders: list[ForwarderThread] = []
        self.server: Any = None
        self.url = ""

    # -- health ------------------------------------------------------------------------

    def health(self) -> tuple[bool, dict[str, Any]]:
        document: dict[str, Any] = {"program": self.program.id}
        healthy = True
        try:
            counts = self.ws.ledger.event_counts(self.program.id)
            dead = self.ws.ledger.dead_events(self.program.id, limit=5) if counts["dead"] else []
            document["ledger"] = {"ok": True}
            document["events"] = {
                **counts,
                "backlog": counts["received"] - counts["processed"] - counts["dead"],
                "failing": len(self.processor.stats.errors),
                "dead_letters": [{"id": row.id, "platform": row.platform,
                                  "event_id": row.event_id, "kind": row.kind,
                                  "attempts": row.attempts, "reason": row.error}
                                 for row in dead],
            }
        except Exception as exc:
            healthy = False
            document["ledger"] = {"ok": False, "error": type(exc).__name__}
        last = self.scheduler.last
        ran = self.scheduler.last_run
        stale = last is None or (self.ws.clock() - last.finished).total_seconds() > max(
            3 * self.options.tick, 60)
        document["scheduler"] = {
            "tick_seconds": self.options.tick, "ticks": self.scheduler.ticks,
            "last_tick": last.finished.isoformat() if last else None,
            "last_run": ran.finished.isoformat() if ran else None,
            "last_error": last.error if last else None,
            "stale": stale and self.scheduler_thread.is_alive(),
            "runs_in": "workers" if self.cluster is not None else "this process",
        }
        if self.cluster is not None:
            document["cluster"] = self.cluster.health()
            healthy = healthy and document["cluster"]["broker"] == "ok"
        document["platforms"] = {
            name: {"webhook": bool(self.secrets.get(name)), "polled": name in self.polled}
            for name in self.ws.platforms.instances}
        document["status"] = "ok" if healthy else "unavailable"
        return healthy, document

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> str:
        """Bind the socket and start the background threads; returns the base URL."""
        from waitress.server import create_server

        self.server = create_server(
            self.app, host=self.options.host, port=self.options.port,
            threads=self.options.threads, ident="itsm-change",
            # waitress buffers a body before the app sees it: cap that buffer as well.
            max_request_body_size=self.options.max_body + 1,
            clear_untrusted_proxy_headers=True, channel_timeout=30,
        )
        host = self.options.host
        connect = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
        port = int(self.server.effective_port)
        self.url = f"http://{connect}:{port}"
        if self.cluster is None:
            # With Celery the workers process the events and run the ticks.
            self.worker.start()
            self.scheduler_thread.start()
        self._start_forwarders()
        return self.url

    def _start_forwarders(self) -> None:
        for name in self.forwarded:
            secret = self.secrets[name]
            assert secret is not None  # set or generated in __init__
            forwarder = self.ws.platforms.call(name, "itsm_change_event_forwarder",
                                               webhook_url=f"{self.url}/webhooks/{name}",
                                               secret=secret)
            thread = ForwarderThread(name, forwarder, self.ws.clock, self.options.poll)
            thread.start()
            self.forwarders.append(thread)

    def serve_forever(self) -> None:
        """Serve until SIGINT or SIGTERM, then stop the threads."""
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, _exit_on_signal)
        try:
            self.server.run()
        finally:
            self.stop()

    def stop(self) -> None:
        for thread in self.forwarders:
            thread.stop()
            thread.forwarder.close()
        self.forwarders.clear()
        if self.scheduler_thread.is_alive():
            self.scheduler_thread.stop()
        if self.worker.is_alive():
            self.worker.stop()
        self.intake.close()
        if self.server is not None:
            self.server.task_dispatcher.shutdown()
            self.server.close()
            self.server = None


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)
