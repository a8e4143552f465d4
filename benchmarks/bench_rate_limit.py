"""Rate-limit throughput and fault tolerance of the Freshservice plugin, end to end.

A small Freshservice API v2 emulation on 127.0.0.1 (agent groups, agents, tickets, the
ticket filter) enforces a per-minute call limit in fixed 60-second windows, answering every
call with ``X-Ratelimit-Total``, ``X-Ratelimit-Remaining`` and
``X-Ratelimit-Used-Currentrequest`` and a ``429`` with ``Retry-After`` once the window is
spent. ``--faults`` injects, on that share of calls (seeded), a 429, a 502/503, a read
timeout after the create was applied, or a connection reset before or after applying.

The real plugin is driven through ``Workspace.apply`` on a program with one Freshservice
unit of ``--agents`` people and three training modules (3 x agents ticket creates), applied
again until the plan has no write left. Then every training key must be on the server
exactly once (tickets counted per key tag) and the ledger must hold no failed or pending
row; the exit status is 1 otherwise, 2 when ``--seconds`` ran out. Run on demand::

    python benchmarks/bench_rate_limit.py                  # 100 agents, limit 200/min
    python benchmarks/bench_rate_limit.py --faults 0.2

The plugin accepts only ``https://<name>.freshservice.com``; the benchmark builds it from
settings as usual and then mounts a ``requests`` adapter on its transport's session that
sends that origin to the loopback server (there is no base-URL setting to do it with).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import logging
import math
import os
import random
import re
import socket
import struct
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from itsm_change_freshservice.api import PLAN_LIMITS, endpoint_class
from itsm_change_freshservice.mapping import key_tag
from requests.adapters import HTTPAdapter

from itsm_change_sdk import Workspace, load_program_text

DOMAIN = "bench"
BASE = f"https://{DOMAIN}.freshservice.com"
API_KEY = "bench-fs-key-0123456789"
WINDOW = 60.0
FAULT_KINDS = ("429", "502", "503", "timeout", "reset_before", "reset_after")
_TAG = re.compile(r"tag:'([^']+)'")

PROGRAM = """
id: bench-rate
title: Rate limit benchmark
platforms: [freshservice]
timezone: UTC
waves:
  - {{id: pilot, title: Pilot, starts: {start}, go_live: {live}}}
units:
  - {{id: desk, title: Bench Desk, wave: pilot, platform: freshservice, group: Bench Desk}}
training:
  - id: module-a
    title: Logging portal tickets
    objectives: [Log a ticket in the portal on a caller's behalf]
    audience: [desk]
    due_days: 7
  - id: module-b
    title: Answering with knowledge articles
    objectives: [Search the knowledge base before answering]
    audience: [desk]
    due_days: 10
  - id: module-c
    title: Coaching callers to self-service
    objectives: [Walk a caller through the self-service password reset]
    audience: [desk]
    due_days: 14
"""


def ts(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class State:
    """The emulated account: its records, its rate-limit windows and what happened."""

    def __init__(self, *, agents: int, limit: int, plan: str | None, faults: float,
                 seed: int, stall: float) -> None:
        self.lock = threading.Lock()
        self.limit = limit
        self.sub_limits = {k: v for k, v in PLAN_LIMITS[plan].items() if k != "total"} \
            if plan else {}
        self.faults = faults
        self.rng = random.Random(seed)
        self.stall = stall
        self.ids = iter(range(1001, 10**9))
        now = ts(datetime.now(UTC))
        self.agents: list[dict[str, Any]] = [
            {"id": next(self.ids), "first_name": "Agent", "last_name": f"{i:05d}",
             "email": f"agent{i:05d}@bench.example", "active": True, "occasional": False,
             "created_at": now, "updated_at": now}
            for i in range(agents)]
        self.groups = [{"id": next(self.ids), "name": "Bench Desk", "description": None,
                        "members": [a["id"] for a in self.agents],
                        "created_at": now, "updated_at": now}]
        self.tickets: dict[int, dict[str, Any]] = {}
        self.t0: float | None = None
        self.first: float | None = None
        self.last: float | None = None
        self.windows: Counter[int] = Counter()
        self.sub_windows: Counter[tuple[str, int]] = Counter()
        self.requests = 0
        self.limited = 0
        self.injected: Counter[str] = Counter()
        self.creates = 0

    # -- the limit ---------------------------------------------------------------------

    def admit(self, method: str, path: str) -> tuple[bool, dict[str, str]]:
        """Count the call against its window (and its plan sub-limit); refuse it over."""
        with self.lock:
            now = time.monotonic()
            self.requests += 1
            if self.t0 is None:
                self.t0 = now
            self.first = self.first or now
            self.last = now
            window = int((now - self.t0) // WINDOW)
            reset = self.t0 + (window + 1) * WINDOW - now
            used = self.windows[window]
            sub = endpoint_class(method, path)
            over = used >= self.limit or (
                sub in self.sub_limits and self.sub_windows[(sub, window)] >= self.sub_limits[sub])
            if not over:
                self.windows[window] += 1
                if sub in self.sub_limits:
                    self.sub_windows[(sub, window)] += 1
            else:
                self.limited += 1
            headers = {"X-Ratelimit-Total": str(self.limit),
                       "X-Ratelimit-Remaining": str(max(0, self.limit - self.windows[window])),
                       "X-Ratelimit-Used-Currentrequest": "0" if over else "1"}
            if over:
                headers["Retry-After"] = str(max(1, math.ceil(reset)))
            return not over, headers

    def fault(self) -> str | None:
        with self.lock:
            if self.faults <= 0 or self.rng.random() >= self.faults:
                return None
            kind = self.rng.choice(FAULT_KINDS)
            self.injected[kind] += 1
            return kind

    # -- the records -------------------------------------------------------------------

    def create_ticket(self, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.creates += 1
            now = ts(datetime.now(UTC))
            ticket = {"id": next(self.ids), "subject": body.get("subject"),
                      "description": body.get("description"),
                      "status": body.get("status", 2), "priority": body.get("priority", 2),
                      "source": body.get("source", 2),
                      "responder_id": body.get("responder_id"),
                      "requester_id": body.get("requester_id"), "group_id": None,
                      "tags": list(body.get("tags") or []), "due_by": body.get("due_by"),
                      "fr_due_by": body.get("fr_due_by"), "custom_fields": {},
                      "type": "Incident", "created_at": now, "updated_at": now}
            self.tickets[ticket["id"]] = ticket
            return dict(ticket)

    def tag_counts(self) -> Counter[str]:
        with self.lock:
            return Counter(tag for t in self.tickets.values() for tag in t["tags"]
                           if tag.startswith("itsm-k-"))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state: State

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    # -- plumbing ----------------------------------------------------------------------

    def _answer(self, status: int, headers: dict[str, str], payload: Any = None,
                link: str | None = None) -> None:
        body = json.dumps(payload).encode() if payload is not None else b""
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        if link:
            self.send_header("Link", f'<{link}>; rel="next"')
        self.end_headers()
        self.wfile.write(body)

    def _reset(self) -> None:
        """Close the connection with a TCP reset and no answer."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def _handle(self, method: str) -> None:
        state = self.state
        parts = urlsplit(self.path)
        path, query = parts.path, dict(parse_qsl(parts.query))
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        allowed, headers = state.admit(method, path)
        if not allowed:
            self._answer(429, headers, {"message": "You have exceeded the limit of requests "
                                                  "per minute"})
            return
        expected = "Basic " + base64.b64encode(f"{API_KEY}:X".encode()).decode()
        if self.headers.get("Authorization") != expected:
            self._answer(401, headers, {"code": "invalid_credentials"})
            return
        fault = state.fault()
        if fault == "429":
            self._answer(429, {**headers, "Retry-After": "1"}, {"message": "Too many requests"})
            return
        if fault == "reset_before":
            self._reset()
            return
        body = json.loads(raw) if raw else {}
        if fault in ("502", "503") and (method == "GET" or state.rng.random() < 0.5):
            self._answer(int(fault), headers, {"message": "Bad gateway"})
            return
        status, payload, link = self._route(method, path, query, body)
        if fault in ("502", "503"):  # applied, then the gateway failed the answer
            self._answer(int(fault), headers, {"message": "Service unavailable"})
            return
        if fault == "reset_after":
            self._reset()
            return
        if fault == "timeout":
            time.sleep(state.stall)
            with contextlib.suppress(OSError):
                self._answer(status, headers, payload, link)
            self.close_connection = True
            return
        self._answer(status, headers, payload, link)

    def _page(self, path: str, query: dict[str, str], name: str,
              items: list[dict[str, Any]]) -> tuple[int, Any, str | None]:
        per_page = min(100, int(query.get("per_page", 30)))
        page = int(query.get("page", 1))
        chunk = items[(page - 1) * per_page: page * per_page]
        link = None
        if page * per_page < len(items):
            link = f"{BASE}{path}?" + urlencode({**query, "page": page + 1})
        return 200, {name: chunk}, link

    def _route(self, method: str, path: str, query: dict[str, str],
               body: dict[str, Any]) -> tuple[int, Any, str | None]:
        state = self.state
        path = path.rstrip("/")
        if method == "GET" and path == "/api/v2/agent_groups":
            return self._page(path, query, "agent_groups", state.groups)
        if method == "GET" and path == "/api/v2/agents":
            agents = [a for a in state.agents
                      if (query.get("active") != "true" or a["active"])
                      and (not query.get("email")
                           or a["email"].casefold() == query["email"].casefold())]
            return self._page(path, query, "agents", agents)
        if method == "POST" and path == "/api/v2/tickets":
            return 201, {"ticket": state.create_ticket(body)}, None
        if method == "GET" and path == "/api/v2/tickets/filter":
            tags = set(_TAG.findall(query.get("query", "")))
            if not tags:
                return 400, {"description": "Validation failed", "errors": [
                    {"field": "query", "message": "unsupported", "code": "invalid_value"}]}, None
            with state.lock:
                found = [dict(t) for t in state.tickets.values() if tags & set(t["tags"])]
            page = int(query.get("page", 1))
            return 200, {"tickets": found[(page - 1) * 30: page * 30], "total": len(found)}, None
        if method == "GET" and path == "/api/v2/tickets":
            with state.lock:
                items = [dict(t) for t in state.tickets.values()]
            return self._page(path, query, "tickets", items)
        match = re.fullmatch(r"/api/v2/tickets/(\d+)", path)
        if match and method in ("GET", "PUT"):
            with state.lock:
                ticket = state.tickets.get(int(match.group(1)))
                if ticket is None:
                    return 404, None, None
                if method == "PUT":
                    ticket.update({k: v for k, v in body.items() if k in ticket})
                    ticket["updated_at"] = ts(datetime.now(UTC))
                return 200, {"ticket": dict(ticket)}, None
        return 404, {"message": f"not emulated: {method} {path}"}, None


class Loopback(HTTPAdapter):
    """Sends the Freshservice origin to the local server, over plain HTTP."""

    def __init__(self, port: int) -> None:
        super().__init__(pool_connections=10, pool_maxsize=10)
        self.target = f"http://127.0.0.1:{port}"

    def send(self, request: Any, **kwargs: Any) -> Any:
        request.url = self.target + request.url[len(BASE):]
        return super().send(request, **kwargs)


def run(args: argparse.Namespace, state: State, port: int, out: dict[str, Any]) -> None:
    today = datetime.now(UTC).date()
    program = load_program_text(PROGRAM.format(start=today - timedelta(days=1),
                                               live=today + timedelta(days=6)))
    db = Path(tempfile.mkdtemp(prefix="bench-rate-")) / "ledger.sqlite"
    settings: dict[str, Any] = {"domain": DOMAIN, "api_key": API_KEY}
    if args.plan:
        settings["plan"] = args.plan
    with Workspace(str(db), settings={"freshservice": settings}) as ws:
        platform: Any = ws.enable("freshservice")
        platform.transport.session.mount(BASE, Loopback(port))
        platform.transport.timeout = (2.0, args.read_timeout)
        expected = [a.key for a in ws.plan(program).actions if a.action == "create"]
        out["expected"] = expected
        started = time.monotonic()
        for round_no in range(1, args.rounds + 1):
            report = ws.apply(program)
            out["rounds"] = round_no
            out.setdefault("reports", []).append(report.summary())
            if ws.plan(program).writes == 0:
                break
        out["apply_seconds"] = time.monotonic() - started
        out["calls"] = platform.transport.calls
        out["rows"] = Counter(row.state for row in ws.status(program))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=100,
                        help="people in the unit; apply creates 3 tickets each (default 100)")
    parser.add_argument("--limit", type=int, default=200,
                        help="calls allowed per 60-second window (default 200, Growth)")
    parser.add_argument("--plan", choices=sorted(PLAN_LIMITS),
                        help="also enforce this plan's per-endpoint sub-limits, and tell the "
                             "plugin the plan (it then paces them itself)")
    parser.add_argument("--faults", type=float, default=0.0,
                        help="share of calls that get an injected fault (default 0)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--read-timeout", type=float, default=2.0,
                        help="the client's read timeout; a timeout fault stalls past it")
    parser.add_argument("--rounds", type=int, default=6, help="most apply rounds (default 6)")
    parser.add_argument("--seconds", type=float, default=300.0,
                        help="give up after this long (default 300)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="show the SDK's retry and lookup warnings")
    args = parser.parse_args(argv)
    if not 0 <= args.faults < 1 or args.agents < 1 or args.limit < 1:
        parser.error("need 0 <= --faults < 1, --agents >= 1 and --limit >= 1")

    if not args.verbose:
        logging.getLogger("itsm_change_sdk.http").setLevel(logging.ERROR)
    state = State(agents=args.agents, limit=args.limit, plan=args.plan, faults=args.faults,
                  seed=args.seed, stall=args.read_timeout + 1.0)
    handler = type("BoundHandler", (Handler,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]

    out: dict[str, Any] = {}
    errors: list[BaseException] = []

    def target() -> None:
        try:
            run(args, state, port, out)
        except BaseException as exc:
            errors.append(exc)

    wall = time.monotonic()
    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(args.seconds)
    wall = time.monotonic() - wall
    timed_out = worker.is_alive()
    server.shutdown()

    print(f"agents {args.agents}, limit {args.limit}/min"
          + (f", plan {args.plan}" if args.plan else "")
          + f", faults {args.faults:.0%} (seed {args.seed}), read timeout {args.read_timeout}s")
    busy = (state.last or 0) - (state.first or 0)
    windows = [state.windows[w] for w in sorted(state.windows)]
    full = windows[:-1]
    print(f"calls: {state.requests} at the server ({out.get('calls', '?')} sent by the plugin), "
          f"{state.creates} ticket creates")
    print(f"busy {busy:.1f}s, wall {wall:.1f}s, apply rounds {out.get('rounds', '?')}: "
          + "; ".join(out.get("reports", [])))
    rate = state.requests / busy * 60 if busy > 0 else float("nan")
    print(f"calls per minute over the busy period: {rate:.0f} ({rate / args.limit:.0%} of the "
          "limit; the first window's burst inflates this on short runs)")
    print(f"counted calls per 60s window: {windows}")
    if full:
        share = sum(full) / (len(full) * args.limit)
        print(f"share of the limit used in the {len(full)} full window(s): {share:.1%}")
    else:
        print("share of the limit: n/a, the run fit in one window (raise --agents or lower "
              "--limit)")
    if args.plan:
        subs = {f"{k}@{w}": n for (k, w), n in sorted(state.sub_windows.items())}
        print(f"sub-limit counts per window: {subs} (limits {state.sub_limits})")
    injected = ", ".join(f"{k} {state.injected[k]}" for k in FAULT_KINDS if state.injected[k])
    print(f"429s: {state.limited} over the limit + {state.injected['429']} injected; "
          f"faults injected: {sum(state.injected.values())} ({injected or 'none'})")

    if timed_out:
        print(f"FAIL: not done after --seconds {args.seconds:g}", file=sys.stderr)
        sys.stdout.flush()
        os._exit(2)
    if errors:
        print(f"FAIL: {type(errors[0]).__name__}: {errors[0]}", file=sys.stderr)
        return 1
    counts = state.tag_counts()
    expected = out["expected"]
    missing = [k for k in expected if counts[key_tag(k)] == 0]
    duplicated = [k for k in expected if counts[key_tag(k)] > 1]
    stray = sum(counts.values()) - sum(counts[key_tag(k)] for k in expected)
    rows = out["rows"]
    bad_rows = rows["failed"] + rows["pending"]
    print(f"check: {len(expected)} training keys; {len(expected) - len(missing) - len(duplicated)}"
          f" exactly once, {len(missing)} missing, {len(duplicated)} duplicated, {stray} stray; "
          f"ledger rows {dict(rows)}")
    if missing or duplicated or stray or bad_rows or len(expected) != 3 * args.agents:
        print("FAIL: an effect is missing or duplicated, or the ledger is not settled",
              file=sys.stderr)
        return 1
    print("OK: every effect present exactly once")
    return 0


if __name__ == "__main__":
    sys.exit(main())
