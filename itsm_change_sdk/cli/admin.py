"""``plugins``, ``doctor`` and ``install``: for the platform admin."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from ..model import CheckStatus
from ..plugins import channel_registry, get_plugin_manager, platform_registry
from .common import check_db, open_workspace

F = TypeVar("F", bound=Callable[..., Any])


@click.command()
@click.option("--hook", default=None, help="Only plugins that implement this hook.")
def plugins(hook: str | None) -> None:
    """List installed plugins, their versions and the hooks they implement."""
    pm = get_plugin_manager()
    registry = platform_registry(pm)
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda item: item[0]):
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
        if hook and hook not in hooks:
            continue
        dist = pm.dists.get(name)
        version = f"{dist.name} {dist.version}" if dist else "built in"
        click.echo(f"{name} ({version})")
        for hook_name in hooks:
            click.echo(f"    {hook_name}")
    for name, spec in sorted(registry.specs.items()):
        platform_hooks = spec.hooks()
        if hook and hook not in platform_hooks:
            continue
        click.echo(f"platform {name} (hooks of its instances)")
        for hook_name in platform_hooks:
            click.echo(f"    {hook_name}")
    channels = channel_registry(pm).channels
    for name, entry in sorted(channels.items()):
        by = "delivered by each platform" if entry.spec.delivered_by_platform \
            else "delivers itself"
        click.echo(f"channel {name} ({entry.spec.addressing.value}, {by}): "
                   f"{entry.spec.description}")
    click.echo(f"Channels: {', '.join(sorted(channels))}")
    click.echo(f"Platforms: {', '.join(sorted(registry.specs))}")


def _platforms_option(fn: F) -> F:
    return click.option("--platform", "platforms", multiple=True, required=True,
                        help="Platform to check (repeatable).")(fn)


@click.command()
@_platforms_option
@click.option("--db", envvar="ITSM_CHANGE_DB", default=None, hidden=True, callback=check_db)
def doctor(platforms: tuple[str, ...], db: str | None) -> None:
    """Check each platform's URL, credentials and permissions; say how to fix what fails."""
    failed = False
    with open_workspace(db) as ws:
        for name in platforms:
            ws.enable(name)
            checks = ws.platforms.call(name, "itsm_change_doctor") or []
            for check in checks:
                mark = {CheckStatus.OK: "ok  ", CheckStatus.WARN: "warn",
                        CheckStatus.FAIL: "FAIL"}[check.status]
                click.echo(f"[{mark}] {check.platform}: {check.name}: {check.message}")
                if check.fix and check.status is not CheckStatus.OK:
                    click.echo(f"       fix: {check.fix}")
                failed |= check.status is CheckStatus.FAIL
            last = ws.ledger.last_event(name)
            arrived = f"last event received {last:%Y-%m-%d %H:%M} UTC" if last else \
                "no webhook event received yet (run 'itsm-change serve' and 'install')"
            click.echo(f"[info] {name}: events: {arrived}")
    if failed:
        raise SystemExit(1)


@click.command()
@_platforms_option
@click.option("--webhook-url", default=None, help="Where 'itsm-change serve' is reachable.")
@click.option("--apply", "do_apply", is_flag=True, help="Create what the account may create.")
@click.option("--remove", is_flag=True, help="Remove what install created.")
@click.option("--db", envvar="ITSM_CHANGE_DB", default=None, hidden=True, callback=check_db)
def install(platforms: tuple[str, ...], webhook_url: str | None, do_apply: bool, remove: bool,
            db: str | None) -> None:
    """Print (or create, or remove) what each platform needs, such as the event webhook."""
    with open_workspace(db) as ws:
        for name in platforms:
            ws.enable(name)
            steps = ws.platforms.call(name, "itsm_change_install", webhook_url=webhook_url,
                                      apply=do_apply, remove=remove) or []
            for step in steps:
                mark = "done" if step.done else "todo"
                click.echo(f"[{mark}] {step.platform}: {step.name}: {step.message}")
                if step.instructions and not step.done:
                    click.echo(step.instructions)


def register(cli: click.Group) -> None:
    for command in (plugins, doctor, install):
        cli.add_command(command)
