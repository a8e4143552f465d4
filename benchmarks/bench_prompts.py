"""The prompt sweep on each platform: no matching ticket skipped, requests per prompt, and
the rate against a serial one-note-per-call loop at the same latency; on Freshservice also
training tickets against a serial one-ticket-per-call loop.

Each plugin runs through ``Syncer`` (what ``itsm-change sync`` runs; ``Runner`` for
``apply``) against the stateful fake of its own tests, in process through ``responses``,
with ``--latency`` seconds added to every call (the fake itself answers one call at a time,
the waits overlap). The fakes behave as the platforms do where it matters here: a note moves
its ticket's update time, and pages (offset, update-time order, page tokens) shift under
writes. The Jira fake remembers its own JQL evaluation until the next write, so the sweep
is not charged for the fake matching every issue again for each page. No rate limit is
enforced (``responses`` has no clock of its own; see ``bench_rate_limit.py`` for the
rate-limited Freshservice run).

For each ``--tickets`` count and platform: one sync over that many matching tickets (plus
as many non-matching ones), then a second sync; then a serial loop that posts the same
number of notes one call at a time at the same latency. Prints matching, prompted, skipped,
prompted twice, requests per prompt (and for ServiceNow the Batch API calls against their
floor of one per 100 notes), the sweep's wall and CPU time and notes per second, the serial
loop's, the ratio, and the second sync's requests and posts. The first sync's feedback pass
is timed on its own, after the sweep as ``sync`` runs it. ``--training`` adds, on
Freshservice, ``apply`` of one module to that many agents against a serial loop of ticket
creates. ``--limit N`` enforces N calls a minute in fixed windows (429 with ``Retry-After``
beyond, rate-limit headers on every answer) and prints the calls counted per window and the
share of the limit used in the full ones. Exit status 1 when a ticket was skipped or
prompted twice. Run on demand::

    python benchmarks/bench_prompts.py                          # 1,000 matching, 20 ms a call
    python benchmarks/bench_prompts.py --platform jira --tickets 1000 10000
    python benchmarks/bench_prompts.py --platform freshservice --training
    python benchmarks/bench_prompts.py --platform jira --tickets 600 --limit 300
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
import responses

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins" / "jira" / "tests"))

from itsm_change_sdk.http import RetryPolicy  # noqa: E402
from itsm_change_sdk.ledger import Ledger  # noqa: E402
from itsm_change_sdk.model import (  # noqa: E402
    Program,
    Prompt,
    TicketFilter,
    TrainingModule,
    Unit,
    Wave,
)
from itsm_change_sdk.plugins import Platforms, get_plugin_manager  # noqa: E402
from itsm_change_sdk.runner import Runner  # noqa: E402
from itsm_change_sdk.sync import Syncer, SyncReport  # noqa: E402

# Two days ago: the platforms' fakes stamp writes with the real clock, and no cursor moves
# past it, so tickets dated in the future would be read again by every sync.
BASE = (datetime.now(UTC) - timedelta(days=2)).replace(hour=9, minute=0, second=0,
                                                       microsecond=0)
GROUP = "Service Desk Tier 1"
TEXT = "Point the caller to the portal's self-service reset."
WAITS: dict[str, Callable[[float], None]] = {"sleep": lambda _s: None}
"""How the plugins wait before a retry: not at all without a rate limit (no wait is asked
for), for real with one (the 429s' ``Retry-After``)."""


def wait(seconds: float) -> None:
    WAITS["sleep"](seconds)


IDS = re.compile(r"/(\d{3,}|[0-9a-f]{32}|[A-Z]+-\d+)(?=/|$)")


class Limit:
    """``per_minute`` calls in fixed 60 s windows from the first call; a call over it gets
    429 with ``Retry-After`` (the seconds left in the window) and is not counted. Every
    answer carries ``X-Ratelimit-Total`` and ``X-Ratelimit-Remaining``."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self.start: float | None = None
        self.windows: list[int] = []
        self.refused = 0

    def admit(self, now: float) -> float | None:
        """None when admitted, else the seconds until the window ends."""
        if self.start is None:
            self.start = now
        index = int((now - self.start) // 60)
        while len(self.windows) <= index:
            self.windows.append(0)
        if self.windows[index] >= self.per_minute:
            self.refused += 1
            return self.start + 60 * (index + 1) - now
        self.windows[index] += 1
        return None

    def remaining(self) -> int:
        return self.per_minute - (self.windows[-1] if self.windows else 0)

    def share(self) -> str:
        full = self.windows[:-1]
        if not full:
            return "n/a (one window)"
        return f"{100 * sum(full) / (len(full) * self.per_minute):.1f}%"


def slow_down(rsps: responses.RequestsMock, latency: float, log: list[tuple[str, str]],
              limit: Limit | None = None) -> None:
    """Every call waits ``latency`` (side by side), then the fake answers it alone."""
    original = rsps._on_request
    lock = threading.Lock()

    def on_request(adapter: Any, request: requests.PreparedRequest, *args: Any,
                   **kwargs: Any) -> Any:
        time.sleep(latency)
        with lock:
            wait = limit.admit(time.monotonic()) if limit is not None else None
            if wait is not None and limit is not None:
                refused = requests.Response()
                refused.status_code = 429
                refused.headers.update({
                    "Content-Type": "application/json", "Retry-After": str(math.ceil(wait)),
                    "X-Ratelimit-Total": str(limit.per_minute), "X-Ratelimit-Remaining": "0"})
                refused._content = b'{"message": "rate limit exceeded"}'
                refused.url, refused.request, refused.reason = request.url, request, "Limit"
                return refused
            path = (request.path_url or "").split("?", 1)[0]
            log.append((request.method or "GET", IDS.sub("/*", path)))
            response = original(adapter, request, *args, **kwargs)
            if limit is not None:
                response.headers["X-Ratelimit-Total"] = str(limit.per_minute)
                response.headers["X-Ratelimit-Remaining"] = str(limit.remaining())
            return response

    rsps._on_request = on_request  # type: ignore[method-assign]


@dataclass
class Site:
    """One platform's fake, its plugin, how to count notes, and a serial peer."""

    name: str
    fake: Any
    platform: Any
    notes: Callable[[], Counter[str]]
    """Notes carrying the prompt, per ticket id."""
    serial_note: Callable[[requests.Session, str, int], None]


def jira_site(rsps: responses.RequestsMock) -> Site:
    from itsm_change_jira.client import JiraPlatform
    from jira_fake import SITE, FakeJira

    class MemoJira(FakeJira):
        """Remembers a whole query's evaluation per issue until the next write."""

        _jql = ""
        _depth = 0

        def search(self, query: Any, body: Any) -> Any:
            self._jql = body["jql"]
            return super().search(query, body)

        def _matches(self, issue: dict[str, Any], node: Any) -> bool:
            if self._depth:
                return super()._matches(issue, node)
            memo = self.__dict__.setdefault("_memo", {})
            key = (self._jql, issue["id"], issue["fields"]["updated"], self.writes)
            if key not in memo:
                self._depth += 1
                try:
                    memo[key] = super()._matches(issue, node)
                finally:
                    self._depth -= 1
            return bool(memo[key])

    fake = MemoJira(rsps)
    platform = JiraPlatform.from_settings(dict(fake.settings()),
                                          policy=RetryPolicy(sleep=wait))

    def notes() -> Counter[str]:
        return Counter(i["id"] for i in fake.issues.values() for c in i["comments"]
                       if TEXT[:20] in str(c["body"]))

    def serial(session: requests.Session, ticket: str, n: int) -> None:
        session.post(f"{SITE}/rest/api/3/issue/{ticket}/comment", auth=(
            "bot@example.com", "token"), json={"body": {
                "type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [
                    {"type": "text", "text": f"note {n}"}]}]}}).raise_for_status()

    return Site("jira", fake, platform, notes, serial)


def servicenow_site(rsps: responses.RequestsMock) -> Site:
    sn = _load("servicenow_conftest", ROOT / "plugins" / "servicenow" / "tests"
               / "conftest.py")
    from itsm_change_servicenow.client import ServiceNowPlatform

    fake = sn.ServiceNowFake(rsps)
    platform = ServiceNowPlatform.from_settings(fake.settings())
    platform.transport.policy = RetryPolicy(sleep=wait)

    def notes() -> Counter[str]:
        return Counter(str(r["element_id"]) for r in fake.tables["sys_journal_field"].values()
                       if r["element"] == "work_notes" and TEXT[:20] in str(r["value"]))

    def serial(session: requests.Session, ticket: str, n: int) -> None:
        session.patch(f"{sn.URL}/api/now/table/incident/{ticket}", auth=("svc_itsm", sn.PASSWORD),
                      json={"work_notes": f"note {n}"}).raise_for_status()

    return Site("servicenow", fake, platform, notes, serial)


def freshservice_site(rsps: responses.RequestsMock) -> Site:
    fs_conftest = _load("freshservice_conftest", ROOT / "plugins" / "freshservice" / "tests"
                        / "conftest.py")
    from itsm_change_freshservice.client import FreshservicePlatform

    fake = fs_conftest.FakeFreshservice(rsps)
    platform = FreshservicePlatform(domain=fs_conftest.BASE, api_key=fs_conftest.API_KEY,
                                    webhook_secret=fs_conftest.WEBHOOK_SECRET, sleep=wait)

    def notes() -> Counter[str]:
        return Counter(str(tid) for tid, items in fake.conversations.items() for c in items
                       if TEXT[:20] in str(c["body_text"]))

    def serial(session: requests.Session, ticket: str, n: int) -> None:
        session.post(f"{fs_conftest.BASE}/api/v2/tickets/{ticket}/notes",
                     auth=(fs_conftest.API_KEY, "X"),
                     json={"body": f"<div>note {n}</div>", "private": True}).raise_for_status()

    return Site("freshservice", fake, platform, notes, serial)


def _load(name: str, path: Path) -> Any:
    """A test conftest by path: the three plugins' conftest modules share a name."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


SITES = {"jira": jira_site, "servicenow": servicenow_site, "freshservice": freshservice_site}


def program(platform: str, training: bool = False) -> Program:
    return Program(
        id="bench", title="Prompt benchmark", platforms=(platform,), goals=(),
        waves=(Wave("pilot", "Pilot", (BASE - timedelta(days=1)).date(),
                    (BASE + timedelta(days=7)).date()),),
        units=(Unit("desk", GROUP, "pilot", platform, group=GROUP),),
        alliance=(), communications=(), surveys=(),
        training=(TrainingModule("basics", "Portal basics", ("Log a portal ticket",),
                                 ("desk",), 7),) if training else (),
        prompts=() if training else (
            Prompt("reset", "Self-service reset", TicketFilter(categories=("password reset",)),
                   TEXT, BASE - timedelta(days=1), BASE + timedelta(days=30)),),
    )


def platforms_with(site: Site) -> Platforms:
    platforms = Platforms(get_plugin_manager(load_entry_points=False))
    platforms.add(site.name, site.platform)
    return platforms


def serial_loop(site: Site, ticket: str, count: int) -> float:
    began = time.perf_counter()
    with requests.Session() as session:
        for n in range(count):
            site.serial_note(session, ticket, n)
    return time.perf_counter() - began


def run_prompts(name: str, count: int, latency: float, concurrency: int,
                per_minute: int | None = None) -> bool:
    calls: list[tuple[str, str]] = []
    limit = Limit(per_minute) if per_minute else None
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        site = SITES[name](rsps)
        first_ticket = ""
        for i in range(count):
            ticket = site.fake.add_ticket(title=f"reset {i}", category="password reset",
                                          group=GROUP, opened_at=BASE + timedelta(seconds=i))
            first_ticket = first_ticket or ticket.id
            site.fake.add_ticket(title=f"other {i}", category="hardware", group=GROUP,
                                 opened_at=BASE + timedelta(seconds=i))
        slow_down(rsps, latency, calls, limit)
        platforms = platforms_with(site)
        with tempfile.TemporaryDirectory() as tmp:
            ledger = Ledger(f"sqlite:///{Path(tmp) / 'ledger.db'}")
            # The real clock, as a sync runs: cursors never pass it.
            syncer = Syncer(program(name), platforms, ledger, lambda: datetime.now(UTC),
                            concurrency)
            first = SyncReport()
            # In the order ``Syncer.run`` takes them, the sweep timed on its own.
            syncer.sync_training(first)
            began, cpu, before = time.perf_counter(), time.process_time(), len(calls)
            syncer.recover_prompts(first)
            syncer.sweep_prompts(first)
            sweep, cpu = time.perf_counter() - began, time.process_time() - cpu
            kinds = Counter(calls[before:])
            first_calls = len(calls) - before
            # The feedback pass last: on the first sync every ticket of the program's time
            # is new to it (Freshservice reads each one's conversations).
            began, before = time.perf_counter(), len(calls)
            syncer.sync_feedback(first)
            feedback, feedback_calls = time.perf_counter() - began, len(calls) - before
            prompted = site.notes()
            start = len(calls)
            second = Syncer(program(name), platforms, ledger, lambda: datetime.now(UTC),
                            concurrency).run()
            second_calls = len(calls) - start
            ledger.close()
        if limit is not None:
            print(f"  limit {limit.per_minute}/min: counted per window {limit.windows}, "
                  f"share of the limit in the full windows {limit.share()}, "
                  f"{limit.refused} calls answered 429")
            limit = None
            rsps._on_request = rsps.__class__._on_request.__get__(rsps)  # type: ignore[method-assign]
            slow_down(rsps, latency, calls)
        serial = serial_loop(site, first_ticket, count)
        platforms.close()
    skipped = count - len(prompted)
    twice = sum(1 for n in prompted.values() if n > 1)
    print(f"{name}, matching {count}: prompted {len(prompted)}, skipped {skipped}, "
          f"twice {twice}; errors {first.errors or 'none'}")
    per_prompt = first_calls / max(1, first.prompts)
    print(f"  first sync's prompt sweep: {first_calls} requests ({per_prompt:.2f} per prompt),"
          f" {sweep:.1f} s ({cpu:.1f} CPU-s), {first.prompts / sweep:.0f} notes/s "
          f"[{', '.join(f'{m} {p}: {v}' for (m, p), v in kinds.most_common(5))}]")
    print(f"  then its feedback pass: {feedback_calls} requests, {feedback:.1f} s")
    if name == "servicenow":
        batches = kinds[("POST", "/api/now/v1/batch")]
        floor = math.ceil(first.prompts / 100)
        listing = first_calls - batches
        print(f"  Batch API calls: {batches} for {first.prompts} notes (floor {floor}, "
              f"{batches / max(1, floor):.2f}x); with the {listing} reads: "
              f"{first_calls / max(1, floor + listing):.2f}x the floor plus the reads")
    print(f"  serial one-note-per-call loop: {serial:.1f} s, {count / serial:.0f} notes/s; "
          f"sweep / serial rate: {(first.prompts / sweep) / (count / serial):.2f}x")
    print(f"  second sync: {second.prompts} posted, {second_calls} requests")
    return skipped == 0 and twice == 0 and second.prompts == 0


def run_training(count: int, latency: float, concurrency: int) -> bool:
    """Freshservice ``apply``: one training ticket for each of ``count`` agents."""
    calls: list[tuple[str, str]] = []
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        site = freshservice_site(rsps)
        people = [site.fake.add_person(f"Agent {i}", f"agent{i}@example.com")
                  for i in range(count)]
        site.fake.add_group(GROUP, people)
        slow_down(rsps, latency, calls)
        platforms = platforms_with(site)
        with tempfile.TemporaryDirectory() as tmp:
            ledger = Ledger(f"sqlite:///{Path(tmp) / 'ledger.db'}")
            runner = Runner(program("freshservice", training=True), platforms, ledger,
                            lambda: BASE + timedelta(days=1), concurrency)
            began = time.perf_counter()
            report = runner.apply()
            wall = time.perf_counter() - began
            ledger.close()
        applied = Counter(calls)
        creates = applied[("POST", "/api/v2/tickets")]
        requests_made = len(calls)
        fs = sys.modules["freshservice_conftest"]
        began = time.perf_counter()
        with requests.Session() as session:
            for n in range(count):
                session.post(f"{fs.BASE}/api/v2/tickets", auth=(fs.API_KEY, "X"), json={
                    "subject": f"Training {n}", "description": "<div>x</div>",
                    "email": "agent0@example.com", "status": 2, "priority": 1,
                    "source": 2}).raise_for_status()
        serial = time.perf_counter() - began
        platforms.close()
    kinds = ", ".join(f"{m} {p}: {v}" for (m, p), v in applied.most_common(4))
    print(f"freshservice training, {count} agents: {report.created} tickets created "
          f"({creates} creates, {requests_made} requests [{kinds}]), {wall:.1f} s, "
          f"{report.created / wall:.0f} tickets/s; errors {report.failed or 'none'}")
    print(f"  serial one-ticket-per-call loop: {serial:.1f} s, {count / serial:.0f} tickets/s; "
          f"apply / serial rate: {(report.created / wall) / (count / serial):.2f}x")
    return report.created == count and not report.failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--platform", choices=[*SITES, "all"], default="all",
                        help="which plugin (default: all three)")
    parser.add_argument("--tickets", type=int, nargs="+", default=[1000],
                        help="matching tickets per run (default: 1000)")
    parser.add_argument("--latency", type=float, default=0.02,
                        help="seconds added to every call (default: 0.02)")
    parser.add_argument("--concurrency", type=int, default=4,
                        help="batches in flight, as apply's --concurrency (default: 4)")
    parser.add_argument("--limit", type=int, default=None, metavar="CALLS",
                        help="enforce this many calls a minute (fixed windows, 429 beyond)")
    parser.add_argument("--training", action="store_true",
                        help="also Freshservice training tickets for --tickets agents")
    args = parser.parse_args()
    if args.limit:
        WAITS["sleep"] = time.sleep
    names = list(SITES) if args.platform == "all" else [args.platform]
    ok = True
    for count in args.tickets:
        for name in names:
            ok &= run_prompts(name, count, args.latency, args.concurrency, args.limit)
        if args.training:
            ok &= run_training(count, args.latency, args.concurrency)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
