"""Options and helpers shared by the commands."""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from ..config import persistent_ledger_url
from ..errors import ConfigurationError
from ..model import Program
from ..workspace import Workspace, retarget

F = TypeVar("F", bound=Callable[..., Any])


class SuggestingGroup(click.Group):
    """A command group that answers a misspelt command with the ones it probably meant."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            close = difflib.get_close_matches(name, self.list_commands(ctx), n=2, cutoff=0.6)
            if close:
                ctx.fail(f"No such command {name!r}. Did you mean "
                         f"{' or '.join(repr(c) for c in close)}?")
        return super().resolve_command(ctx, args)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Each command's whole first sentence, wrapped, rather than cut at the line's end."""
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=300)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def json_option(fn: F) -> F:
    return click.option("--json", "as_json", is_flag=True,
                        help="Print JSON for scripts instead of text.")(fn)


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))



def check_db(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Refuse a ``--db`` that would not keep the ledger (in memory, a malformed URL)."""
    if value is None:
        return None
    try:
        return persistent_ledger_url(value)
    except ConfigurationError as exc:
        raise click.BadParameter(str(exc).removeprefix("--db "), ctx, param) from None


db_option = click.option(
    "--db", envvar="ITSM_CHANGE_DB", default=None, metavar="URL", callback=check_db,
    help="Ledger: an SQLAlchemy URL or SQLite path (default: a per-user file).")
platform_option = click.option(
    "--platform", default=None, metavar="NAME",
    help="Run every unit on this platform instead of the file's (rehearse on the sandbox, "
         "then run the same file against production).")


def program_argument(fn: F) -> F:
    return click.argument("program_file", metavar="PROGRAM",
                          type=click.Path(dir_okay=True, path_type=Path))(fn)


def load(program_file: Path, platform: str | None, ws: Workspace | None = None) -> Program:
    from ..schema import load_program

    kinds = None
    channels = None
    if ws is not None:
        from ..plugins import metric_registry, platform_spec

        kinds = set(metric_registry(ws.pm).kinds)
        channels = ws.platforms.channels
        if platform:
            platform_spec(ws.pm, platform)
    program = load_program(program_file, metric_kinds=kinds, channels=channels)
    return retarget(program, platform, channels) if platform else program


AS_OF_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]
"""The one format of every ``--as-of``: a UTC date (its start) or date and time."""


def as_of() -> datetime | None:
    """The global ``--as-of`` (or ``ITSM_CHANGE_AS_OF``), as an aware UTC datetime."""
    ctx = click.get_current_context(silent=True)
    value = (ctx.find_root().obj or {}).get("as_of") if ctx else None
    return value if isinstance(value, datetime) else None


def open_workspace(db: str | None) -> Workspace:
    """The workspace for a command; its clock honours the global ``--as-of``."""
    when = as_of()
    if when is None:
        return Workspace(db)
    return Workspace(db, clock=lambda: when)
