"""Group commit for webhook intake: the events of concurrent requests share one transaction
(one fsync), and each request is answered once its events are committed.

``Ledger.add_events`` tells a duplicate apart per event inside the shared transaction.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from datetime import datetime

from ..ledger import Ledger
from ..model import TicketEvent

__all__ = ["GroupCommitter"]


@dataclass
class _Job:
    items: list[tuple[TicketEvent, str]]
    now: datetime
    done: threading.Event = field(default_factory=threading.Event)
    result: list[bool] = field(default_factory=list)
    error: BaseException | None = None


class GroupCommitter(threading.Thread):
    """One writer thread; :meth:`add` blocks until the caller's events are durable."""

    def __init__(self, ledger: Ledger, program: str = "", max_batch: int = 256) -> None:
        super().__init__(name="itsm-change-intake-commit", daemon=True)
        self.ledger = ledger
        self.program = program
        self.max_batch = max_batch
        self.jobs: queue.Queue[_Job | None] = queue.Queue()

    def add(self, items: list[tuple[TicketEvent, str]], now: datetime) -> list[bool]:
        """True per event newly recorded, False per duplicate; raises if the commit failed."""
        job = _Job(items, now)
        self.jobs.put(job)
        job.done.wait()
        if job.error is not None:
            raise job.error
        return job.result

    def stop(self) -> None:
        self.jobs.put(None)
        self.join(10)

    def run(self) -> None:
        while True:
            first = self.jobs.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    job = self.jobs.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    self.jobs.put(None)
                    break
                batch.append(job)
            self._commit(batch)

    def _commit(self, batch: list[_Job]) -> None:
        try:
            items = [item for job in batch for item in job.items]
            fresh = self.ledger.add_events(items, batch[0].now, self.program)
            start = 0
            for job in batch:
                job.result = fresh[start:start + len(job.items)]
                start += len(job.items)
        except BaseException as exc:
            for job in batch:
                job.error = exc
        for job in batch:
            job.done.set()
