"""``serve``: the event service (webhooks, event processing, scheduler) in one process.

Polling without a server stays ``itsm-change sync`` (in :mod:`.program`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import click

from .common import db_option, load, open_workspace, platform_option, program_argument

log = logging.getLogger(__name__)


@click.command()
@program_argument
@db_option
@platform_option
@click.option("--host", envvar="ITSM_CHANGE_SERVE_HOST", default="127.0.0.1",
              show_default=True, help="Interface to listen on (0.0.0.0 behind a proxy).")
@click.option("--port", envvar="ITSM_CHANGE_SERVE_PORT", default=8080, show_default=True,
              type=click.IntRange(0, 65535), help="Port (0 picks a free one).")
@click.option("--threads", envvar="ITSM_CHANGE_SERVE_THREADS", default=8, show_default=True,
              type=click.IntRange(1, 256), help="Request threads.")
@click.option("--tick", envvar="ITSM_CHANGE_SERVE_TICK", default=60.0, show_default=True,
              type=click.FloatRange(0.1), help="Seconds between scheduler ticks.")
@click.option("--max-body", envvar="ITSM_CHANGE_SERVE_MAX_BODY", default=1024 * 1024,
              show_default=True, type=click.IntRange(1024),
              help="Largest webhook body accepted, in bytes (larger: 413).")
@click.option("--sync", "sync_mode", envvar="ITSM_CHANGE_SERVE_SYNC", default="auto",
              show_default=True, type=click.Choice(["auto", "always", "never"]),
              help="Poll platforms each tick: auto = those without a webhook secret.")
@click.option("--no-sandbox-events", is_flag=True,
              help="Do not forward the sandbox's staff actions to the sandbox webhook.")
@click.option("--engine", envvar="ITSM_CHANGE_SERVE_ENGINE", default="embedded",
              show_default=True, type=click.Choice(["embedded", "celery"]),
              help="Process events here (embedded), or enqueue them for 'itsm-change worker' "
                   "processes (celery; see docs/deployment.md).")
@click.option("--processing-delay", envvar="ITSM_CHANGE_SERVE_PROCESSING_DELAY", default=0.0,
              type=click.FloatRange(0), hidden=True)
@click.option("--max-attempts", envvar="ITSM_CHANGE_SERVE_MAX_ATTEMPTS", default=8,
              show_default=True, type=click.IntRange(1),
              help="Failures after which an event is set aside as a dead letter "
                   "('itsm-change events').")
@click.option("--event-retention-days", envvar="ITSM_CHANGE_SERVE_EVENT_RETENTION_DAYS",
              default=30.0, show_default=True, type=click.FloatRange(min=1),
              help="Days processed events are kept before they are deleted.")
def serve(program_file: Path, db: str | None, platform: str | None, host: str, port: int,
          threads: int, tick: float, max_body: int, sync_mode: str, no_sandbox_events: bool,
          engine: str, processing_delay: float, max_attempts: int,
          event_retention_days: float) -> None:
    """Serve webhooks for PROGRAM's platforms and run its schedule, until stopped.

    Endpoints: POST /webhooks/<platform> (one per enabled platform) and GET /healthz.
    Each platform's webhook secret is its 'webhook_secret' setting, e.g. the environment
    variable ITSM_CHANGE_JIRA_WEBHOOK_SECRET.
    """
    from ..service.server import EventService, ServeOptions

    options = ServeOptions(host=host, port=port, threads=threads, tick=tick,
                           max_body=max_body, sync=sync_mode,
                           processing_delay=processing_delay,
                           forward_events=not no_sandbox_events,
                           max_attempts=max_attempts, retention_days=event_retention_days,
                           engine=engine)
    if engine == "celery":
        from .worker import _require_celery

        _require_celery()
    with open_workspace(db) as ws:
        program = load(program_file, platform, ws)
        ws.enable_for(program)
        service = EventService(ws, program, options)
        url = service.start()
        runs = "events and ticks run on the Celery workers" if engine == "celery" \
            else f"tick {tick:g}s"
        click.echo(f"Serving {program.id} on {url} (threads {threads}, {runs})", err=False)
        for name in ws.platforms.instances:
            if name in service.generated:
                how = f"signed with a per-process secret ({name} events forwarded)"
            elif service.secrets.get(name):
                how = "verified with its webhook_secret"
            else:
                how = "refused: no webhook_secret set; polled each tick instead" \
                    if name in service.polled else "refused: no webhook_secret set"
            click.echo(f"  POST {url}/webhooks/{name}  {how}")
        click.echo(f"  GET  {url}/healthz", err=False)
        service.serve_forever()
        click.echo("Stopped.")


def register(cli: click.Group) -> None:
    """Adds the event-service commands."""
    cli.add_command(serve)
