"""``db current`` and ``db upgrade``: the ledger's schema version, and moving it forward."""

from __future__ import annotations

import click

from ..config import ledger_url
from ..ledger import safe_url, schema_version, upgrade_schema
from .common import db_option


@click.group()
def db() -> None:
    """The ledger's schema: show its version, upgrade it after installing a new release."""


@db.command()
@db_option
def current(db: str | None) -> None:
    """Show the ledger's schema version and whether this release can use it."""
    url = ledger_url(db)
    state = schema_version(url)
    where = safe_url(url)
    if state.revision is None:
        click.echo(f"{where}: empty (created at version {state.head} on first use)")
    elif state.up_to_date:
        click.echo(f"{where}: version {state.revision} (current)")
    elif state.known:
        click.echo(f"{where}: version {state.revision}, older than this release's "
                   f"{state.head}: run 'itsm-change db upgrade'")
    else:
        click.echo(f"{where}: version {state.revision}, newer than this release knows "
                   f"({state.head}): upgrade itsm-change-sdk")
        raise SystemExit(1)


@db.command()
@db_option
def upgrade(db: str | None) -> None:
    """Migrate the ledger to this release's schema, keeping every record (back it up first).

    Safe to run again, and from several machines at once: the first migrates, the others
    find it done."""
    url = ledger_url(db)
    before, after = upgrade_schema(url)
    where = safe_url(url)
    if before == after:
        click.echo(f"{where}: already at version {after}")
    elif before is None:
        click.echo(f"{where}: created at version {after}")
    else:
        click.echo(f"{where}: upgraded from version {before} to {after}")


def register(cli: click.Group) -> None:
    cli.add_command(db)
