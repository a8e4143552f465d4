"""Where settings come from, and keeping the secret ones secret.

Each platform setting is resolved in this order, the usual one (command options follow it too):

1. an explicit value (a keyword argument from a script);
2. the environment: ``ITSM_CHANGE_<PLATFORM>_<KEY>`` (e.g. ``ITSM_CHANGE_JIRA_API_TOKEN``), so
   one shell or CI job can override the file without editing it;
3. the config file (``ITSM_CHANGE_CONFIG``, default ``config.toml`` in the per-user config
   directory), table ``[platforms.<name>]``, where a value may point elsewhere:
   ``{ env = "VAR" }`` or ``{ keyring = "service:username" }``.

The per-user directories are the operating system's own (``platformdirs``): on Linux
``~/.local/share/itsm-change`` and ``~/.config/itsm-change`` (or the XDG variables), on macOS
``~/Library/Application Support/itsm-change``, on Windows ``%LOCALAPPDATA%\\itsm-change``.

Secrets are never written back anywhere, and :class:`Settings` never shows them.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import platformdirs

from .errors import ConfigurationError
from .http.redact import REDACTED

__all__ = [
    "Settings",
    "config_path",
    "data_dir",
    "env_name",
    "http_timeout",
    "ledger_url",
    "load_config",
    "persistent_ledger_url",
    "platform_settings",
    "sandbox_url",
]


APP_NAME = "itsm-change"


def data_dir() -> Path:
    """Per-user data directory (``ITSM_CHANGE_HOME``, else the OS's user data directory)."""
    home = os.environ.get("ITSM_CHANGE_HOME")
    if home:
        return Path(home).expanduser()
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def _sqlite_url(name: str) -> str:
    directory = data_dir()
    directory.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{directory / name}"


def ledger_url(explicit: str | None = None) -> str:
    """The ledger database: ``--db``, else ``ITSM_CHANGE_DB``, else a per-user SQLite file.

    A plain path is taken as an SQLite file.
    """
    value = explicit or os.environ.get("ITSM_CHANGE_DB")
    if not value:
        return _sqlite_url("ledger.db")
    return value if "://" in value else f"sqlite:///{Path(value).expanduser()}"


_MEMORY_MARKERS = (":memory:", "mode=memory")


def persistent_ledger_url(value: str) -> str:
    """``value`` checked as a ledger that outlives the command, as the ledger URL.

    The ledger is what makes a re-run write nothing twice: an in-memory database forgets it
    at exit, and a mistyped URL taken for a file name would start an empty ledger elsewhere.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    text = value.strip()
    fix = ("give a file path (e.g. ./ledger.db) or a database URL such as "
           "sqlite:////var/lib/itsm-change/ledger.db or postgresql+psycopg://user@host/db")
    if "://" not in text:
        if not text or (":" in text and not re.match(r"^[A-Za-z]:[\\/]", text)):
            raise ConfigurationError(f"--db {value!r} is neither a file path nor a URL; {fix}")
        return ledger_url(text)
    try:
        url = make_url(text)
    except ArgumentError:
        raise ConfigurationError(f"--db {value!r} is not a valid database URL; {fix}") from None
    in_memory = url.get_backend_name() == "sqlite" and (
        not url.database or any(marker in text for marker in _MEMORY_MARKERS))
    if in_memory:
        raise ConfigurationError(
            f"--db {value!r} is an in-memory database: the ledger would be lost at exit and a "
            f"re-run would write everything again; {fix}")
    return text


def sandbox_url(explicit: str | None = None) -> str:
    """The sandbox platform's database (``ITSM_CHANGE_SANDBOX_DB``, else a per-user file)."""
    value = explicit or os.environ.get("ITSM_CHANGE_SANDBOX_DB")
    if not value:
        return _sqlite_url("sandbox.db")
    return value if "://" in value else f"sqlite:///{Path(value).expanduser()}"


def config_path() -> Path:
    explicit = os.environ.get("ITSM_CHANGE_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)) / "config.toml"


def load_config(path: Path | None = None) -> dict[str, Any]:
    path = path or config_path()
    if not path.exists():
        return {}
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{path}: cannot read the config file: {exc}") from exc


def env_name(platform: str, key: str) -> str:
    return f"ITSM_CHANGE_{platform.upper()}_{key.upper()}"


class Settings(Mapping[str, Any]):
    """A platform's resolved settings; secret values are hidden from ``repr`` and ``str``."""

    def __init__(
        self, platform: str, values: Mapping[str, Any], secrets: Iterable[str] = ()
    ) -> None:
        self.platform = platform
        self._values = dict(values)
        self.secret_keys = frozenset(secrets)

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        shown = {k: (REDACTED if k in self.secret_keys else v) for k, v in self._values.items()}
        return f"Settings({self.platform!r}, {shown!r})"

    __str__ = __repr__

    def require(self, key: str, what: str) -> str:
        """The value of ``key``, or a :class:`ConfigurationError` that says how to set it."""
        value = self._values.get(key)
        if value in (None, ""):
            raise ConfigurationError(
                f"{self.platform}: {what} is not set; set {env_name(self.platform, key)} or "
                f"'{key}' under [platforms.{self.platform}] in {config_path()}"
            )
        return str(value)


DEFAULT_TIMEOUT = (5.0, 30.0)


def http_timeout(platform: str, settings: Mapping[str, Any]) -> tuple[float, float]:
    """The ``timeout`` setting as ``(connect, read)`` seconds: ``"10"`` for both, or
    ``"5,60"``. Every platform plugin reads it the same way."""
    value = settings.get("timeout")
    if value in (None, ""):
        return DEFAULT_TIMEOUT
    parts = [p.strip() for p in str(value).split(",")]
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        numbers = []
    if len(numbers) not in (1, 2) or any(n <= 0 for n in numbers):
        raise ConfigurationError(
            f"{platform}: timeout must be seconds, one number or 'connect,read' "
            f"(e.g. 5,60); got {value!r} (set {env_name(platform, 'timeout')})")
    return (numbers[0], numbers[-1])


def _dereference(platform: str, key: str, value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    if "env" in value:
        return os.environ.get(str(value["env"]))
    if "keyring" in value:
        service, _, username = str(value["keyring"]).partition(":")
        try:
            import keyring
        except ImportError as exc:
            raise ConfigurationError(
                f"{platform}.{key} reads from the keyring, but the keyring package is not "
                "installed: pip install 'itsm-change-sdk[keyring]'"
            ) from exc
        return keyring.get_password(service, username or key)
    raise ConfigurationError(
        f"[platforms.{platform}] {key}: a table value must be {{ env = \"VAR\" }} or "
        f"{{ keyring = \"service:username\" }}"
    )


def platform_settings(
    platform: str,
    keys: Iterable[str],
    secrets: Iterable[str] = (),
    explicit: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
) -> Settings:
    """Resolve a platform's settings (explicit > environment > config file).

    ``keys`` may be the platform's :class:`~itsm_change_sdk.settings.PluginSettings`, whose
    secret flags are then used as well.
    """
    declared = getattr(keys, "names", None)
    if declared is not None:
        secrets = (*getattr(keys, "secrets", ()), *secrets)
        keys = declared
    config = load_config() if config is None else config
    section = config.get("platforms", {}).get(platform, {})
    if not isinstance(section, Mapping):
        raise ConfigurationError(f"[platforms.{platform}] in the config file must be a table")
    explicit = explicit or {}
    values: dict[str, Any] = {}
    for key in keys:
        if explicit.get(key) is not None:
            values[key] = explicit[key]
        elif env_name(platform, key) in os.environ:
            values[key] = os.environ[env_name(platform, key)]
        elif key in section:
            values[key] = _dereference(platform, key, section[key])
    return Settings(platform, values, secrets)
