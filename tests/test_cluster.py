"""The Celery engine end to end, with the real Redis (127.0.0.1:6379, or
ITSM_CHANGE_TEST_REDIS_URL) and PostgreSQL: worker processes, ``serve --engine celery``,
redelivered webhooks and a worker killed mid-task. Skipped with the reason when either
server does not answer."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).parent))
import cluster_support as cs

from itsm_change_sdk.ledger import Ledger
from itsm_change_sdk.sandbox.events import event_body
from itsm_change_sdk.sandbox.store import SandboxStore

pytestmark = pytest.mark.slow


@pytest.fixture
def redis_client():
    client, reason = cs.redis_or_reason()
    if client is None:
        pytest.skip(reason)
    yield client
    client.close()


@pytest.fixture
def procs():
    started: list[cs.Proc] = []
    yield started
    for proc in started:
        proc.stop()


@pytest.fixture
def cluster(tmp_path, postgres_url, redis_client, procs):
    env, prefix = cs.cluster_env(tmp_path, postgres_url, ITSM_CHANGE_SERVE_TICK="1",
                                 ITSM_CHANGE_VISIBILITY_TIMEOUT="6")
    yield env, prefix
    for proc in procs:
        proc.stop()
    cs.drop_prefix(redis_client, prefix)


def owners(ledger: Ledger) -> set[str]:
    """The processes that claimed events (each worker is one process)."""
    import sqlalchemy as sa

    from itsm_change_sdk.ledger_tables import events

    with ledger.engine.connect() as conn:
        return set(conn.execute(sa.select(events.c.owner).distinct()).scalars())


def test_three_workers_process_each_event_once_and_send_the_midrun_notice_once(
        tmp_path, cluster, redis_client, procs):
    env, prefix = cluster
    now = datetime.now(UTC)
    program = tmp_path / "program.yaml"
    program.write_text(cs.program_text(now, announce_at=now + timedelta(seconds=12)))
    store = SandboxStore(f"sqlite:///{env['ITSM_CHANGE_SANDBOX_DB']}")
    store.add_group("Desk", [store.add_person(f"Desk {i}", f"d{i}@example.com")
                             for i in range(3)])
    count = 1000
    tickets = [store.add_ticket(title=f"Case {i}", group="Desk",
                                category="password reset" if i % 2 == 0 else "printer")
               for i in range(count)]
    for i in range(3):
        procs.append(cs.start_worker(program, env, f"w{i}"))
    server, url = cs.start_server(program, env)
    procs.append(server)
    assert cs.wait_for(lambda: cs.live_workers(redis_client, prefix) == 3, 60), \
        procs[0].text()[-3000:]

    bodies = [event_body("ticket_created", now, event_id=f"ev-{i}", ticket=t.number)
              for i, t in enumerate(tickets)]
    # Every fifth event is delivered again, some at once beside the first delivery.
    deliveries = bodies + bodies[::5]
    session = requests.Session()

    def deliver(payload: dict) -> int:
        raw, headers = cs.signed(payload)
        return session.post(f"{url}/webhooks/sandbox", data=raw, headers=headers,
                            timeout=30).status_code

    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(deliver, deliveries))
    assert set(statuses) <= {200, 202} and statuses.count(202) == count

    ledger = Ledger(env["ITSM_CHANGE_DB"])
    try:
        assert cs.wait_for(lambda: ledger.event_counts("grid")["processed"] == count, 90), \
            "\n".join(p.text()[-2000:] for p in procs)
        assert cs.wait_for(lambda: len(store.announcements()) == 1, 30)
        time.sleep(2.5)  # more ticks and any straggling redelivery: nothing twice
        per_ticket = {t.number: sum(1 for n in store.notes(t.number) if n.author ==
                                    "itsm-change") for t in tickets}
        assert [n for i, t in enumerate(tickets) if (n := per_ticket[t.number]) !=
                (1 if i % 2 == 0 else 0)] == []
        assert len(store.announcements()) == 1
        rows = ledger.effects("grid", kind="prompt")
        assert len(rows) == count // 2 and {r.state for r in rows} == {"done"}
        health = session.get(f"{url}/healthz", timeout=10).json()
        assert health["cluster"]["broker"] == "ok" and health["cluster"]["workers"] == 3
        assert health["events"]["backlog"] == 0
        assert len(owners(ledger)) == 3, "the three workers shared the events"
        shown = subprocess.run(cs.command("status", str(program), "--json"), env=env,
                               capture_output=True, text=True, timeout=60)
        cluster = json.loads(shown.stdout)["cluster"]
        assert cluster["workers"] == 3 and cluster["queue_depth"] >= 0
        assert sorted(w["name"].split("@")[0] for w in cluster["worker_list"]) == \
            ["w0", "w1", "w2"]
        text = subprocess.run(cs.command("status", str(program)), env=env,
                              capture_output=True, text=True, timeout=60).stdout
        assert "3 workers alive" in text and "tasks queued" in text
        assert cs.SECRET not in str(health)
    finally:
        ledger.close()


def test_a_worker_killed_after_writing_has_its_batch_delivered_again_and_nothing_twice(
        tmp_path, cluster, redis_client, procs):
    env, prefix = cluster
    # One tick only (at start), so that nothing but the redelivery can finish the batch.
    env = {**env, "ITSM_CHANGE_SERVE_TICK": "3600", "ITSM_CHANGE_VISIBILITY_TIMEOUT": "4"}
    program = tmp_path / "program.yaml"
    program.write_text(cs.program_text(datetime.now(UTC), training=True))
    store = SandboxStore(f"sqlite:///{env['ITSM_CHANGE_SANDBOX_DB']}")
    people = 40
    store.add_group("Desk", [store.add_person(f"Desk {i}", f"d{i}@example.com")
                             for i in range(people)])
    ledger = Ledger(env["ITSM_CHANGE_DB"])
    try:
        doomed = cs.start_slow_worker(program, {**env, "ITSM_CHANGE_TEST_PAUSE_AFTER_WRITE":
                                                "120"}, "doomed")
        procs.append(doomed)
        assert cs.wait_for(lambda: len(store.all_tasks(kind="training")) == people, 60), \
            doomed.text()[-3000:]
        rows = ledger.effects("grid", kind="training")
        assert len(rows) == people and {r.state for r in rows} == {"pending"}
        doomed.kill9()  # written on the platform, not yet recorded in the ledger

        procs.append(cs.start_worker(program, env, "survivor", "--no-tick"))
        assert cs.wait_for(lambda: {r.state for r in ledger.effects("grid", kind="training")}
                           == {"done"}, 60), procs[-1].text()[-3000:]
        time.sleep(1)
        tasks = store.all_tasks(kind="training")
        assert len(tasks) == people, "found on the platform, not written again"
        assert len({t["assignee"] for t in tasks}) == people
        assert redis_client.hlen(f"{prefix}:unacked") == 0, "the redelivered task was acked"
    finally:
        ledger.close()
