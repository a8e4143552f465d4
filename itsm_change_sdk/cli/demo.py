"""``itsm-change demo``: the example program end to end on the sandbox."""

from __future__ import annotations

from pathlib import Path

import click

from .common import db_option


@click.command()
@click.option("--seed", default=7, show_default=True, help="Same seed, same output.")
@click.option("--weeks", default=10, show_default=True, type=click.IntRange(1, 52),
              help="Weeks of staff activity to simulate.")
@click.option("--program", "program_file", default=None,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Program file (default: the portal-rollout example).")
@db_option
def demo(seed: int, weeks: int, program_file: Path | None, db: str | None) -> None:
    """Reset the sandbox, run the example program on it for some weeks, print a summary."""
    from ..demo import example_program_path, run_demo
    from ..plugins import channel_registry, get_plugin_manager
    from ..schema import load_program

    channels = channel_registry(get_plugin_manager()).specs()
    program = load_program(program_file or example_program_path(), channels=channels)
    result = run_demo(program, db=db, seed=seed, weeks=weeks, echo=click.echo)
    click.echo("")
    click.echo(result.render())
    click.echo(f"\nThe sandbox's calendar is now {result.end:%Y-%m-%d}: staff actions "
               "('itsm-change sandbox ...') come after the demo's, and the next 'sync' reads "
               f"them. To act on a program date, add --as-of to each command, e.g. "
               f"itsm-change --as-of {result.end:%Y-%m-%d}T10:00 sync PROGRAM")


def register(cli: click.Group) -> None:
    cli.add_command(demo)
