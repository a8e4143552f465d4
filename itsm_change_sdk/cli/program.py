"""``validate``, ``plan``, ``apply``, ``status`` and ``sync``: a program's lifecycle."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..errors import printable
from . import output
from .common import (
    as_of,
    db_option,
    echo_json,
    json_option,
    load,
    open_workspace,
    platform_option,
    program_argument,
)
from .progress import apply_progress, planning

if TYPE_CHECKING:
    from ..model import Program
    from ..planner import Plan
    from ..workspace import Workspace


def show_plan(the_plan: Plan, as_json: bool = False) -> None:
    """The plan as JSON, as a table on a terminal, or as diff lines in a pipe."""
    if as_json:
        echo_json({
            "program": the_plan.program,
            "at": the_plan.now.isoformat(),
            "actions": [{"action": a.action, "kind": a.kind, "key": a.key,
                         "platform": a.platform, "detail": a.detail}
                        for a in the_plan.actions],
            "counts": {name: the_plan.count(name)
                       for name in ("create", "update", "retire", "skip")},
            "unchanged": the_plan.unchanged,
            "writes": the_plan.writes,
        })
        return
    text = the_plan.render()
    if not output.on_terminal() or not the_plan.actions:
        click.echo(printable(text))
        return
    output.print_table(f"Plan for {the_plan.program}", ["Action", "Kind", "Key", "Detail"],
                       [(a.action, a.kind, a.key, a.detail) for a in the_plan.actions],
                       styles={"Action": output.ACTION_STYLES})
    click.echo(printable(text.splitlines()[-1]))


@click.command()
@program_argument
@db_option
@platform_option
def validate(program_file: Path, db: str | None, platform: str | None) -> None:
    """Check a program file; print every problem with its file, field and line. With
    --platform, also check its prompts' and goals' filter values against that platform."""
    if platform is None:
        program = load(program_file, None)
    else:
        with open_workspace(db) as ws:
            program = load(program_file, platform, ws)
            _check_filters_on(ws, program, platform)
    click.echo(f"{program_file}: ok ({program.id}: {len(program.goals)} goals, "
               f"{len(program.waves)} waves, {len(program.units)} units, "
               f"{len(program.training)} training modules, "
               f"{len(program.communications)} communications, "
               f"{len(program.prompts)} prompts)")
    from ..alliance import silence_warnings

    for warning in silence_warnings(program):
        click.echo(f"warning: {warning}")


def _check_filters_on(ws: Workspace, program: Program, platform: str) -> None:
    """Print the platform's findings on the program's filters; exit 1 on a failed one."""
    from ..model import CheckStatus
    from ..schema.platform_checks import check_filters

    ws.enable(platform)
    failed = False
    for check in check_filters(ws.platforms, platform, program):
        mark = {CheckStatus.OK: "ok  ", CheckStatus.WARN: "warn",
                CheckStatus.FAIL: "FAIL"}[check.status]
        click.echo(printable(f"[{mark}] {check.platform}: {check.name}: {check.message}"))
        if check.fix and check.status is not CheckStatus.OK:
            click.echo(printable(f"       fix: {check.fix}"))
        failed |= check.status is CheckStatus.FAIL
    if failed:
        raise SystemExit(1)


@click.command()
@program_argument
@db_option
@platform_option
@json_option
def plan(program_file: Path, db: str | None, platform: str | None, as_json: bool) -> None:
    """Show what apply would create, update or retire now, as a diff."""
    with open_workspace(db) as ws:
        program = load(program_file, platform, ws)
        ws.enable_for(program)
        show_plan(ws.plan(program), as_json)


@click.command()
@program_argument
@db_option
@platform_option
@click.option("--dry-run", is_flag=True, help="Plan and print, write nothing.")
@click.option("--concurrency", default=4, show_default=True, type=click.IntRange(1, 32),
              help="Batches in flight at once.")
@click.option("--force", is_flag=True,
              help="With 'gates: enforce', apply waves whose gate is closed too (needs --note).")
@click.option("--note", default=None, help="Why the closed gate is overridden; recorded.")
def apply(program_file: Path, db: str | None, platform: str | None, dry_run: bool,
          concurrency: int, force: bool, note: str | None) -> None:
    """Create, update and retire the program's effects on its platforms."""
    from ..report.enforce import enforce_gates

    if force and not (note or "").strip():
        click.echo("Error: --force needs --note TEXT saying why the closed gate is "
                   "overridden (the note is recorded with the override).", err=True)
        raise SystemExit(2)
    with open_workspace(db) as ws:
        ws.concurrency = concurrency
        program = load(program_file, platform, ws)
        ws.enable_for(program)
        with planning(program.id):
            planned = ws.runner(program).plan()
        hold = enforce_gates(ws, program, planned, (note or "").strip() if force else None)
        the_plan = hold.plan
        for wave, gate in hold.closed.items():
            click.echo(f"Gate for {wave} is CLOSED (gates: enforce):")
            for condition in gate.conditions:
                if not condition.ok:
                    click.echo(printable(f"  [--] {condition.text}"))
        if hold.forced:
            done = "recorded" if hold.recorded else "an override was recorded earlier"
            click.echo(f"Applying anyway (--force); note {done}.")
        elif hold.closed:
            click.echo(f"Held back {hold.held_actions} writes of {', '.join(hold.closed)} "
                       "until the gate opens (or apply --force --note TEXT).")
        if dry_run:
            show_plan(the_plan)
            click.echo("Dry run: nothing was written.")
            return
        with apply_progress(the_plan.writes) as update:
            report = ws.runner(program).apply(the_plan, progress=update)
        click.echo(f"Applied {program.id}: {report.summary()}.")
        for key, error in report.failed:
            click.echo(printable(f"  failed {key}: {error}"), err=True)
        if not report.ok or hold.held_actions:
            raise SystemExit(1)


@click.command()
@program_argument
@db_option
@platform_option
@json_option
def status(program_file: Path, db: str | None, platform: str | None, as_json: bool) -> None:
    """What the ledger holds for a program: effects by kind and state, training progress."""
    with open_workspace(db) as ws:
        program = load(program_file, platform, ws)
        found = ws.ledger.effect_counts(program.id)
        counts = found.by_state
        queue = ws.ledger.event_counts(program.id)
        dead = ws.ledger.dead_events(program.id, limit=5) if queue["dead"] else []
        cluster = _cluster()
        if as_json:
            echo_json({
                "program": program.id,
                "effects": [{"kind": kind, "state": state, "count": count}
                            for (kind, state), count in sorted(counts.items())],
                "training": {"assigned": found.training_assigned,
                             "completed": found.training_completed},
                "failed": [{"key": key, "error": error} for key, error in found.failed],
                "prompts": {prompt_id: {"matched": matched, "prompted": prompted}
                            for prompt_id, (matched, prompted) in sorted(found.prompts.items())},
                "events": {**queue, "dead_letters": [
                    {"id": row.id, "platform": row.platform, "event_id": row.event_id,
                     "reason": row.error} for row in dead]},
                **({"cluster": cluster} if cluster is not None else {}),
            })
            return
        if cluster is not None:
            from ..cluster.ops import cluster_line

            click.echo(cluster_line(cluster))
        for row in dead:
            click.echo(printable(f"dead letter {row.id} ({row.platform} {row.kind} "
                                 f"{row.event_id}): {row.error}"), err=True)
        if dead:
            click.echo(f"{queue['dead']} webhook events failed too often and are set aside: "
                       f"'itsm-change events list {program_file}' shows them, 'events retry' "
                       "or 'events drop' deals with them.", err=True)
        if not counts:
            click.echo(f"{program.id}: nothing applied yet.")
            return
        if output.on_terminal():
            output.print_table(f"{program.id}: effects in the ledger", ["Kind", "State", "Count"],
                        [(kind, state, count) for (kind, state), count in sorted(counts.items())],
                        numeric=["Count"], styles={"State": output.STATE_STYLES})
        else:
            click.echo(f"{program.id}:")
            for (kind, state), count in sorted(counts.items()):
                click.echo(f"  {kind:<17} {state:<8} {count:>6}")
        if found.training_assigned:
            done, assigned = found.training_completed, found.training_assigned
            click.echo(f"  training completed: {done}/{assigned} "
                       f"({100 * done / assigned:.0f}%)")
        for prompt_id, (matched, prompted) in sorted(found.prompts.items()):
            click.echo(f"  prompt {prompt_id}: {matched} tickets matched, "
                       f"{prompted} prompted")
        for key, error in found.failed[:20]:
            click.echo(printable(f"  failed {key}: {error}"))


def _cluster() -> dict[str, Any] | None:
    """The Celery cluster's queue and workers, when ITSM_CHANGE_BROKER_URL names one."""
    try:
        from ..cluster.ops import cluster_status
    except ImportError:  # the [celery] extra is not installed: no cluster to show
        return None
    return cluster_status()


@click.command()
@program_argument
@db_option
@platform_option
def sync(program_file: Path, db: str | None, platform: str | None) -> None:
    """Read back completions, feedback and new tickets by polling (no webhooks needed)."""
    with open_workspace(db) as ws:
        program = load(program_file, platform, ws)
        ws.enable_for(program)
        _follow_the_rehearsal(ws, program)
        report = ws.sync(program)
        click.echo(f"Synced {program.id}: {report.summary()}.")
        for error in report.errors:
            click.echo(printable(f"  {error}"), err=True)
        if report.errors:
            raise SystemExit(1)


def _follow_the_rehearsal(ws: Workspace, program: Program) -> None:
    """Without ``--as-of``, a sync of a program on the sandbox whose records run ahead of the
    real clock (the demo's simulated calendar) runs at the sandbox's latest moment, as the
    report does, so what staff do after the demo (a new ticket, a comment) is read and prompted
    on the rehearsal's calendar rather than found outside every prompt's dates."""
    if as_of() is not None or "sandbox" not in program.platforms:
        return
    from ..config import sandbox_url
    from ..model import utcnow
    from ..sandbox.store import SandboxStore

    store = SandboxStore(sandbox_url())
    try:
        latest = store.latest_activity()
    finally:
        store.engine.dispose()
    if latest is None or latest <= utcnow():
        return
    ws.clock = lambda: latest
    click.echo(f"The sandbox runs ahead of the clock (a rehearsal): syncing as of "
               f"{latest:%Y-%m-%d %H:%M} UTC; give --as-of to choose another moment.", err=True)


def register(cli: click.Group) -> None:
    for command in (validate, plan, apply, status, sync):
        cli.add_command(command)
