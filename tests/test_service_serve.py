"""``itsm-change serve`` end to end, as a subprocess on a loopback port: signed events,
kill -9 after an acknowledgement, and the sandbox beside it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import requests

from itsm_change_sdk.ledger import Ledger
from itsm_change_sdk.sandbox.events import event_body, sign
from itsm_change_sdk.sandbox.store import SandboxStore

SECRET = "whsec-e2e-4d2c8a61"


def program_text(today: date) -> str:
    start = today - timedelta(days=3)
    return f"""
id: live
title: Live test
platforms: [sandbox]
goals:
  - {{id: share, title: Portal share, metric: channel_share, params: {{channel: portal}},
     filter: {{kinds: [incident]}}, baseline: 0.2, target: 0.6}}
waves:
  - {{id: pilot, title: Pilot, starts: {start}, go_live: {today}}}
units:
  - {{id: desk, title: Desk, wave: pilot, platform: sandbox, group: Desk}}
training:
  - {{id: basics, title: Basics, objectives: [Log a portal ticket], audience: [desk],
     due_days: 7}}
communications:
  - {{id: kickoff, title: Kickoff, channel: announcement, audience: [desk],
     at: {start} 09:00, template: "{{program}} starts for {{unit}}."}}
surveys:
  - {{id: pulse, title: Pulse, question: How is it going?}}
prompts:
  - id: reset
    title: Password reset
    filter: {{categories: [password reset]}}
    text: Point the caller to self-service reset.
    active: {{from: {start}, until: {today + timedelta(days=30)}}}
"""


@pytest.fixture
def env(tmp_path: Path):
    home = tmp_path / "serve-home"
    values = {**os.environ, "ITSM_CHANGE_HOME": str(home),
              "ITSM_CHANGE_CONFIG": str(tmp_path / "none.toml"),
              "ITSM_CHANGE_DB": str(tmp_path / "ledger.db"),
              "ITSM_CHANGE_SANDBOX_DB": str(tmp_path / "sandbox.db")}
    values.pop("ITSM_CHANGE_SANDBOX_WEBHOOK_SECRET", None)
    return values


@pytest.fixture
def program_file(tmp_path: Path) -> Path:
    path = tmp_path / "program.yaml"
    path.write_text(program_text(datetime.now(UTC).date()))
    return path


@pytest.fixture
def store(tmp_path: Path) -> SandboxStore:
    store = SandboxStore(f"sqlite:///{tmp_path / 'sandbox.db'}")
    store.add_group("Desk", [store.add_person(f"Desk {i}", f"d{i}@example.com")
                             for i in range(2)])
    return store


class Server:
    def __init__(self, program_file: Path, env: dict[str, str], *args: str) -> None:
        self.log = program_file.with_name(f"serve-{time.monotonic_ns()}.log")
        with self.log.open("w") as errors:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", "from itsm_change_sdk.cli import main; main()",
                 "serve", str(program_file), "--port", "0", "--tick", "0.5", *args],
                env=env, stdout=subprocess.PIPE, stderr=errors, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:\d+", line)
        if match is None:
            self.stop()
            pytest.fail(f"serve did not start: {line}{self.log.read_text()}")
        self.url = match.group(0)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


@pytest.fixture
def servers():
    started: list[Server] = []
    yield started
    for server in started:
        server.stop()


def post(url: str, payload: dict, secret: str = SECRET) -> requests.Response:
    raw = json.dumps(payload).encode()
    return requests.post(f"{url}/webhooks/sandbox", data=raw, timeout=10,
                         headers={"X-Sandbox-Signature": sign(raw, secret)})


def wait_for(check, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


def prompts_on(store: SandboxStore, number: str) -> int:
    return sum(1 for n in store.notes(number) if n.author == "itsm-change")


@pytest.mark.slow
def test_killed_after_the_acknowledgement_the_event_is_processed_after_restart(
        tmp_path, env, program_file, store, servers):
    env = {**env, "ITSM_CHANGE_SANDBOX_WEBHOOK_SECRET": SECRET}
    ticket = store.add_ticket(title="Locked out", category="password reset", group="Desk")
    server = Server(program_file, env, "--processing-delay", "30", "--no-sandbox-events")
    servers.append(server)
    event = event_body("ticket_created", datetime.now(UTC), event_id="kill-1",
                       ticket=ticket.number)
    response = post(server.url, event)
    assert response.status_code == 202
    server.kill9()
    assert prompts_on(store, ticket.number) == 0, "killed before processing"
    ledger = Ledger(f"sqlite:///{env['ITSM_CHANGE_DB']}")
    assert ledger.event_counts() == {"received": 1, "processed": 0, "dead": 0}

    restarted = Server(program_file, env, "--no-sandbox-events")
    servers.append(restarted)
    assert post(restarted.url, event).status_code == 200, "a re-delivery is a duplicate"
    assert wait_for(lambda: ledger.event_counts()["processed"] == 1)
    assert prompts_on(store, ticket.number) == 1
    health = requests.get(f"{restarted.url}/healthz", timeout=10).json()
    assert health["events"] == {"received": 1, "processed": 1, "dead": 0, "backlog": 0,
                                "failing": 0, "dead_letters": []}
    assert health["ledger"] == {"ok": True} and SECRET not in json.dumps(health)
    restarted.stop()
    assert restarted.proc.returncode == 0
    ledger.close()


@pytest.mark.slow
def test_beside_the_sandbox_staff_actions_flow_through_exactly_once(
        tmp_path, env, program_file, store, servers):
    server = Server(program_file, env)
    servers.append(server)
    ledger = Ledger(f"sqlite:///{env['ITSM_CHANGE_DB']}")
    try:
        assert wait_for(lambda: len(store.all_tasks(kind="training")) == 2), "apply ticked"
        assert wait_for(lambda: len(store.announcements()) == 1)
        ticket = store.add_ticket(title="<b>Locked</b> out", category="password reset",
                                  group="Desk")
        task = store.all_tasks(kind="training")[0]
        store.set_task_state(task["number"], "closed")
        store.add_note(ticket.number, task["assignee"], "#feedback aw=5 kn=2 need a guide",
                       internal=False)
        assert wait_for(lambda: prompts_on(store, ticket.number) == 1)
        assert wait_for(lambda: ledger.get(task["key"]).completed)
        assert wait_for(lambda: len(list(ledger.feedback("live"))) == 1)
        [response] = list(ledger.feedback("live"))
        assert response.unit == "desk" and response.scores == {"awareness": 5, "knowledge": 2}
        time.sleep(1.5)  # more ticks: nothing is done twice
        assert prompts_on(store, ticket.number) == 1
        assert len(store.announcements()) == 1 and len(store.all_tasks(kind="training")) == 2
        assert requests.get(f"{server.url}/webhooks/sandbox", timeout=5).status_code == 405
        unsigned = requests.post(f"{server.url}/webhooks/sandbox", data=b"{}", timeout=5)
        assert unsigned.status_code == 401
        big = requests.post(f"{server.url}/webhooks/sandbox", data=b"x" * (2 * 1024 * 1024),
                            timeout=10)
        assert big.status_code == 413
    finally:
        ledger.close()
