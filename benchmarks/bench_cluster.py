"""The Celery engine's scaling: the same work on 1, 2 and 4 worker processes.

Each worker is ``itsm-change worker --pool solo`` (one task at a time), on the sandbox made
``--latency`` seconds slower per platform call (default 0.05), with a PostgreSQL ledger (a
fresh schema per run) and Redis at ``--redis`` (a fresh key prefix per run).

``events``
    ``--events`` webhook events (default 1,000; a tenth delivered twice) posted to
    ``serve --engine celery``; each asks for a ticket read and a prompt (two platform calls).
    Prints events per second from the first post until the ledger has processed them all.
``apply``
    ``--people`` people (default 10,000) in one unit, one training module: 100 batches of
    100. The plan is enqueued and the time until every effect is ``done`` is measured.
    ``--latency`` is then per effect written (one REST call each, as ServiceNow and
    Freshservice take them; ``bench_apply.py concurrency`` measures the same way).

Run on demand, never in the test suite::

    python benchmarks/bench_cluster.py events --workers 1 2 4
    python benchmarks/bench_cluster.py apply --workers 1 4
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import requests
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import cluster_support as cs

from itsm_change_sdk.cluster.app import make_app
from itsm_change_sdk.cluster.settings import ClusterSettings
from itsm_change_sdk.ledger import Ledger
from itsm_change_sdk.sandbox.events import event_body
from itsm_change_sdk.sandbox.store import SandboxStore, groups, memberships, people

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@contextmanager
def postgres_schema(url: str) -> Iterator[str]:
    engine = sa.create_engine(url)
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    with engine.begin() as conn:
        conn.execute(sa.text(f'create schema "{schema}"'))
    try:
        yield f"{url}?options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'drop schema "{schema}" cascade'))
        engine.dispose()


@contextmanager
def cluster(tmp: Path, workers: int, args: argparse.Namespace, *,
            training: bool = False, tick: bool = True) -> Iterator[tuple[dict, Path, list]]:
    client, reason = cs.redis_or_reason()
    if client is None:
        sys.exit(reason)
    with postgres_schema(args.postgres) as ledger_url:
        latency = {"ITSM_CHANGE_TEST_EFFECT_SECONDS" if training else
                   "ITSM_CHANGE_TEST_CALL_SECONDS": str(args.latency)}
        env, prefix = cs.cluster_env(tmp, ledger_url, ITSM_CHANGE_SERVE_TICK="3600", **latency)
        env.pop("PYTHONWARNINGS", None)
        program = tmp / "program.yaml"
        program.write_text(cs.program_text(datetime.now(UTC), training=training))
        Ledger(ledger_url).close()  # the schema, before the workers race to create it
        procs = [cs.start_slow_worker(program, env, f"b{i}", *([] if tick else ["--no-tick"]))
                 for i in range(workers)]
        try:
            if not cs.wait_for(lambda: cs.live_workers(client, prefix) == workers, 120):
                sys.exit("workers did not start:\n" + procs[0].text()[-3000:])
            yield env, program, procs
        finally:
            for proc in procs:
                proc.stop()
            cs.drop_prefix(client, prefix)


def events(args: argparse.Namespace) -> None:
    print(f"events: {args.events} webhook events, {args.latency * 1000:.0f} ms per platform "
          "call, two calls an event")
    base = None
    for workers in args.workers:
        with tempfile.TemporaryDirectory(dir=args.scratch) as scratch:
            tmp = Path(scratch)
            store = SandboxStore(f"sqlite:///{tmp / 'sandbox.db'}")
            store.add_group("Desk", [store.add_person("Desk 0", "d0@example.com")])
            tickets = [store.add_ticket(title=f"Case {i}", group="Desk",
                                        category="password reset")
                       for i in range(args.events)]
            with cluster(tmp, workers, args, tick=False) as (env, program, procs):
                server, url = cs.start_server(program, env)
                procs.append(server)
                now = datetime.now(UTC)
                bodies = [event_body("ticket_created", now, event_id=f"e{i}", ticket=t.number)
                          for i, t in enumerate(tickets)]
                session = requests.Session()

                def post(payload: dict, session=session, url=url) -> int:
                    raw, headers = cs.signed(payload)
                    return session.post(f"{url}/webhooks/sandbox", data=raw, headers=headers,
                                        timeout=30).status_code

                ledger = Ledger(env["ITSM_CHANGE_DB"])
                started = time.monotonic()
                with ThreadPoolExecutor(4) as pool:
                    list(pool.map(post, bodies + bodies[::10]))
                posted = time.monotonic() - started
                cs.wait_for(lambda ledger=ledger: ledger.event_counts("grid")["processed"]
                            == args.events, 3600, every=0.2)
                elapsed = time.monotonic() - started
                prompted = len(ledger.effects("grid", kind="prompt", states=["done"]))
                ledger.close()
            rate = args.events / elapsed
            base = base or rate
            print(f"  {workers} worker(s): {rate:6.1f} events/s ({elapsed:.1f} s; posting took "
                  f"{posted:.1f} s), {prompted} prompted, {rate / base:.2f}x one worker")


def apply(args: argparse.Namespace) -> None:
    print(f"apply: {args.people} people x 1 training module, {args.latency * 1000:.0f} ms per "
          "effect written")
    base = None
    for workers in args.workers:
        with tempfile.TemporaryDirectory(dir=args.scratch) as scratch:
            tmp = Path(scratch)
            store = SandboxStore(f"sqlite:///{tmp / 'sandbox.db'}")
            with store.engine.begin() as conn:
                conn.execute(groups.insert().values(name="Desk"))
                conn.execute(people.insert(), [
                    {"id": f"u-{i:06d}", "name": f"Person {i}", "email": f"p{i}@example.com"}
                    for i in range(args.people)])
                conn.execute(memberships.insert(), [
                    {"group": "Desk", "person": f"u-{i:06d}"} for i in range(args.people)])
            with cluster(tmp, workers, args, training=True, tick=False) as (env, _p, _procs):
                ledger = Ledger(env["ITSM_CHANGE_DB"])
                app = make_app(ClusterSettings.from_env(env))
                started = time.monotonic()
                app.send_task("itsm_change.apply_plan", args=["grid"])

                def done(ledger=ledger) -> bool:
                    with ledger.engine.connect() as conn:
                        count = conn.execute(sa.text(
                            "select count(*) from effects where state = 'done'")).scalar_one()
                    return count == args.people

                cs.wait_for(done, 3600, every=0.2)
                elapsed = time.monotonic() - started
                written = len(store.all_tasks(kind="training"))
                ledger.close()
            rate = args.people / elapsed
            base = base or rate
            print(f"  {workers} worker(s): {elapsed:6.1f} s, {rate:7.0f} effects/s, {written} "
                  f"tasks on the platform, {rate / base:.2f}x one worker")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["events", "apply"])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--scratch", default="/dev/shm" if Path("/dev/shm").is_dir() else None,
                        help="Where the sandbox's database goes (default: memory-backed "
                             "/dev/shm, so the fake platform costs its latency, not disk "
                             "flushes)")
    parser.add_argument("--postgres", default=os.environ.get(
        "ITSM_CHANGE_TEST_POSTGRES_URL", POSTGRES))
    args = parser.parse_args()
    {"events": events, "apply": apply}[args.what](args)


if __name__ == "__main__":
    main()
