"""A platform plugin's settings, declared once.

Each plugin lists its settings in one :class:`PluginSettings` (name, type, default, whether it
is secret, a line of help). The same declaration registers the platform (the names the core
resolves from the environment and the config file, and which of them are secrets), turns the
resolved strings into typed values for the client, names the setting and how to set it in
every error, and is what ``itsm-change plugins --settings`` and the plugin's README show, so
the list is never written twice and cannot drift.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .config import config_path, env_name
from .errors import ConfigurationError

__all__ = ["TIMEOUT", "PluginSettings", "Setting"]

_TYPES: dict[type[Any], str] = {str: "text", int: "integer", float: "number", bool: "yes/no",
                                tuple: "list"}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Setting:
    """One setting of a platform.

    :ivar type: ``str``, ``int``, ``float``, ``bool`` (true/false, yes/no, 1/0) or ``tuple``
        (a comma-separated list, or a list in the config file).
    :ivar default: the value when none is set (``None``: unset).
    :ivar secret: never printed, logged, stored in the ledger or put in an error.
    :ivar required: the platform cannot start without it.
    :ivar choices: the only values allowed (for ``str`` settings).
    """

    name: str
    help: str
    type: type[Any] = str
    default: Any = None
    secret: bool = False
    required: bool = False
    choices: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.type not in _TYPES:
            raise TypeError(f"setting {self.name!r}: type must be one of str, int, float, "
                            f"bool or tuple, not {self.type!r}")
        if self.secret and self.default is not None:
            raise TypeError(f"setting {self.name!r}: a secret has no default")

    @property
    def kind(self) -> str:
        """The type in words, for tables and docs."""
        if self.choices:
            return " | ".join(self.choices)
        return _TYPES[self.type]


TIMEOUT = Setting("timeout", "HTTP timeout in seconds: one number, or 'connect,read' "
                  "(e.g. 5,60)", default="5,30")
"""The setting every HTTP platform has; read with :func:`~itsm_change_sdk.config.http_timeout`."""


@dataclass(frozen=True)
class PluginSettings:
    """Every setting of one platform, in the order the docs show them."""

    platform: str
    settings: tuple[Setting, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        names = [s.name for s in self.settings]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise TypeError(f"{self.platform}: setting(s) declared twice: {', '.join(twice)}")

    def __len__(self) -> int:
        return len(self.settings)

    def __iter__(self) -> Iterator[Setting]:
        return iter(self.settings)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.settings)

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.settings if s.secret)

    def get(self, name: str) -> Setting:
        for setting in self.settings:
            if setting.name == name:
                return setting
        raise KeyError(name)

    def how_to_set(self, name: str) -> str:
        """Where a user sets ``name``: its environment variable or the config file key."""
        return (f"set {env_name(self.platform, name)} or '{name}' under "
                f"[platforms.{self.platform}] in {config_path()}")

    def error(self, name: str, problem: str) -> ConfigurationError:
        """A configuration error that names the setting and how to set it."""
        return ConfigurationError(f"{self.platform}: setting {name!r} {problem}; "
                                  f"{self.how_to_set(name)}")

    def resolve(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Typed values for every declared setting: ``raw`` (resolved from the environment and
        the config file) converted, defaults filled in, required ones checked.

        :raises ConfigurationError: a required setting is missing or a value has the wrong
            type; the message names the setting and how to set it, never a secret's value.
        """
        values: dict[str, Any] = {}
        for setting in self.settings:
            value = raw.get(setting.name)
            if value is None or value == "":
                if setting.required:
                    raise self.error(setting.name, f"is not set ({setting.help})")
                value = setting.default
            if value is not None:
                value = self._convert(setting, value)
            values[setting.name] = value
        return values

    def _convert(self, setting: Setting, value: Any) -> Any:
        shown = "the value given" if setting.secret else repr(value)
        if setting.type is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in _TRUE | _FALSE:
                return text in _TRUE
            raise self.error(setting.name, f"must be true or false, not {shown}")
        if setting.type is tuple:
            items = value if isinstance(value, list | tuple) else str(value).split(",")
            return tuple(str(v).strip() for v in items if str(v).strip())
        if setting.type in (int, float):
            try:
                return setting.type(value)
            except (TypeError, ValueError):
                raise self.error(setting.name,
                                 f"must be {_TYPES[setting.type]}, not {shown}") from None
        text = str(value)
        if setting.choices:
            chosen = [c for c in setting.choices if c.casefold() == text.strip().casefold()]
            if not chosen:
                raise self.error(setting.name,
                                 f"must be one of {', '.join(setting.choices)}, not {shown}")
            return chosen[0]
        return text

    def describe(self) -> list[dict[str, Any]]:
        """One row per setting for tables, JSON and docs: never a value, only defaults."""
        return [{"name": s.name, "type": s.kind, "default": s.default, "secret": s.secret,
                 "required": s.required, "env": env_name(self.platform, s.name), "help": s.help}
                for s in self.settings]

    def markdown(self) -> str:
        """The settings as a Markdown table, for the plugin's README."""
        rows = ["| Setting | Type | Default | Secret | Environment variable | What it is |",
                "|---|---|---|---|---|---|"]
        for row in self.describe():
            default = "required" if row["required"] else (
                "" if row["default"] is None else f"`{row['default']}`")
            rows.append(f"| `{row['name']}` | {row['type']} | {default} | "
                        f"{'yes' if row['secret'] else ''} | `{row['env']}` | {row['help']} |")
        return "\n".join(rows)
