"""Options and helpers shared by the commands."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ..config import persistent_ledger_url
from ..errors import ConfigurationError
from ..model import Program
from ..workspace import Workspace, retarget

F = TypeVar("F", bound=Callable[..., Any])



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


def open_workspace(db: str | None) -> Workspace:
    """The workspace for a command; its clock honours the global ``--as-of``."""
    ctx = click.get_current_context(silent=True)
    as_of = (ctx.find_root().obj or {}).get("as_of") if ctx else None
    if as_of is None:
        return Workspace(db)
    return Workspace(db, clock=lambda: as_of)
