"""The ``itsm-change`` command line.

Exit codes: 0 done, 1 failed (a platform refused, an effect failed), 2 bad input or usage.
Every :class:`~itsm_change_sdk.errors.ITSMError` becomes a plain message, never a traceback.
"""

from __future__ import annotations

import io
import os
import sys
from datetime import UTC, datetime
from typing import Any

import click

from ..config import load_config
from ..errors import ConfigurationError, ITSMError, PluginError, ProgramError, printable
from ..http.redact import Redactor
from .common import AS_OF_FORMATS, SuggestingGroup
from .logs import LogSettings, setup_logging

__all__ = ["cli", "main"]


class Group(SuggestingGroup):
    """Turns the SDK's errors into messages and exit codes."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ProgramError as exc:
            click.echo(str(exc), err=True)
            count = len(exc.issues)
            click.echo(f"{count} problem{'s' if count != 1 else ''} found.", err=True)
            ctx.exit(2)
        except (ConfigurationError, PluginError) as exc:
            click.echo(f"Error: {_message(exc)}", err=True)
            ctx.exit(2)
        except ITSMError as exc:
            click.echo(f"Error: {_message(exc)}", err=True)
            ctx.exit(1)
        except BrokenPipeError:
            _quiet_after_closed_pipe()
            ctx.exit(141)
        except OSError as exc:
            # A data directory, config or output file the OS refused: say which, plainly.
            where = f" ({exc.filename})" if exc.filename else ""
            click.echo(f"Error: {exc.strerror or exc}{where}", err=True)
            ctx.exit(1)
        finally:
            logs = (ctx.obj or {}).get("logs")
            for line in logs.summary() if isinstance(logs, LogSettings) else []:
                click.echo(f"Note: {line}", err=True)


def _quiet_after_closed_pipe() -> None:
    """The reader went away (``| head``): stop like any Unix tool, without a message.

    Exit code 141 is what a shell reports for a program stopped by SIGPIPE. Standard output is
    pointed at /dev/null so the interpreter's final flush cannot complain either.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):  # no real descriptor (a test runner)
        pass


def _message(exc: ITSMError) -> str:
    """The error as one safe line: secrets removed, control characters escaped, and never
    empty (an answer without any detail, such as an HTML error page, still names its kind)."""
    text = str(exc).strip() or (f"{type(exc).__name__} without any detail from the platform; "
                                "run again with -v to see the calls made")
    return printable(_redact(text))


def _redact(text: str) -> str:
    secrets = [v for k, v in os.environ.items()
               if k.startswith("ITSM_CHANGE_") and any(
                   word in k for word in ("TOKEN", "PASSWORD", "SECRET", "API_KEY"))]
    return Redactor(secrets)(text)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="itsm-change-sdk")
@click.option("-v", "--verbose", count=True,
              help="Log each platform call (-v), or everything, every retry included (-vv).")
@click.option("-q", "--quiet", is_flag=True, help="Log errors only.")
@click.option("--as-of", "as_of", default=None, envvar="ITSM_CHANGE_AS_OF", metavar="DATETIME",
              type=click.DateTime(AS_OF_FORMATS),
              help="Act as if it were this time (UTC), in every command and every sandbox "
                   "action: rehearse a date in a program's calendar.")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool, as_of: datetime | None) -> None:
    """Run the people side of an IT change inside the ticketing tools already in use."""
    ctx.obj = {"as_of": as_of.replace(tzinfo=UTC) if as_of else None,
               "logs": setup_logging(verbose, quiet)}
    # A table named after a command in the config file gives that command's defaults,
    # e.g. [serve] port = 8080; the command line and environment variables still win.
    ctx.default_map = {name: table for name, table in load_config().items()
                       if name != "platforms" and isinstance(table, dict)}


def _register() -> None:
    from . import admin, db, events, feedback, program, report, sandbox, scaffold, service, worker

    for module in (program, admin, sandbox, service, worker, events, report, db, feedback,
                   scaffold):
        module.register(cli)
    from ..plugins import get_plugin_manager

    # Each plugin adds its commands on its own, so one that fails is named and the rest work.
    for impl in get_plugin_manager().hook.itsm_change_register_commands.get_hookimpls():
        try:
            impl.function(*[{"cli": cli}[arg] for arg in impl.argnames])
        except Exception as exc:  # third-party code: name it, never a traceback
            click.echo(f"Warning: plugin {impl.plugin_name!r} could not add its commands "
                       f"({exc!r}); they are missing until it is fixed or reinstalled", err=True)


_register()


def main() -> None:
    cli(prog_name="itsm-change")


if __name__ == "__main__":  # pragma: no cover
    main()
