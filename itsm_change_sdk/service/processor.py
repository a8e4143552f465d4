"""Processing recorded events: prompts on tickets, feedback from comments, completions.

Runs after the webhook was answered, in a worker thread of ``serve`` (or any process that
shares the ledger). Events are claimed with a lease, so replicas never process one event at
the same time, and one left half-done by a killed process is taken up again. Every action
is idempotent (prompts once per ticket, feedback once per comment, completions only on a
change), so processing an event twice does no harm.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ..errors import NotFound
from ..ledger import EventRow, Ledger
from ..model import Program, Ticket, TicketEvent, TicketEventKind
from ..plugins import Platforms
from ..sync import Syncer
from .codec import event_from_payload

__all__ = ["EventWorker", "Processor", "ProcessorStats"]

log = logging.getLogger(__name__)

# How far back to look for a marked comment when the event did not carry it.
COMMENT_WINDOW = timedelta(minutes=10)
MAX_BACKOFF = 600
MAX_ATTEMPTS = 8
"""Failures after which an event becomes a dead letter (about 35 minutes of back-off)."""
RETENTION = timedelta(days=30)
"""How long processed events are kept (re-deliveries within it are recognised)."""
SWEEP_EVERY = timedelta(minutes=10)
INTAKE_QUIET = 0.05
INTAKE_PAUSE = 0.005


@dataclass
class ProcessorStats:
    processed: int = 0
    failed: int = 0
    last_error: str | None = None
    errors: dict[int, str] = field(default_factory=dict)


class Processor:
    """Does the work one event asks for, through :class:`~itsm_change_sdk.sync.Syncer`."""

    def __init__(self, program: Program, platforms: Platforms, ledger: Ledger,
                 clock: Callable[[], datetime], *, max_attempts: int = MAX_ATTEMPTS,
                 retention: timedelta = RETENTION) -> None:
        self.program = program
        self.platforms = platforms
        self.ledger = ledger
        self.clock = clock
        self.syncer = Syncer(program, platforms, ledger, clock)
        self.stats = ProcessorStats()
        self.max_attempts = max(1, max_attempts)
        self.retention = retention
        self.swept: datetime | None = None

    def handle(self, event: TicketEvent) -> None:
        """Act on one event; raises when it should be tried again later."""
        if event.platform not in self.platforms.instances:
            log.warning("event %s from %s: platform not enabled here; ignored",
                        event.event_id, event.platform)
            return
        kind = event.kind
        if kind in (TicketEventKind.TICKET_CREATED, TicketEventKind.TICKET_UPDATED):
            ticket = self._ticket(event)
            if ticket is not None:
                self.prompt(ticket)
        elif kind is TicketEventKind.COMMENT_ADDED:
            self._comment(event)
        elif kind in (TicketEventKind.TASK_COMPLETED, TicketEventKind.TASK_REOPENED):
            key = event.effect_key
            if key and key.startswith(f"chg:{self.program.id}:"):
                self.syncer.record_completion(key, kind is TicketEventKind.TASK_COMPLETED,
                                              event.occurred_at)

    def prompt(self, ticket: Ticket) -> int:
        """Post every applicable prompt on ``ticket`` (once per ticket per prompt)."""
        return sum(self.syncer.post_prompts(prompt, [ticket]) for prompt in self.program.prompts)

    def _ticket(self, event: TicketEvent) -> Ticket | None:
        if event.ticket is not None and not event.needs_refresh:
            return event.ticket
        ticket_id = event.ticket_id or (event.ticket.id if event.ticket else None)
        if not ticket_id:
            return None
        try:
            ticket: Ticket | None = self.platforms.call(
                event.platform, "itsm_change_get_ticket", ticket_id=ticket_id)
        except NotFound:
            return None
        return ticket

    def _comment(self, event: TicketEvent) -> None:
        if event.comment is not None:
            self.syncer.capture_comment(event.comment)
            return
        # A trigger without the comment (Freshservice): read the ticket's marked comments.
        since = event.occurred_at - COMMENT_WINDOW
        comments = self.platforms.call(event.platform, "itsm_change_find_comments",
                                       marker=self.program.feedback_marker, since=since) or []
        for comment in comments:
            if event.ticket_id is None or comment.ticket_id == event.ticket_id:
                self.syncer.capture_comment(comment)

    def process(self, row: EventRow) -> bool:
        """Process one claimed row; True when done (the caller records it as finished). A
        failure is recorded with a back-off that doubles per attempt, so a poison event does
        not spin."""
        try:
            self.handle(event_from_payload(row.payload))
        except Exception as exc:
            self.stats.failed += 1
            message = f"{type(exc).__name__}: {exc}"
            self.stats.last_error = message
            if row.attempts >= self.max_attempts:
                self.stats.errors.pop(row.id, None)
                self.ledger.bury_event(row.id, message, self.clock())
                log.error("event %s (%s) failed %d times and is set aside as a dead letter: "
                          "%s; 'itsm-change events retry' puts it back once the cause is "
                          "fixed, 'itsm-change events drop' gives it up",
                          row.event_id, row.platform, row.attempts, message)
                return False
            self.stats.errors[row.id] = message
            backoff = timedelta(seconds=min(MAX_BACKOFF, 15 * 2 ** max(row.attempts - 1, 0)))
            self.ledger.fail_event(row.id, message, self.clock() + backoff)
            log.error("event %s (%s, attempt %d of %d) failed, retried in %ds: %s",
                      row.event_id, row.platform, row.attempts, self.max_attempts,
                      backoff.total_seconds(), message)
            return False
        self.stats.errors.pop(row.id, None)
        self.stats.processed += 1
        return True

    def run_once(self, limit: int = 50, delay: float = 0.0,
                 pause: Callable[[], None] | None = None) -> int:
        """Claim up to ``limit`` events and process them; the number claimed.

        :param pause: called before each event (the worker yields to intake there).
        """
        rows = self.ledger.claim_events(limit, self.clock(), self.program.id)
        done = []
        for row in rows:
            if delay:
                time.sleep(delay)
            if pause is not None:
                pause()
            if self.process(row):
                done.append(row.id)
        self.ledger.finish_events(done, self.clock())
        return len(rows)

    def sweep(self) -> int:
        """Delete events processed longer ago than the retention (at most every ten
        minutes), so the queue stays the size of its recent traffic; how many."""
        now = self.clock()
        if self.swept is not None and now - self.swept < SWEEP_EVERY:
            return 0
        self.swept = now
        purged = self.ledger.purge_events(now - self.retention)
        if purged:
            log.info("events: %d processed before %s deleted (retention %s days)", purged,
                     f"{now - self.retention:%Y-%m-%d}", f"{self.retention.days:g}")
        return purged


class EventWorker(threading.Thread):
    """The background thread that drains the event backlog.

    :param delay: seconds to wait before each event (tests use it to kill the server
        between the acknowledgement and the processing).
    """

    def __init__(self, processor: Processor, poll: float = 1.0, delay: float = 0.0) -> None:
        super().__init__(name="itsm-change-events", daemon=True)
        self.processor = processor
        self.poll = poll
        self.delay = delay
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.last_intake = 0.0

    def notify(self) -> None:
        self.last_intake = time.monotonic()
        self.wake.set()

    def yield_to_intake(self) -> None:
        """Acknowledgements are what platforms time out on; processing can lag a burst. While
        webhooks are arriving, step aside between events so request threads get the GIL."""
        if time.monotonic() - self.last_intake < INTAKE_QUIET:
            time.sleep(INTAKE_PAUSE)

    def stop(self, timeout: float = 10.0) -> None:
        self.stopping.set()
        self.wake.set()
        self.join(timeout)

    def run(self) -> None:
        while not self.stopping.is_set():
            self.wake.clear()
            try:
                busy = self.processor.run_once(delay=self.delay,
                                               pause=self.yield_to_intake) > 0
            except Exception as exc:  # the ledger is down: keep the thread, retry later
                log.error("event worker: %s: %s", type(exc).__name__, exc)
                busy = False
            if not busy:
                try:
                    self.processor.sweep()
                except Exception as exc:  # the ledger is down: the next idle moment retries
                    log.error("event retention sweep: %s: %s", type(exc).__name__, exc)
                self.wake.wait(self.poll)
