"""What an operator asks of the cluster: how much work waits, and which workers are alive.

Workers write a heartbeat key with a short expiry every few seconds; a worker is alive while
its key is. The queue depth is read from the broker's lists, without asking any worker, so
``/healthz`` stays cheap and answers even when every worker is down.
"""

from __future__ import annotations

import json
import logging
import math
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import redis

from .settings import ClusterSettings

__all__ = ["HEARTBEAT_EVERY", "ClusterProbe", "Ticker"]

log = logging.getLogger(__name__)

HEARTBEAT_EVERY = 2.0
HEARTBEAT_TTL = 10
# Kombu's Redis transport keeps priorities 3, 6 and 9 in lists beside the queue's own.
_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")


class ClusterProbe:
    def __init__(self, settings: ClusterSettings, client: redis.Redis | None = None) -> None:
        self.settings = settings
        self.client = client or redis.Redis.from_url(settings.redis, socket_timeout=2,
                                                     socket_connect_timeout=2)

    def snapshot(self) -> dict[str, Any]:
        """Queue depth, tasks taken but not finished, and the live workers; ``broker`` says
        ``unreachable`` (with the reason's kind) when Redis does not answer."""
        prefix = f"{self.settings.prefix}:"
        try:
            pipe = self.client.pipeline()
            for suffix in _PRIORITY_SUFFIXES:
                pipe.llen(f"{prefix}{self.settings.queue}{suffix}")
            pipe.hlen(f"{prefix}unacked")
            *depths, unacked = pipe.execute()
            workers = []
            for key in self.client.scan_iter(match=self.settings.key("worker", "*"),
                                             count=100):
                raw = self.client.get(key)
                if raw:
                    workers.append(json.loads(raw))
        except redis.RedisError as exc:
            return {"broker": "unreachable", "error": type(exc).__name__, "workers": 0}
        now = time.time()
        return {
            "broker": "ok",
            "queue_depth": int(sum(depths)),
            "in_flight": int(unacked),
            "workers": len(workers),
            "worker_list": sorted(
                ({"name": w["name"], "programs": w["programs"],
                  "seen_seconds_ago": round(max(0.0, now - w["at"]), 1)} for w in workers),
                key=lambda w: str(w["name"])),
        }


class Ticker(threading.Thread):
    """Runs in each worker's main process: writes its heartbeat and, once per tick across
    the whole cluster, enqueues each program's tick.

    Whichever worker first sets the tick's key in Redis (``SET NX`` with an expiry, the
    slot numbered on Redis's clock) enqueues it; the others find the key taken. So any
    worker can die without the schedule stopping, and no extra process must be kept alive.
    """

    def __init__(self, settings: ClusterSettings, programs: Sequence[str],
                 enqueue: Callable[[str], None], name: str | None = None,
                 client: redis.Redis | None = None, ticking: bool = True) -> None:
        super().__init__(name="itsm-change-ticker", daemon=True)
        self.settings = settings
        self.programs = list(programs)
        self.ticking = ticking
        self.enqueue = enqueue
        self.worker_name = name or f"{socket.gethostname()}:{threading.get_native_id()}"
        self.client = client or redis.Redis.from_url(settings.redis, socket_timeout=5,
                                                     socket_connect_timeout=5)
        self.stopping = threading.Event()
        self.started = time.time()
        self.ticks = 0

    def stop(self) -> None:
        self.stopping.set()
        self.join(5)

    def once(self) -> int:
        """Heartbeat, then the ticks this worker won; how many it enqueued."""
        beat = {"name": self.worker_name, "programs": self.programs, "at": time.time(),
                "started": self.started}
        self.client.set(self.settings.key("worker", self.worker_name), json.dumps(beat),
                        ex=HEARTBEAT_TTL)
        if not self.ticking:
            return 0
        seconds, micros = self.client.time()
        slot = int((seconds + micros / 1e6) // self.settings.tick)
        expiry = max(2, math.ceil(self.settings.tick * 2))
        won = 0
        for program in self.programs:
            key = self.settings.key("tick", program, str(slot))
            if self.client.set(key, self.worker_name, nx=True, ex=expiry):
                self.enqueue(program)
                won += 1
        self.ticks += won
        return won

    def run(self) -> None:
        every = min(HEARTBEAT_EVERY, self.settings.tick / 2)
        while not self.stopping.is_set():
            try:
                self.once()
            except redis.RedisError as exc:  # the broker is away: the worker says so too
                log.warning(
                    "ticker: Redis unreachable (%s); retrying", type(exc).__name__)
            self.stopping.wait(every)


def cluster_status() -> dict[str, Any] | None:
    """The cluster's queue and workers when one is configured (``ITSM_CHANGE_BROKER_URL``
    set and the ``[celery]`` extra installed); None otherwise."""
    import os

    if not os.environ.get("ITSM_CHANGE_BROKER_URL"):
        return None
    return ClusterProbe(ClusterSettings.from_env()).snapshot()


def cluster_line(document: dict[str, Any]) -> str:
    if document["broker"] != "ok":
        return (f"cluster: broker unreachable ({document.get('error')}); events wait in the "
                "ledger until it is back")
    names = ", ".join(w["name"] for w in document["worker_list"]) or "none"
    return (f"cluster: {document['queue_depth']} tasks queued, {document['in_flight']} "
            f"running; {document['workers']} workers alive ({names})")
