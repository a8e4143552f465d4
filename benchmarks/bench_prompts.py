"""The prompt sweep on Jira: no matching ticket skipped, requests per prompt, and the rate
against a serial one-comment-per-call loop at the same latency.

The Jira plugin runs through ``Syncer`` (what ``itsm-change sync`` runs) against the stateful
fake site of its tests (``plugins/jira/tests/jira_fake.py``), in process through
``responses``, with ``--latency`` seconds added to every call. The fake behaves as a site
does where it matters here: a comment moves its issue's ``updated`` time, and the enhanced
search's page token is an offset into the current ``ORDER BY updated`` result, so pages
shift under writes. The fake remembers its own JQL evaluation until the next write, so the
sweep is not charged for the fake matching every issue again for each page. No rate limit
is enforced (``responses`` has no clock of its own; see ``bench_rate_limit.py`` for the
rate-limited Freshservice run).

For each ``--tickets`` count: one sync over that many matching JSM requests (plus as many
non-matching ones), then a second sync; then a serial loop that posts the same number of
comments one call at a time at the same latency. Prints, per count: matching, prompted,
skipped, prompted twice, requests per prompt, the sweep's wall time and notes per second,
the serial loop's, the ratio, and the second sync's requests and posts. Exit status 1 when a
ticket was skipped or prompted twice. Run on demand::

    python benchmarks/bench_prompts.py                      # 1,000 matching, 20 ms a call
    python benchmarks/bench_prompts.py --tickets 1000 10000
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
import responses

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins" / "jira" / "tests"))

from itsm_change_jira.client import JiraPlatform
from jira_fake import SITE, FakeJira

from itsm_change_sdk.http import RetryPolicy
from itsm_change_sdk.ledger import Ledger
from itsm_change_sdk.model import Program, Prompt, TicketFilter, Unit, Wave
from itsm_change_sdk.plugins import Platforms, get_plugin_manager
from itsm_change_sdk.sync import Syncer

BASE = datetime(2027, 1, 11, 9, 0, tzinfo=UTC)
GROUP = "Service Desk Tier 1"
IDS = re.compile(r"/(\d{3,}|[A-Z]+-\d+)(?=/|$)")


class SlowJira(FakeJira):
    """The fake site, ``latency`` seconds slower per call; counts calls by kind."""

    latency = 0.02
    _jql = ""
    _depth = 0
    _memo: dict[tuple[Any, ...], bool]

    def __post_init__(self) -> None:
        super().__post_init__()
        self._memo = {}

    def dispatch(self, request: requests.PreparedRequest) -> Any:
        time.sleep(self.latency)
        return super().dispatch(request)

    def search(self, query: Any, body: Any) -> Any:
        self._jql = body["jql"]
        return super().search(query, body)

    def _matches(self, issue: dict[str, Any], node: Any) -> bool:
        """The fake's JQL evaluation of a whole query, remembered until the next write: a
        site answers a page in its 20 ms, so the fake's own cost of matching every issue
        again for every page must not count against the sweep."""
        if self._depth:
            return super()._matches(issue, node)
        memo = (self._jql, issue["id"], issue["fields"]["updated"], self.writes)
        if memo not in self._memo:
            self._depth += 1
            try:
                self._memo[memo] = super()._matches(issue, node)
            finally:
                self._depth -= 1
        return self._memo[memo]


def program() -> Program:
    return Program(
        id="bench", title="Prompt benchmark", platforms=("jira",), goals=(),
        waves=(Wave("pilot", "Pilot", (BASE - timedelta(days=1)).date(),
                    (BASE + timedelta(days=7)).date()),),
        units=(Unit("desk", GROUP, "pilot", "jira", group=GROUP),),
        alliance=(), training=(), communications=(), surveys=(),
        prompts=(Prompt("reset", "Self-service reset",
                        TicketFilter(categories=("password reset",)),
                        "Point the caller to the portal's self-service reset.",
                        BASE - timedelta(days=1), BASE + timedelta(days=30)),),
    )


def calls(site: FakeJira, start: int) -> Counter[str]:
    """Requests since ``start`` by method and endpoint (issue and comment ids as ``*``)."""
    return Counter(f"{m} {IDS.sub('/*', p)}" for m, p, _ in site.requests_log[start:])


def run(count: int, latency: float, concurrency: int) -> bool:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        site = SlowJira(rsps)
        site.latency = 0
        for i in range(count):
            site.add_ticket(title=f"reset {i}", category="password reset", group=GROUP,
                            opened_at=BASE + timedelta(seconds=i))
            site.add_ticket(title=f"other {i}", category="hardware", group=GROUP,
                            opened_at=BASE + timedelta(seconds=i))
        site.latency = latency
        platform = JiraPlatform.from_settings(dict(site.settings()),
                                              policy=RetryPolicy(sleep=lambda _s: None))
        platforms = Platforms(get_plugin_manager(load_entry_points=False))
        platforms.add("jira", platform)
        with tempfile.TemporaryDirectory() as tmp:
            ledger = Ledger(f"sqlite:///{Path(tmp) / 'ledger.db'}")
            start = len(site.requests_log)
            began = time.perf_counter()
            cpu = time.process_time()
            first = Syncer(program(), platforms, ledger, lambda: BASE + timedelta(days=1),
                           concurrency).run()
            sweep = time.perf_counter() - began
            cpu = time.process_time() - cpu
            first_calls = len(site.requests_log) - start
            kinds = calls(site, start)
            prompted = Counter(i["id"] for i in site.issues.values() for c in i["comments"]
                               if "chg:bench:prompt" in str(c["properties"]))
            start = len(site.requests_log)
            second = Syncer(program(), platforms, ledger, lambda: BASE + timedelta(days=2),
                            concurrency).run()
            second_calls = len(site.requests_log) - start
            ledger.close()
        # The serial peer: one comment per call, one after another, same latency.
        target = next(i["key"] for i in site.issues.values() if i["key"].startswith("HELP-"))
        began = time.perf_counter()
        with requests.Session() as session:
            session.auth = ("bot@example.com", "token")
            for n in range(count):
                session.post(f"{SITE}/rest/api/3/issue/{target}/comment", json={"body": {
                    "type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [
                        {"type": "text", "text": f"note {n}"}]}]}}).raise_for_status()
        serial = time.perf_counter() - began
        platforms.close()
    skipped = count - len(prompted)
    twice = sum(1 for n in prompted.values() if n > 1)
    print(f"matching {count}: prompted {len(prompted)}, skipped {skipped}, twice {twice}; "
          f"errors {first.errors or 'none'}")
    print(f"  first sync: {first_calls} requests ({first_calls / max(1, first.prompts):.2f} "
          f"per prompt), {sweep:.1f} s ({cpu:.1f} CPU-s), {first.prompts / sweep:.0f} notes/s "
          f"[{', '.join(f'{k}: {v}' for k, v in kinds.most_common(6))}]")
    print(f"  serial one-comment-per-call loop: {serial:.1f} s, {count / serial:.0f} notes/s; "
          f"sweep / serial rate: {(first.prompts / sweep) / (count / serial):.2f}x")
    print(f"  second sync: {second.prompts} posted, {second_calls} requests")
    return skipped == 0 and twice == 0 and second.prompts == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, nargs="+", default=[1000],
                        help="matching tickets per run (default: 1000)")
    parser.add_argument("--latency", type=float, default=0.02,
                        help="seconds added to every call (default: 0.02)")
    parser.add_argument("--concurrency", type=int, default=4,
                        help="batches in flight, as apply's --concurrency (default: 4)")
    args = parser.parse_args()
    ok = all([run(count, args.latency, args.concurrency) for count in args.tickets])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
