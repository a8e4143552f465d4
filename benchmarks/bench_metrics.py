"""Goal metrics over a large synthetic ticket stream: throughput and peak memory.

    python benchmarks/bench_metrics.py --tickets 1000000
    python benchmarks/bench_metrics.py --tickets 200000 --sandbox   # through the sandbox DB

Aggregation speed is measured on tickets cycled from a pool of 10,000 pre-built ones (the
stream then costs next to nothing); end-to-end speed on tickets built one by one by a
generator (never a list). Tracing allocations slows Python down, so peak memory is measured
in a separate run with tracemalloc; max RSS is reported too.
"""

from __future__ import annotations

import argparse
import itertools
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from itsm_change_sdk.metrics import builtin_metric_kinds, compute_goals
from itsm_change_sdk.model import Ticket
from itsm_change_sdk.schema import load_program

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "portal-rollout" / "program.yaml"
GROUPS = ["Service Desk Tier 1", "Service Desk Tier 2", "Field Services", "Application Support",
          "Network Operations"]
CHANNELS = ["portal", "email", "phone", "chat"]
AS_OF = datetime(2027, 4, 15, tzinfo=UTC)
"""After the synthetic stream's last ticket opened: every ticket counts."""


def synthetic(count: int, seed: int = 1) -> Iterator[Ticket]:
    """Tickets over 2026-10-01 .. +26 weeks, a fifth in a group outside the program."""
    rng = random.Random(seed)
    start = datetime(2026, 10, 1, tzinfo=UTC)
    span = 26 * 7 * 86400
    for n in range(count):
        opened = start + timedelta(seconds=rng.randrange(span))
        resolved = opened + timedelta(hours=rng.uniform(1, 60)) if n % 5 else None
        yield Ticket("sandbox", str(n), f"INC{n:07d}", "t", "incident",
                     "resolved" if resolved else "open", opened, resolved or opened, resolved,
                     group=GROUPS[n % 5], channel=CHANNELS[n % 4],
                     reopen_count=1 if n % 13 == 0 else 0,
                     reassignment_count=1 if n % 7 == 0 else 0)


def pooled(count: int, pool: list[Ticket]) -> Iterator[Ticket]:
    """``count`` tickets cycled from a small pre-built pool: the stream costs next to
    nothing, so the time measured is the aggregation's."""
    return itertools.islice(itertools.cycle(pool), count)


def fill_sandbox(count: int, directory: Path) -> object:
    from itsm_change_sdk.sandbox.store import SandboxStore, tickets

    store = SandboxStore(f"sqlite:///{directory / 'sandbox.db'}")
    batch = []
    for t in synthetic(count):
        batch.append(dict(number=t.number, title=t.title, kind=t.kind, state=t.state,
                          group_name=t.group, channel=t.channel, priority="3",
                          opened_at=t.opened_at, updated_at=t.updated_at,
                          resolved_at=t.resolved_at, reopen_count=t.reopen_count,
                          reassignment_count=t.reassignment_count))
        if len(batch) == 10_000:
            with store.engine.begin() as conn:
                conn.execute(tickets.insert(), batch)
            batch = []
    if batch:
        with store.engine.begin() as conn:
            conn.execute(tickets.insert(), batch)
    return store


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--sandbox", action="store_true",
                        help="also stream the tickets back from a sandbox SQLite database")
    args = parser.parse_args(argv)
    program = load_program(EXAMPLE)
    kinds = {k.name: k for k in builtin_metric_kinds()}
    count = args.tickets

    pool = list(synthetic(10_000, seed=2))
    began = time.perf_counter()
    compute_goals(program, pooled(count, pool), kinds, AS_OF)
    aggregation = time.perf_counter() - began
    began = time.perf_counter()
    results = compute_goals(program, synthetic(count), kinds, AS_OF)
    seconds = time.perf_counter() - began
    tracemalloc.start()
    compute_goals(program, synthetic(count), kinds, AS_OF)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    unit = results[0].units["sd-tier1"]
    print(f"tickets:                 {count:,}")
    print(f"end to end (generate + aggregate): {seconds:.2f} s, {count / seconds:,.0f} tickets/s")
    print(f"aggregation (pooled):    {aggregation:.2f} s, {count / aggregation:,.0f} tickets/s")
    print(f"peak traced memory:      {peak / 2**20:.1f} MB")
    print(f"max RSS of the process:  {rss_mb:.0f} MB")
    print(f"check: sd-tier1 portal share {unit.current:.3f} over {unit.current_count:,} tickets")
    if args.sandbox:
        with tempfile.TemporaryDirectory() as tmp:
            store = fill_sandbox(count, Path(tmp))
            began = time.perf_counter()
            compute_goals(program, store.tickets(), kinds, AS_OF)  # type: ignore[attr-defined]
            seconds = time.perf_counter() - began
            print(f"from the sandbox DB:     {seconds:.2f} s, {count / seconds:,.0f} tickets/s")
            print(f"max RSS after sandbox:   "
                  f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
