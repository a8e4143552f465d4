"""One rate limit per platform instance across the cluster: four worker processes calling a
platform that allows N calls per window stay within N in every window, and use at least 95 %
of it. Real Redis (skipped with the reason when none answers) and a real HTTP platform fake."""

from __future__ import annotations

import sys
import threading
import time
from bisect import bisect_left
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import cluster_support as cs

from itsm_change_sdk.cluster.app import make_app
from itsm_change_sdk.cluster.ratelimit import RedisRateLimit
from itsm_change_sdk.cluster.settings import (
    ClusterSettings,
    RateLimit,
    parse_rate_limits,
)
from itsm_change_sdk.errors import ConfigurationError

LIMIT = 60
WINDOW = 3.0


class LimitedPlatform(ThreadingHTTPServer):
    """Allows ``LIMIT`` calls in any ``WINDOW`` seconds, counted on arrival; more get 429."""

    daemon_threads = True

    def __init__(self) -> None:
        self.arrivals: list[float] = []
        self.rejected = 0
        self.workers: set[str] = set()
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def admit(self, worker: str) -> bool:
        with self.lock:
            now = time.monotonic()
            self.workers.add(worker)
            recent = len(self.arrivals) - bisect_left(self.arrivals, now - WINDOW)
            if recent >= LIMIT:
                self.rejected += 1
                return False
            self.arrivals.append(now)
            return True


class _Handler(BaseHTTPRequestHandler):
    server: LimitedPlatform

    def do_GET(self) -> None:
        ok = self.server.admit(self.headers.get("X-Worker", "?"))
        body = b"{}" if ok else b'{"error": "rate limited"}'
        self.send_response(200 if ok else 429)
        if not ok:
            self.send_header("Retry-After", "1")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def redis_client():
    client, reason = cs.redis_or_reason()
    if client is None:
        pytest.skip(reason)
    yield client
    client.close()


@pytest.fixture
def platform():
    server = LimitedPlatform()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.slow
def test_four_workers_share_one_budget_and_use_it_fully(tmp_path, redis_client, platform):
    env, prefix = cs.cluster_env(
        tmp_path, f"sqlite:///{tmp_path / 'ledger.db'}",
        ITSM_CHANGE_RATE_LIMITS=f"probe={LIMIT}/{WINDOW:g}s", ITSM_CHANGE_RATE_MARGIN="0.1")
    program = tmp_path / "program.yaml"
    program.write_text(cs.program_text(datetime.now(UTC)))
    workers = [cs.start_probe_worker(program, env, f"p{i}") for i in range(4)]
    try:
        assert cs.wait_for(lambda: cs.live_workers(redis_client, prefix) == 4, 60), \
            workers[0].text()[-3000:]
        app = make_app(ClusterSettings.from_env(env))
        url = f"http://127.0.0.1:{platform.server_address[1]}"
        for _ in range(4):  # 160 calls wanted: more than two windows' worth
            app.send_task("itsm_change_test.probe", args=[url, 40])
        assert cs.wait_for(lambda: len(platform.arrivals) == 160, 60), \
            "\n".join(w.text()[-1500:] for w in workers)
    finally:
        for worker in workers:
            worker.stop()
        cs.drop_prefix(redis_client, prefix)
    arrivals = platform.arrivals
    assert platform.rejected == 0, "the platform never had to refuse a call"
    busiest = max(bisect_left(arrivals, t + WINDOW) - i for i, t in enumerate(arrivals))
    assert busiest <= LIMIT
    first = bisect_left(arrivals, arrivals[0] + WINDOW)
    assert first >= 0.95 * LIMIT, f"only {first} of {LIMIT} calls in the first window"
    assert len(platform.workers) == 4, "all four workers called"


def test_limits_are_read_per_platform_or_instance_and_bad_ones_are_named():
    limits = parse_rate_limits("jira=100/1m, freshservice@acme.freshservice.com=140/60s")
    assert limits == {"jira": RateLimit(100, 60.0),
                      "freshservice@acme.freshservice.com": RateLimit(140, 60.0)}
    limit = RedisRateLimit.__new__(RedisRateLimit)
    limit.limits = limits
    assert limit.limit_for("freshservice", "https://acme.freshservice.com/api/v2") == (
        "freshservice@acme.freshservice.com", RateLimit(140, 60.0))
    assert limit.limit_for("freshservice", "https://other.freshservice.com") is None
    assert limit.limit_for("jira", "https://x.atlassian.net")[1] == RateLimit(100, 60.0)
    with pytest.raises(ConfigurationError, match=r"ITSM_CHANGE_RATE_LIMITS.*'jira=lots'"):
        parse_rate_limits("jira=lots")
