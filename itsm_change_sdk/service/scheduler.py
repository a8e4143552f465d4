"""The scheduler: each tick applies the program (due communications, training) and, for
platforms whose webhooks do not reach us, polls them.

Replicas sharing a ledger take turns: a tick runs only while its replica holds the
program's tick lock (a PostgreSQL advisory lock, or a file lock beside an SQLite ledger),
so one replica plans and writes while the others wait for their next tick. The ledger's
claims make each write exactly once regardless; the lock keeps replicas from doing the
same platform reads twice. A replica that dies releases the lock with its connection.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO

import sqlalchemy as sa

from ..ledger import Ledger
from ..model import Program
from ..runner import ApplyReport
from ..sync import SyncReport
from ..workspace import Workspace

__all__ = ["Scheduler", "SchedulerThread", "TickLock", "TickReport"]

log = logging.getLogger(__name__)


class TickLock:
    """Held by one replica at a time, for one program."""

    def __init__(self, ledger: Ledger, name: str) -> None:
        self.ledger = ledger
        self.name = name
        digest = hashlib.sha256(name.encode()).digest()
        self.key = int.from_bytes(digest[:8], "big", signed=True)

    @contextmanager
    def hold(self) -> Iterator[bool]:
        """Yields True when this replica got the lock (it runs the tick), else False."""
        dialect = self.ledger.engine.dialect.name
        if dialect == "postgresql":
            with self._advisory() as held:
                yield held
        elif dialect == "sqlite":
            with self._file() as held:
                yield held
        else:
            yield True

    @contextmanager
    def _advisory(self) -> Iterator[bool]:
        conn = self.ledger.engine.connect()
        held = False
        try:
            held = bool(conn.execute(sa.text("select pg_try_advisory_lock(:k)"),
                                     {"k": self.key}).scalar())
            conn.commit()
            yield held
        finally:
            try:
                if held:
                    conn.execute(sa.text("select pg_advisory_unlock(:k)"), {"k": self.key})
                    conn.commit()
            except sa.exc.SQLAlchemyError:
                # The session may still hold the lock: never hand it back to the pool.
                conn.invalidate()
            conn.close()

    @contextmanager
    def _file(self) -> Iterator[bool]:
        database = self.ledger.engine.url.database
        if not database or database == ":memory:":
            yield True
            return
        path = Path(f"{database}.{self.key & 0xFFFFFFFF:08x}.lock")
        handle: IO[str] = path.open("a")
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        finally:
            handle.close()


@dataclass(frozen=True)
class TickReport:
    started: datetime
    finished: datetime
    ran: bool
    """False when another replica held the tick lock."""
    apply: ApplyReport | None = None
    sync: SyncReport | None = None
    error: str | None = None


class Scheduler:
    """Runs ticks for one program.

    :param sync_platforms: platforms to poll each tick (those without webhooks).
    """

    def __init__(self, ws: Workspace, program: Program,
                 sync_platforms: Sequence[str] = ()) -> None:
        self.ws = ws
        self.program = program
        self.sync_platforms = tuple(p for p in sync_platforms if p in program.platforms)
        self.lock = TickLock(ws.ledger, f"itsm-change:scheduler:{program.id}")
        self.last: TickReport | None = None
        self.last_run: TickReport | None = None
        self.ticks = 0

    def tick(self) -> TickReport:
        started = self.ws.clock()
        apply_report: ApplyReport | None = None
        sync_report: SyncReport | None = None
        error: str | None = None
        ran = False
        try:
            with self.lock.hold() as held:
                if held:
                    ran = True
                    apply_report = self.ws.apply(self.program)
                    if self.sync_platforms:
                        polled = dataclasses.replace(self.program, platforms=self.sync_platforms)
                        sync_report = self.ws.sync(polled)
        except Exception as exc:  # a plugin may raise anything; the next tick tries again
            error = f"{type(exc).__name__}: {exc}"
            log.error("scheduler tick failed: %s", error)
        report = TickReport(started, self.ws.clock(), ran, apply_report, sync_report, error)
        self.last = report
        self.ticks += 1
        if ran:
            self.last_run = report
            if apply_report is not None and (apply_report.created or apply_report.failed):
                log.info("tick: %s", apply_report.summary())
        return report


class SchedulerThread(threading.Thread):
    def __init__(self, scheduler: Scheduler, every: float) -> None:
        super().__init__(name="itsm-change-scheduler", daemon=True)
        self.scheduler = scheduler
        self.every = every
        self.stopping = threading.Event()

    def stop(self, timeout: float = 30.0) -> None:
        self.stopping.set()
        self.join(timeout)

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.scheduler.tick()
            except Exception as exc:  # keep ticking: the next tick may succeed
                log.error("scheduler: %s: %s", type(exc).__name__, exc)
            self.stopping.wait(self.every)
