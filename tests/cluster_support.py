"""Shared pieces of the cluster tests and benchmark: a Redis namespace per test, worker and
server subprocesses, and a program on the sandbox."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

REDIS_URL = os.environ.get("ITSM_CHANGE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SECRET = "whsec-cluster-5b1f9e"


def redis_or_reason() -> tuple[object | None, str]:
    """A client of the test Redis, or why there is none."""
    try:
        import redis
    except ImportError:
        return None, "redis is not installed (pip install 'itsm-change-sdk[celery]')"
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        return None, (f"no Redis answers at {REDIS_URL} ({type(exc).__name__}); start "
                      "redis-server or set ITSM_CHANGE_TEST_REDIS_URL")
    return client, ""


def drop_prefix(client, prefix: str) -> None:
    keys = list(client.scan_iter(match=f"{prefix}*", count=500))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start:start + 500])


def program_text(now: datetime, announce_at: datetime | None = None,
                 training: bool = False) -> str:
    start = (now - timedelta(days=3)).date()
    today = now.date()
    announce = "" if announce_at is None else f"""
communications:
  - {{id: midrun, title: Mid-run notice, channel: announcement, audience: [desk],
     at: "{announce_at.replace(microsecond=0).isoformat()}",
     template: "{{program}} changes for {{unit}}."}}"""
    if training:
        announce += """
training:
  - {id: basics, title: Basics, objectives: [Log a portal ticket], audience: [desk],
     due_days: 7}"""
    return f"""
id: grid
title: Cluster test
platforms: [sandbox]
waves:
  - {{id: pilot, title: Pilot, starts: {start}, go_live: {today}}}
units:
  - {{id: desk, title: Desk, wave: pilot, platform: sandbox, group: Desk}}{announce}
prompts:
  - id: reset
    title: Password reset
    filter: {{categories: [password reset]}}
    text: Point the caller to self-service reset.
    active: {{from: {start}, until: {today + timedelta(days=30)}}}
"""


def command(*args: str) -> list[str]:
    return [sys.executable, "-c", "from itsm_change_sdk.cli import main; main()", *args]


class Proc:
    """A subprocess whose output goes to a log file (shown when a test fails)."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("w") as out:
            self.proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT,
                                         text=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def text(self) -> str:
        return self.log.read_text(errors="replace")


def start_worker(program: Path, env: dict[str, str], name: str, *extra: str) -> Proc:
    return Proc(command("worker", str(program), "--pool", "solo", "--name", f"{name}@%h",
                        "--loglevel", "WARNING", *extra),
                env, program.with_name(f"worker-{name}.log"))


def start_server(program: Path, env: dict[str, str]) -> tuple[Proc, str]:
    log = program.with_name("serve.log")
    with log.open("w") as errors:
        proc = subprocess.Popen(command("serve", str(program), "--port", "0", "--engine",
                                        "celery", "--no-sandbox-events"),
                                env=env, stdout=subprocess.PIPE, stderr=errors, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"http://127\.0\.0\.1:\d+", line)
    wrapper = Proc.__new__(Proc)
    wrapper.log, wrapper.proc = log, proc
    if match is None:
        wrapper.stop()
        raise AssertionError(f"serve did not start: {line}{log.read_text()}")
    return wrapper, match.group(0)


def live_workers(client, prefix: str) -> int:
    return sum(1 for _ in client.scan_iter(match=f"{prefix}:worker:*"))


def wait_for(check: Callable[[], object], timeout: float = 60.0, every: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(every)
    return False


def cluster_env(tmp_path: Path, ledger_url: str, **extra: str) -> tuple[dict[str, str], str]:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    env = {**os.environ,
           "ITSM_CHANGE_HOME": str(tmp_path / "home"),
           "ITSM_CHANGE_CONFIG": str(tmp_path / "none.toml"),
           "ITSM_CHANGE_DB": ledger_url,
           "ITSM_CHANGE_SANDBOX_DB": str(tmp_path / "sandbox.db"),
           "ITSM_CHANGE_SANDBOX_WEBHOOK_SECRET": SECRET,
           "ITSM_CHANGE_BROKER_URL": REDIS_URL,
           "ITSM_CHANGE_CLUSTER_PREFIX": prefix,
           **extra}
    return env, prefix


def signed(payload: dict) -> tuple[bytes, dict[str, str]]:
    from itsm_change_sdk.sandbox.events import sign

    raw = json.dumps(payload).encode()
    return raw, {"X-Sandbox-Signature": sign(raw, SECRET)}


def slow_sandbox() -> None:
    """Make this process's sandbox a slower platform, from the environment: each hook call
    takes ``ITSM_CHANGE_TEST_CALL_SECONDS`` more, each effect written
    ``ITSM_CHANGE_TEST_EFFECT_SECONDS`` more (one REST call each), and a training batch waits
    ``ITSM_CHANGE_TEST_PAUSE_AFTER_WRITE`` seconds after its write (a worker killed then has
    written but not recorded)."""
    import functools

    from itsm_change_sdk.sandbox.platform import SandboxPlatform

    latency = float(os.environ.get("ITSM_CHANGE_TEST_CALL_SECONDS", "0") or 0)
    per_effect = float(os.environ.get("ITSM_CHANGE_TEST_EFFECT_SECONDS", "0") or 0)
    pause = float(os.environ.get("ITSM_CHANGE_TEST_PAUSE_AFTER_WRITE", "0") or 0)
    for name in dir(SandboxPlatform):
        if not name.startswith("itsm_change_") or name in (
                "itsm_change_parse_webhook", "itsm_change_event_forwarder",
                "itsm_change_doctor", "itsm_change_install"):
            continue
        original = getattr(SandboxPlatform, name)

        def wrapped(self, *args, __original=original, __name=name, **kwargs):
            if latency:
                time.sleep(latency)
            result = __original(self, *args, **kwargs)
            if pause and __name == "itsm_change_publish_training":
                time.sleep(pause)
            return result

        setattr(SandboxPlatform, name, functools.wraps(original)(wrapped))
    if per_effect:
        write = SandboxPlatform._write

        def slow_write(self, effect, apply):
            time.sleep(per_effect)
            return write(self, effect, apply)

        SandboxPlatform._write = slow_write


def start_slow_worker(program: Path, env: dict[str, str], name: str, *extra: str) -> Proc:
    """A worker whose sandbox is made slower by :func:`slow_sandbox`."""
    here = str(Path(__file__).parent)
    code = (f"import sys; sys.path.insert(0, {here!r}); import cluster_support; "
            "cluster_support.slow_sandbox(); from itsm_change_sdk.cli import main; main()")
    return Proc([sys.executable, "-c", code, "worker", str(program), "--pool", "solo",
                 "--name", f"{name}@%h", "--loglevel", "WARNING", *extra],
                env, program.with_name(f"worker-{name}.log"))


def register_probe() -> None:
    """A task that calls a URL ``calls`` times through the SDK's transport (so through the
    shared rate limit), naming its worker process in a header."""
    from celery import shared_task

    from itsm_change_sdk.http import Transport

    @shared_task(name="itsm_change_test.probe")
    def probe(url: str, calls: int) -> int:
        transport = Transport("probe", url, headers={"X-Worker": str(os.getpid())})
        for _ in range(calls):
            transport.request("GET", "/ping")
        return calls


def start_probe_worker(program: Path, env: dict[str, str], name: str) -> Proc:
    here = str(Path(__file__).parent)
    code = (f"import sys; sys.path.insert(0, {here!r}); import cluster_support; "
            "cluster_support.register_probe(); from itsm_change_sdk.cli import main; main()")
    return Proc([sys.executable, "-c", code, "worker", str(program), "--pool", "solo",
                 "--name", f"{name}@%h", "--loglevel", "WARNING", "--no-tick"],
                env, program.with_name(f"worker-{name}.log"))
