"""Apply at scale: the ledger's cost per effect, throughput under concurrency, and memory as
history grows.

Three measurements, each run in a fresh subprocess so its peak RSS is its own:

``scale``
    ``--people`` people (default 1,000, 10,000 and 50,000) x 5 training modules on the
    sandbox platform, on each ``--ledger`` (``sqlite``, and ``postgres`` when a server answers
    at ``--postgres``; a fresh schema per run). A first apply, then an unchanged re-apply.
    Prints wall time, CPU time spent inside ledger calls per effect (``thread_time``, so a
    busy machine does not inflate it; the sandbox's own writes are the platform's cost and
    are not counted), the whole process's CPU per effect, and peak RSS.
``concurrency``
    The sandbox with ``--latency`` seconds (default 0.05) added to every platform call, one
    call per effect, ``--stub-people`` people x 5 modules, at each ``--levels`` (1, 4, 16).
    Prints effects per second.
``memory``
    A ledger holding ``--rows`` effect rows (default 80,000: 16,000 people x 5 modules) and
    then also ``--prompt-rows`` prompt rows (default 300,000, written straight into the
    ledger as months of sync would); an unchanged re-apply and ``status``-style counts, each
    in a fresh process. Prints peak RSS and wall time.

Run on demand, never in the test suite::

    python benchmarks/bench_apply.py scale --people 1000 10000 50000 --ledger sqlite postgres
    python benchmarks/bench_apply.py concurrency --levels 1 4 16
    python benchmarks/bench_apply.py memory
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import wraps
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from itsm_change_sdk.ledger import Ledger, effects
from itsm_change_sdk.model import Effect, EffectResult, Program, TrainingModule, Unit, Wave
from itsm_change_sdk.plugins import Platforms, get_plugin_manager
from itsm_change_sdk.runner import Runner
from itsm_change_sdk.sandbox.platform import SandboxPlatform
from itsm_change_sdk.sandbox.store import SandboxStore, groups, memberships, people

NOW = datetime(2027, 3, 2, 8, 0, tzinfo=UTC)
GROUP = "Service Desk"
MODULES = 5
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
LEDGER_CALLS = ("effects", "plan_rows", "claim", "claim_many", "record_result",
                "record_results", "record_found", "mark", "record_skipped",
                "record_skipped_many", "release", "release_dead_owners", "get")


def program() -> Program:
    return Program(
        id="bench", title="Apply benchmark", platforms=("sandbox",), goals=(),
        waves=(Wave("w1", "Wave 1", (NOW - timedelta(days=7)).date(),
                    (NOW + timedelta(days=7)).date()),),
        units=(Unit("desk", GROUP, "w1", "sandbox", group=GROUP),),
        alliance=(),
        training=tuple(TrainingModule(f"m{i}", f"Module {i}", (f"Objective {i}",), ("desk",),
                                      14) for i in range(MODULES)),
        communications=(), surveys=(), prompts=(),
    )


class LedgerClock:
    """CPU seconds spent inside the ledger's methods, summed over threads."""

    def __init__(self) -> None:
        self.cpu = 0.0
        self.lock = threading.Lock()
        self.depth = threading.local()

    def install(self) -> None:
        for name in LEDGER_CALLS:
            if hasattr(Ledger, name):
                setattr(Ledger, name, self._timed(getattr(Ledger, name)))

    def _timed(self, method: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(method)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if getattr(self.depth, "n", 0):  # one ledger method calling another
                return method(*args, **kwargs)
            self.depth.n = 1
            began = time.thread_time()
            try:
                return method(*args, **kwargs)
            finally:
                spent = time.thread_time() - began
                self.depth.n = 0
                with self.lock:
                    self.cpu += spent
        return timed


class SlowSandbox(SandboxPlatform):
    """The sandbox, ``latency`` seconds slower for every effect it writes (one call each)."""

    latency = 0.05

    def _write(self, effect: Effect, apply: Callable[[], str]) -> EffectResult:
        time.sleep(self.latency)
        return super()._write(effect, apply)


def seed(store: SandboxStore, count: int) -> None:
    with store.engine.begin() as conn:
        conn.execute(groups.insert().values(name=GROUP))
        conn.execute(people.insert(), [
            {"id": f"u-{i:06d}", "name": f"Person {i}", "email": f"p{i}@example.com"}
            for i in range(count)])
        conn.execute(memberships.insert(), [
            {"group": GROUP, "person": f"u-{i:06d}"} for i in range(count)])


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- child processes ------------------------------------------------------------------------

def child_apply(ledger_url: str, sandbox_url: str, concurrency: int,
                latency: float) -> dict[str, Any]:
    clock = LedgerClock()
    clock.install()
    store = SandboxStore(sandbox_url, clock=lambda: NOW)
    platform = SlowSandbox(store) if latency else SandboxPlatform(store)
    SlowSandbox.latency = latency
    platforms = Platforms(get_plugin_manager(load_entry_points=False))
    platforms.add("sandbox", platform)
    ledger = Ledger(ledger_url)
    runner = Runner(program(), platforms, ledger, lambda: NOW, concurrency)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    report = runner.apply()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    ledger.close()
    platforms.close()
    return {"wall": wall, "cpu": cpu, "ledger_cpu": clock.cpu, "created": report.created,
            "unchanged": report.unchanged, "failed": len(report.failed), "rss": peak_rss_mb()}


def child_counts(ledger_url: str) -> dict[str, Any]:
    """What ``status`` reads: counts by kind and state."""
    ledger = Ledger(ledger_url)
    wall0 = time.perf_counter()
    counts = ledger.effect_counts("bench")
    wall = time.perf_counter() - wall0
    ledger.close()
    return {"wall": wall, "rss": peak_rss_mb(), "groups": len(counts.by_state)}


def run_child(*args: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, __file__, "_child", *args], capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"benchmark run failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# -- ledgers --------------------------------------------------------------------------------

@contextmanager
def ledger_url(kind: str, tmp: Path, postgres: str) -> Iterator[str | None]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp / f'ledger-{uuid.uuid4().hex[:6]}.db'}"
        return
    try:
        engine = sa.create_engine(postgres)
        with engine.begin() as conn:
            conn.execute(sa.text("select 1"))
    except Exception as exc:  # any reason PostgreSQL is not there
        print(f"  postgres: skipped, no server at {postgres} ({str(exc).splitlines()[0]})")
        yield None
        return
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    with engine.begin() as conn:
        conn.execute(sa.text(f'create schema "{schema}"'))
    try:
        yield f"{postgres}?options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'drop schema "{schema}" cascade'))
        engine.dispose()


# -- measurements ---------------------------------------------------------------------------

def scale(args: argparse.Namespace) -> None:
    print(f"scale: people x {MODULES} modules on the sandbox, concurrency {args.concurrency}")
    for count in args.people:
        for kind in args.ledger:
            with tempfile.TemporaryDirectory() as name:
                tmp = Path(name)
                with ledger_url(kind, tmp, args.postgres) as url:
                    if url is None:
                        continue
                    sandbox = f"sqlite:///{tmp / 'sandbox.db'}"
                    seed(SandboxStore(sandbox), count)
                    first = run_child("apply", url, sandbox, str(args.concurrency), "0")
                    again = run_child("apply", url, sandbox, str(args.concurrency), "0")
                n = first["created"]
                print(f"  {count:>6} people, {kind:8}: {n} effects in {first['wall']:.1f} s "
                      f"({n / first['wall']:.0f}/s); ledger CPU "
                      f"{1000 * first['ledger_cpu'] / n:.2f} ms/effect, process CPU "
                      f"{1000 * first['cpu'] / n:.2f} ms/effect; peak RSS "
                      f"{first['rss']:.0f} MB; failed {first['failed']}")
                print(f"  {'':>6}  unchanged re-apply: {again['unchanged']} unchanged, "
                      f"{again['wall']:.1f} s, ledger CPU {again['ledger_cpu']:.2f} s, "
                      f"peak RSS {again['rss']:.0f} MB")


def concurrency(args: argparse.Namespace) -> None:
    print(f"concurrency: {args.stub_people} people x {MODULES} modules, "
          f"{1000 * args.latency:.0f} ms per platform call, SQLite ledger")
    for level in args.levels:
        with tempfile.TemporaryDirectory() as name:
            tmp = Path(name)
            sandbox = f"sqlite:///{tmp / 'sandbox.db'}"
            seed(SandboxStore(sandbox), args.stub_people)
            got = run_child("apply", f"sqlite:///{tmp / 'ledger.db'}", sandbox, str(level),
                            str(args.latency))
        n = got["created"]
        print(f"  concurrency {level:>2}: {n} effects in {got['wall']:.1f} s, "
              f"{n / got['wall']:.0f} effects/s; ledger CPU "
              f"{1000 * got['ledger_cpu'] / n:.2f} ms/effect; failed {got['failed']}")


def memory(args: argparse.Namespace) -> None:
    count = args.rows // MODULES
    print(f"memory: {count} people x {MODULES} modules = {args.rows} effect rows, then "
          f"{args.prompt_rows} prompt rows more; SQLite ledger")
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        url = f"sqlite:///{tmp / 'ledger.db'}"
        sandbox = f"sqlite:///{tmp / 'sandbox.db'}"
        seed(SandboxStore(sandbox), count)
        first = run_child("apply", url, sandbox, "4", "0")
        print(f"  first apply: {first['created']} effects, {first['wall']:.1f} s")
        for label in (f"{args.rows} effect rows", f"+ {args.prompt_rows} prompt rows"):
            if label.startswith("+"):
                add_prompt_rows(url, args.prompt_rows)
            again = run_child("apply", url, sandbox, "4", "0")
            counts = run_child("counts", url)
            print(f"  {label}: unchanged re-apply peak RSS {again['rss']:.0f} MB "
                  f"({again['wall']:.1f} s); status counts peak RSS {counts['rss']:.0f} MB "
                  f"({counts['wall']:.2f} s)")


def add_prompt_rows(url: str, count: int) -> None:
    """Prompt rows as months of sync leave them: one per ticket prompted."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for start in range(0, count, 10_000):
            conn.execute(effects.insert(), [{
                "key": f"chg:bench:prompt:reset:sandbox:T{i:07d}", "program": "bench",
                "platform": "sandbox", "kind": "prompt", "channel": "note", "state": "done",
                "fingerprint": "f" * 32, "intent_fingerprint": "f" * 32,
                "remote_id": f"N{i}", "ticket_id": f"T{i:07d}", "title": "Self-service reset",
                "meta": '{"prompt": "reset"}', "attempts": 1, "completed": False,
                "created_at": NOW, "updated_at": NOW,
            } for i in range(start, min(count, start + 10_000))])
    engine.dispose()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        mode, *rest = sys.argv[2:]
        if mode == "apply":
            result = child_apply(rest[0], rest[1], int(rest[2]), float(rest[3]))
        else:
            result = child_counts(rest[0])
        print(json.dumps(result))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    one = sub.add_parser("scale", help="ledger cost per effect at 1,000 to 50,000 people")
    one.add_argument("--people", type=int, nargs="+", default=[1000, 10000, 50000])
    one.add_argument("--ledger", nargs="+", default=["sqlite", "postgres"],
                     choices=["sqlite", "postgres"])
    one.add_argument("--postgres", default=POSTGRES)
    one.add_argument("--concurrency", type=int, default=4)
    two = sub.add_parser("concurrency", help="effects/s at 1, 4, 16 concurrent calls")
    two.add_argument("--levels", type=int, nargs="+", default=[1, 4, 16])
    two.add_argument("--stub-people", type=int, default=640)
    two.add_argument("--latency", type=float, default=0.05)
    three = sub.add_parser("memory", help="peak RSS of a re-apply as history grows")
    three.add_argument("--rows", type=int, default=80_000)
    three.add_argument("--prompt-rows", type=int, default=300_000)
    args = parser.parse_args()
    {"scale": scale, "concurrency": concurrency, "memory": memory}[args.what](args)


if __name__ == "__main__":
    main()
