"""``report``, ``gate`` and ``signoff``: what a change lead reads and decides."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..errors import printable
from ..model import Program
from ..workspace import Workspace
from . import output
from .common import (
    AS_OF_FORMATS,
    db_option,
    echo_json,
    json_option,
    load,
    open_workspace,
    platform_option,
    program_argument,
)
from .common import as_of as global_as_of

if TYPE_CHECKING:
    from ..report.build import Report

as_of_option = click.option(
    "--as-of", "as_of", default=None, type=click.DateTime(AS_OF_FORMATS), hidden=True,
    help="The same as the global 'itsm-change --as-of', kept for older scripts.")


def _build(ws: Workspace, program: Program, as_of: datetime | None) -> Report:
    """The report judged at the command's ``--as-of`` or the global one (default: now, or the
    latest record when the records run ahead of the clock)."""
    from ..plugins import metric_registry
    from ..report.build import build_report, program_tickets

    ws.enable_for(program)
    when = as_of.replace(tzinfo=UTC) if as_of is not None else global_as_of()
    return build_report(program, ws.ledger, program_tickets(ws.platforms, program),
                        metric_registry(ws.pm).kinds, now=ws.clock(), as_of=when)


@click.command()
@program_argument
@db_option
@platform_option
@as_of_option
@click.option("--html", "html_file", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="Also write a self-contained HTML page with charts.")
@click.option("--csv", "csv_dir", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="Also write the numbers as CSV files into this directory.")
@click.option("--json", "json_file", default=None, is_flag=False, flag_value="-",
              type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
              help="Also write the numbers as one JSON file; without FILE (or with -), print "
                   "a JSON summary for scripts instead of text: the verdict and every gate.")
def report(program_file: Path, db: str | None, platform: str | None, as_of: datetime | None,
           html_file: Path | None, csv_dir: Path | None, json_file: Path | None) -> None:
    """Goals, training, communication, feedback, prompts and wave gates for a program."""
    from ..report.export import write_csv, write_json
    from ..report.html import render_html
    from ..report.summary import summary_dict
    from ..report.terminal import render_text

    to_stdout = json_file is not None and str(json_file) == "-"
    with open_workspace(db) as ws:
        program = load(program_file, platform, ws)
        built = _build(ws, program, as_of)
        if to_stdout:
            echo_json(summary_dict(built))
        else:
            click.echo("\n".join(render_text(built)))

        def say(text: str) -> None:
            # With the summary on standard output, what was written goes to standard error.
            click.echo(text, err=to_stdout)

        if html_file is not None:
            html_file.write_text(render_html(built), encoding="utf-8")
            say(f"\nWrote {html_file}")
        if csv_dir is not None:
            paths = write_csv(built, csv_dir)
            say(f"Wrote {len(paths)} CSV files to {csv_dir}")
        if json_file is not None and not to_stdout:
            write_json(built, json_file)
            say(f"Wrote {json_file}")


def _wave_or_exit(program: Program, wave: str) -> None:
    known = [w.id for w in program.waves]
    if wave not in known:
        click.echo(f"Error: {program.id} has no wave {wave!r} (waves: {', '.join(known)})",
                   err=True)
        raise SystemExit(2)


@click.command()
@program_argument
@click.argument("wave")
@db_option
@platform_option
@as_of_option
@json_option
def gate(program_file: Path, wave: str, db: str | None, platform: str | None,
         as_of: datetime | None, as_json: bool) -> None:
    """Say whether WAVE may start, one reason per line. Exit 0 open, 1 closed, 2 bad input."""
    from ..report.summary import gate_dict

    with open_workspace(db) as ws:
        program = load(program_file, platform, ws)
        _wave_or_exit(program, wave)
        built = _build(ws, program, as_of)
        result = built.gate(wave)
        if as_json:
            found = gate_dict(result, built.as_of.isoformat())
            found["notes"] += built.notes
            echo_json(found)
            raise SystemExit(0 if result.open else 1)
        against = f" (after {result.previous})" if result.previous else " (first wave)"
        click.echo(f"Gate for {wave}{against}, as of {built.as_of:%Y-%m-%d}: "
                   f"{'OPEN' if result.open else 'CLOSED'}")
        if output.on_terminal() and result.conditions:
            output.print_table(f"Conditions for {wave}", ["Check", "Status", "Reason"],
                               [(c.check, "met" if c.ok else "not met", c.text)
                                for c in result.conditions],
                               styles={"Status": output.ACTION_STYLES})
        else:
            for condition in result.conditions:
                click.echo(printable(f"  [{'ok' if condition.ok else '--'}] {condition.text}"))
        for note in result.notes + built.notes:
            click.echo(printable(f"  note: {note}"))
        if not result.open:
            failed = sum(not c.ok for c in result.conditions)
            click.echo(f"{failed} of {len(result.conditions)} conditions not met.")
            raise SystemExit(1)


@click.command()
@program_argument
@click.argument("wave")
@click.option("--member", required=True, metavar="ID", help="The alliance member's id.")
@click.option("--note", default="", help="What the sign-off rests on, or its conditions.")
@db_option
def signoff(program_file: Path, wave: str, member: str, note: str, db: str | None) -> None:
    """Record that an alliance member signs WAVE off (once; signing again is reported)."""
    with open_workspace(db) as ws:
        program = load(program_file, None, ws)
        _wave_or_exit(program, wave)
        found = next((m for m in program.alliance if m.id == member), None)
        if found is None:
            ids = ", ".join(m.id for m in program.alliance) or "none"
            click.echo(f"Error: {program.id} has no alliance member {member!r} "
                       f"(members: {ids})", err=True)
            raise SystemExit(2)
        if wave not in found.signs_off:
            click.echo(f"Error: {member} does not sign {wave} off (signs off: "
                       f"{', '.join(found.signs_off) or 'nothing'}); change the program file "
                       "if they should", err=True)
            raise SystemExit(2)
        if ws.ledger.sign_off(program.id, wave, member, note, ws.clock()):
            click.echo(f"Recorded: {found.name} signs {wave} off.")
            return
        earlier = next(s for s in ws.ledger.signoffs(program.id)
                       if s.wave == wave and s.member == member)
        click.echo(f"{found.name} signed {wave} off already on {earlier.signed_at:%Y-%m-%d}; "
                   "not recorded again.")


def register(cli: click.Group) -> None:
    """Adds the reporting commands."""
    for command in (report, gate, signoff):
        cli.add_command(command)
