"""Webhook intake throughput: ``itsm-change serve`` on loopback, driven with signed sandbox
events from concurrent clients.

Reports accepted events per second and p50/p99 acknowledgement latency, then counts the
ledger's rows: every acknowledged event must be there. Bounded by ``--events`` and
``--seconds``; it starts and stops its own server. Run on demand::

    python benchmarks/bench_webhooks.py --events 5000 --clients 8
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from itsm_change_sdk.ledger import Ledger
from itsm_change_sdk.sandbox.events import event_body, sign
from itsm_change_sdk.sandbox.store import SandboxStore

SECRET = "bench-" + uuid.uuid4().hex

PROGRAM = """
id: bench
title: Webhook benchmark
platforms: [sandbox]
goals:
  - {{id: share, title: Portal share, metric: channel_share, params: {{channel: portal}},
     filter: {{kinds: [incident]}}, baseline: 0.2, target: 0.6}}
waves:
  - {{id: pilot, title: Pilot, starts: {start}, go_live: {start}}}
units:
  - {{id: desk, title: Desk, wave: pilot, platform: sandbox, group: Desk}}
training: []
communications: []
surveys: []
prompts:
  - id: reset
    title: Password reset
    filter: {{categories: [password reset]}}
    text: Point the caller to self-service reset.
    active: {{from: {start}, until: {until}}}
"""


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def client(port: int, bodies: list[bytes], deadline: float, latencies: list[float],
           failures: list[int]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for body in bodies:
        if time.monotonic() > deadline:
            break
        headers = {"Content-Type": "application/json", "X-Sandbox-Signature": sign(body, SECRET)}
        started = time.perf_counter()
        try:
            conn.request("POST", "/webhooks/sandbox", body, headers)
            response = conn.getresponse()
            response.read()
        except (OSError, http.client.HTTPException):
            failures.append(0)
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            continue
        elapsed = time.perf_counter() - started
        if response.status in (200, 202):
            latencies.append(elapsed)
        else:
            failures.append(response.status)
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000, help="events to send (bound)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent connections")
    parser.add_argument("--threads", type=int, default=8, help="server request threads")
    parser.add_argument("--seconds", type=float, default=60.0, help="time bound")
    parser.add_argument("--db", default=None,
                        help="ledger URL (default: a fresh SQLite file; a PostgreSQL URL "
                             "pointing at an empty database or schema)")
    parser.add_argument("--tickets", type=int, default=50,
                        help="distinct tickets the events name (their prompts are posted)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-webhooks-"))
    ledger_url = args.db or f"sqlite:///{work / 'ledger.db'}"
    today = datetime.now(UTC).date()
    (work / "program.yaml").write_text(PROGRAM.format(
        start=today - timedelta(days=1), until=today + timedelta(days=30)))
    store = SandboxStore(f"sqlite:///{work / 'sandbox.db'}")
    store.add_group("Desk", [store.add_person("Agent", "agent@example.com")])
    numbers = [store.add_ticket(title=f"Locked out {i}", category="password reset",
                                group="Desk").number for i in range(args.tickets)]
    store.close()
    env = {**os.environ, "ITSM_CHANGE_HOME": str(work / "home"),
           "ITSM_CHANGE_CONFIG": str(work / "none.toml"),
           "ITSM_CHANGE_DB": ledger_url,
           "ITSM_CHANGE_SANDBOX_DB": str(work / "sandbox.db"),
           "ITSM_CHANGE_SANDBOX_WEBHOOK_SECRET": SECRET}
    server = subprocess.Popen(
        [sys.executable, "-c", "from itsm_change_sdk.cli import main; main()", "serve",
         str(work / "program.yaml"), "--host", "127.0.0.1", "--port", "0",
         "--threads", str(args.threads), "--tick", "3600", "--no-sandbox-events"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert server.stdout is not None
        match = re.search(r"http://127\.0\.0\.1:(\d+)", server.stdout.readline())
        if match is None:
            raise SystemExit("serve did not start")
        port = int(match.group(1))
        now = datetime.now(UTC)
        bodies = [json.dumps(event_body(
            "ticket_updated", now, event_id=f"bench-{i}",
            ticket=numbers[i % len(numbers)])).encode() for i in range(args.events)]
        share = [bodies[i::args.clients] for i in range(args.clients)]
        latencies: list[float] = []
        failures: list[int] = []
        deadline = time.monotonic() + args.seconds
        threads = [threading.Thread(target=client, args=(port, part, deadline, latencies,
                                                         failures)) for part in share]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        ledger = Ledger(ledger_url)
        counts = ledger.event_counts()
        ledger.close()
        accepted = len(latencies)
        print(f"events sent:        {accepted + len(failures)} by {args.clients} clients "
              f"({args.threads} server threads)")
        print(f"accepted (2xx):     {accepted} in {elapsed:.2f} s = "
              f"{accepted / elapsed:.0f} events/s")
        if latencies:
            print(f"ack latency:        p50 {1000 * statistics.median(latencies):.1f} ms, "
                  f"p99 {1000 * percentile(latencies, 0.99):.1f} ms, "
                  f"max {1000 * max(latencies):.1f} ms")
        print(f"refused or failed:  {len(failures)}")
        lost = accepted - counts["received"]
        print(f"ledger rows:        {counts['received']} received, {counts['processed']} "
              f"processed so far; acknowledged but missing: {max(lost, 0)}")
        if lost > 0:
            raise SystemExit("acknowledged events were lost")
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)


if __name__ == "__main__":
    main()
