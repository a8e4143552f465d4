"""``itsm-change plugins --settings``: every installed platform's and channel's settings.

Read from each plugin's declaration (:class:`~itsm_change_sdk.settings.PluginSettings`):
name, type, default, whether it is secret, its environment variable, what it is, and where a
value is set now (environment or config file). Values themselves are never shown.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

import click
import pluggy

from ..config import env_name, load_config
from ..errors import ConfigurationError
from ..plugins import channel_registry, platform_registry
from ..settings import PluginSettings
from . import output
from .common import echo_json

__all__ = ["settings_rows", "show_settings"]


def _undeclared(owner: str, names: Iterable[str], secrets: Iterable[str]) -> list[dict[str, Any]]:
    """Rows for a plugin that lists only names: what is known, nothing guessed."""
    secret = set(secrets)
    return [{"name": name, "type": "", "default": None, "secret": name in secret,
             "required": False, "env": env_name(owner, name), "help": ""} for name in names]


def _where(owner: str, name: str, config: Mapping[str, Any]) -> str | None:
    if env_name(owner, name) in os.environ:
        return "environment"
    section = config.get("platforms", {}).get(owner, {})
    if isinstance(section, Mapping) and name in section:
        return "config file"
    return None


def settings_rows(pm: pluggy.PluginManager) -> list[dict[str, Any]]:
    """One row per setting of every platform and self-delivering channel, without values."""
    try:
        config = load_config()
    except ConfigurationError:
        config = {}  # an unreadable config file is reported by the commands that use it
    rows: list[dict[str, Any]] = []
    for name, spec in sorted(platform_registry(pm).specs.items()):
        declared: PluginSettings | None = spec.declared
        found = declared.describe() if declared else _undeclared(name, spec.settings,
                                                                 spec.secrets)
        rows += [{"owner": name, "kind": "platform", **row} for row in found]
    for name, entry in sorted(channel_registry(pm).channels.items()):
        rows += [{"owner": name, "kind": "channel", **row}
                 for row in _undeclared(name, entry.settings, entry.secrets)]
    for row in rows:
        row["set_in"] = _where(row["owner"], row["name"], config)
    return rows


def show_settings(pm: pluggy.PluginManager, as_json: bool) -> None:
    rows = settings_rows(pm)
    if as_json:
        echo_json({"settings": rows})
        return

    if output.on_terminal():
        output.print_table(
            "Settings (values are never shown)",
            ["Plugin", "Setting", "Type", "Default", "Secret", "Set in", "Environment variable",
             "What it is"],
            [(r["owner"], r["name"], r["type"], _default(r), "yes" if r["secret"] else "",
              r["set_in"] or "", r["env"], r["help"]) for r in rows])
        return
    for r in rows:
        facts = [r["type"], _default(r) if r["required"] else
                 (f"default {_default(r)}" if _default(r) else ""),
                 "secret" if r["secret"] else "", f"set in {r['set_in']}" if r["set_in"] else ""]
        shown = ", ".join(f for f in facts if f)
        facts_text = f" ({shown})" if shown else ""
        help_text = f": {r['help']}" if r["help"] else ""
        click.echo(f"{r['owner']}.{r['name']}{facts_text} {r['env']}{help_text}")


def _default(row: Mapping[str, Any]) -> str:
    value = row["default"]
    if row["required"]:
        return "required"
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        return ",".join(str(v) for v in value)
    return str(value)
