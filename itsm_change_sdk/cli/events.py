"""``events``: the webhook events set aside as dead letters, and retrying or dropping them."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import printable
from .common import db_option, echo_json, json_option, load, open_workspace, program_argument


@click.group()
def events() -> None:
    """Webhook events that failed too many times (dead letters): list, retry or drop them."""


@events.command("list")
@program_argument
@db_option
@json_option
def list_dead(program_file: Path, db: str | None, as_json: bool) -> None:
    """List PROGRAM's dead letters with the reason each failed."""
    with open_workspace(db) as ws:
        program = load(program_file, None, ws)
        counts = ws.ledger.event_counts(program.id)
        dead = ws.ledger.dead_events(program.id)
        if as_json:
            echo_json({"program": program.id, **counts, "dead_letters": [
                {"id": row.id, "platform": row.platform, "event_id": row.event_id,
                 "kind": row.kind, "attempts": row.attempts, "reason": row.error,
                 "dead_at": row.dead_at} for row in dead]})
            return
        click.echo(f"{program.id}: {counts['received']} events received, "
                   f"{counts['processed']} processed, {counts['dead']} dead letters")
        for row in dead:
            click.echo(printable(f"  {row.id:>6}  {row.platform} {row.kind} {row.event_id}: "
                                 f"{row.attempts} attempts; {row.error}"))


@events.command()
@program_argument
@click.argument("ids", nargs=-1, type=int, metavar="[ID]...")
@click.option("--all", "every", is_flag=True, help="Every dead letter of PROGRAM.")
@db_option
def retry(program_file: Path, ids: tuple[int, ...], every: bool, db: str | None) -> None:
    """Put dead letters back in the queue (after fixing what made them fail): the ones
    with these IDs, or --all. The event service processes them again."""
    chosen = _chosen(ids, every)
    with open_workspace(db) as ws:
        program = load(program_file, None, ws)
        count = ws.ledger.retry_events(program.id, chosen)
    click.echo(f"{count} dead letters of {program.id} back in the queue.")
    _missed(ids, count)


@events.command()
@program_argument
@click.argument("ids", nargs=-1, type=int, metavar="[ID]...")
@click.option("--all", "every", is_flag=True, help="Every dead letter of PROGRAM.")
@db_option
def drop(program_file: Path, ids: tuple[int, ...], every: bool, db: str | None) -> None:
    """Give dead letters up: the ones with these IDs, or --all. They count as processed
    (a re-delivery is still ignored) and are deleted with the other processed events."""
    chosen = _chosen(ids, every)
    with open_workspace(db) as ws:
        program = load(program_file, None, ws)
        count = ws.ledger.drop_events(program.id, chosen, ws.clock())
    click.echo(f"{count} dead letters of {program.id} dropped.")
    _missed(ids, count)


def _chosen(ids: tuple[int, ...], every: bool) -> list[int] | None:
    if bool(ids) == every:
        raise click.UsageError("give the IDs of dead letters ('itsm-change events list "
                               "PROGRAM' shows them) or --all, not both")
    return None if every else list(ids)


def _missed(ids: tuple[int, ...], count: int) -> None:
    if ids and count < len(set(ids)):
        click.echo(f"{len(set(ids)) - count} of the IDs given are not dead letters of this "
                   "program ('itsm-change events list PROGRAM' shows them).", err=True)
        raise SystemExit(1)


def register(cli: click.Group) -> None:
    cli.add_command(events)
