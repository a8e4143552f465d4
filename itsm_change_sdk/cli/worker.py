"""``worker``: a Celery worker for one or more programs (``pip install
'itsm-change-sdk[celery]'``); see ``docs/deployment.md``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from ..errors import ConfigurationError, ITSMError
from .common import db_option, load, open_workspace


def _require_celery() -> None:
    try:
        import celery  # noqa: F401
        import redis  # noqa: F401
    except ImportError:
        raise ConfigurationError(
            "the worker needs Celery and Redis: pip install 'itsm-change-sdk[celery]'"
        ) from None


@click.command()
@click.argument("program_files", metavar="PROGRAM...", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@db_option
@click.option("--concurrency", "-c", envvar="ITSM_CHANGE_WORKER_CONCURRENCY", default=None,
              type=click.IntRange(1, 512),
              help="Tasks at once (default: one per CPU; most time is spent waiting on "
                   "platforms, so more is usually better).")
@click.option("--pool", envvar="ITSM_CHANGE_WORKER_POOL", default="prefork", show_default=True,
              type=click.Choice(["prefork", "solo", "threads"]),
              help="Celery execution pool: processes, one task in this process, or threads.")
@click.option("--sync", "sync_mode", envvar="ITSM_CHANGE_WORKER_SYNC", default="auto",
              show_default=True, type=click.Choice(["auto", "always", "never"]),
              help="Poll platforms each tick: auto = those without a webhook secret.")
@click.option("--name", default=None, help="Worker name (default: itsm-change-PID@host).")
@click.option("--no-tick", is_flag=True,
              help="Take tasks only; never enqueue the schedule's ticks.")
@click.option("--loglevel", default="INFO", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False))
def worker(program_files: tuple[Path, ...], db: str | None, concurrency: int | None,
           pool: str, sync_mode: str, name: str | None, no_tick: bool, loglevel: str) -> None:
    """Start a Celery worker for the PROGRAM files: webhook events, applies split into
    batches, polling and the schedule, shared with every other worker on the same broker.

    The broker is ITSM_CHANGE_BROKER_URL (default redis://127.0.0.1:6379/0); the ledger must be
    one all workers share (PostgreSQL: --db or ITSM_CHANGE_DB).
    """
    _require_celery()
    import redis

    from ..cluster.settings import ClusterSettings

    settings = ClusterSettings.from_env()
    ids = []
    with open_workspace(db) as ws:
        for path in program_files:
            ids.append(load(path, None, ws).id)
    try:
        redis.Redis.from_url(settings.redis, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        raise ITSMError(
            f"Redis at {_safe(settings.redis)} does not answer ({type(exc).__name__}); start it "
            "or set ITSM_CHANGE_BROKER_URL / ITSM_CHANGE_REDIS_URL") from None
    if db:
        os.environ["ITSM_CHANGE_DB"] = db
    from ..cluster.context import PROGRAMS_ENV

    os.environ[PROGRAMS_ENV] = os.pathsep.join(str(p.resolve()) for p in program_files)
    os.environ["ITSM_CHANGE_WORKER_SYNC"] = sync_mode
    _run(settings, ids, name or f"itsm-change-{os.getpid()}@%h", pool, concurrency,
         loglevel.upper(), tick=not no_tick)


def _safe(url: str) -> str:
    from ..ledger import safe_url

    return safe_url(url)


def _run(settings: Any, programs: list[str], name: str, pool: str, concurrency: int | None,
         loglevel: str, tick: bool) -> None:
    from celery.signals import worker_ready, worker_shutdown

    from ..cluster.app import app
    from ..cluster.ops import Ticker

    def start_ticker(sender: Any = None, **_kwargs: Any) -> None:
        hostname = getattr(sender, "hostname", None) or name
        ticker = Ticker(settings, programs,
                        lambda program: app.send_task("itsm_change.tick", args=[program]),
                        name=str(hostname), ticking=tick)
        ticker.start()
        worker_shutdown.connect(lambda **_k: ticker.stop(), weak=False)

    worker_ready.connect(start_ticker, weak=False)
    argv = ["worker", "--pool", pool, "--hostname", name, "--loglevel", loglevel,
            "--queues", settings.queue, "--without-gossip", "--without-mingle"]
    if concurrency:
        argv += ["--concurrency", str(concurrency)]
    app.worker_main(argv)


def register(cli: click.Group) -> None:
    """Adds the cluster worker command."""
    cli.add_command(worker)
