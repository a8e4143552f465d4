"""``plugins``, ``doctor`` and ``install``: for the platform admin."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from .. import hookspecs
from ..errors import (
    APIError,
    AuthenticationError,
    PermissionDenied,
    ServerError,
    TransportError,
    printable,
)
from ..model import Check, CheckStatus
from ..plugins import channel_registry, get_plugin_manager, platform_registry
from ..schema.platform_checks import check_filters
from . import output
from .common import check_db, echo_json, json_option, load, open_workspace

F = TypeVar("F", bound=Callable[..., Any])


@click.command()
@click.option("--hook", default=None, help="Only plugins that implement this hook.")
@click.option("--settings", "show_settings", is_flag=True,
              help="List every platform's settings (type, default, variable), never values.")
@json_option
def plugins(hook: str | None, show_settings: bool, as_json: bool) -> None:
    """List installed plugins, their versions and the hooks they implement."""
    pm = get_plugin_manager()
    if show_settings:
        from .plugin_settings import show_settings as show

        show(pm, as_json)
        return
    if hook:
        _known_hook_or_exit(hook)
    found: list[dict[str, Any]] = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda item: item[0]):
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
        dist = pm.dists.get(name)
        found.append({"name": name, "kind": "plugin", "hooks": hooks,
                      "version": f"{dist.name} {dist.version}" if dist else "built in"})
    for name, spec in sorted(platform_registry(pm).specs.items()):
        found.append({"name": name, "kind": "platform", "hooks": spec.hooks(),
                      "settings": list(spec.settings)})
    shown = [item for item in found if not hook or hook in item["hooks"]]
    channels: list[dict[str, Any]] = [{"name": name, "addressing": entry.spec.addressing.value,
                 "delivered_by_platform": entry.spec.delivered_by_platform,
                 "description": entry.spec.description}
                for name, entry in sorted(channel_registry(pm).channels.items())]
    if as_json:
        echo_json({"plugins": shown, "channels": channels, "skipped": pm.skipped})
        return
    if output.on_terminal():
        output.print_table("Installed plugins and platforms", ["Name", "Kind", "Version", "Hooks"],
                    [(i["name"], i["kind"], i.get("version", ""), "\n".join(i["hooks"]))
                     for i in shown])
        output.print_table("Channels", ["Name", "Addressing", "Delivered by", "Description"],
                    [(c["name"], c["addressing"],
                      "each platform" if c["delivered_by_platform"] else "itself",
                      c["description"]) for c in channels])
        for name, why in pm.skipped.items():
            click.echo(f"skipped {name}: {why}")
        return
    for item in shown:
        if item["kind"] == "plugin":
            click.echo(f"{item['name']} ({item['version']})")
        else:
            click.echo(f"platform {item['name']} (hooks of its instances)")
        for hook_name in item["hooks"]:
            click.echo(f"    {hook_name}")
    for name, why in pm.skipped.items():
        click.echo(f"skipped {name}: {why}")
    for channel in channels:
        by = "delivered by each platform" if channel["delivered_by_platform"] \
            else "delivers itself"
        click.echo(f"channel {channel['name']} ({channel['addressing']}, {by}): "
                   f"{channel['description']}")
    click.echo(f"Channels: {', '.join(c['name'] for c in channels)}")
    click.echo("Platforms: " + ", ".join(i["name"] for i in found if i["kind"] == "platform"))


def _known_hook_or_exit(hook: str) -> None:
    known = sorted(name for name in dir(hookspecs) if name.startswith("itsm_change_"))
    if hook not in known:
        close = difflib.get_close_matches(hook, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else " (see 'itsm-change plugins')"
        raise click.BadParameter(f"{hook!r} is not a hook{hint}", param_hint="'--hook'")


def _platforms_option(fn: F) -> F:
    return click.option("--platform", "platforms", multiple=True, required=True,
                        help="Platform to check (repeatable).")(fn)


@click.command()
@_platforms_option
@click.option("--program", "program_file", default=None, metavar="FILE",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Also check this program's prompt and goal filter values.")
@click.option("--db", envvar="ITSM_CHANGE_DB", default=None, hidden=True, callback=check_db)
def doctor(platforms: tuple[str, ...], program_file: Path | None, db: str | None) -> None:
    """Check each platform's URL, credentials and permissions; say how to fix what fails."""
    failed = False
    with open_workspace(db) as ws:
        program = load(program_file, None, ws) if program_file is not None else None
        for name in platforms:
            ws.enable(name)
            try:
                checks = ws.platforms.call(name, "itsm_change_doctor") or []
                if program is not None:
                    checks = [*checks, *check_filters(ws.platforms, name, program)]
            except APIError as exc:
                # A plugin whose checks stop on an answer they did not expect: still one
                # failed line, with what to do, rather than the run ending on the error.
                checks = [Check(name, "platform", CheckStatus.FAIL, printable(str(exc)),
                                _fix_for(exc, name))]
            for check in checks:
                mark = {CheckStatus.OK: "ok  ", CheckStatus.WARN: "warn",
                        CheckStatus.FAIL: "FAIL"}[check.status]
                click.echo(printable(f"[{mark}] {check.platform}: {check.name}: "
                                     f"{check.message}"))
                fix = check.fix or (f"run 'itsm-change -v doctor --platform {name}' to see "
                                    "the calls made, and see the plugin's README"
                                    if check.status is CheckStatus.FAIL else None)
                if fix and check.status is not CheckStatus.OK:
                    click.echo(printable(f"       fix: {fix}"))
                failed |= check.status is CheckStatus.FAIL
            last = ws.ledger.last_event(name)
            arrived = f"last event received {last:%Y-%m-%d %H:%M} UTC" if last else \
                "no webhook event received yet (run 'itsm-change serve' and 'install')"
            click.echo(f"[info] {name}: events: {arrived}")
    if failed:
        raise SystemExit(1)


def _fix_for(exc: APIError, platform: str) -> str:
    """What to do about an error that ended a platform's checks, by its kind."""
    if isinstance(exc, AuthenticationError):
        return f"check the credentials in the {platform} settings (see its README)"
    if isinstance(exc, PermissionDenied):
        return "give the account the roles or permissions the plugin's README lists"
    if isinstance(exc, TransportError):
        return f"check the {platform} URL setting, the network and any proxy"
    if isinstance(exc, ServerError):
        return (f"{platform} is failing or unreachable behind a proxy; try again later, and "
                "give its admin the time of this check")
    return f"run 'itsm-change -v doctor --platform {platform}' to see the calls made"


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
