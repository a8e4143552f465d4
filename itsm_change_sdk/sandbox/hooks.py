"""Registers the sandbox platform (filled in by the sandbox implementation)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..hookspecs import hookimpl
from ..settings import PluginSettings, Setting

if TYPE_CHECKING:
    from ..plugins import PlatformRegistry

PLATFORM_NAME = "sandbox"

SETTINGS = PluginSettings(PLATFORM_NAME, (
    Setting("db", "the sandbox database: a file path or SQLAlchemy URL (default: "
            "sandbox.db in the per-user data directory)"),
))


@hookimpl
def itsm_change_register_platforms(register: PlatformRegistry) -> None:
    from .platform import SandboxPlatform

    register.add(PLATFORM_NAME, SandboxPlatform.from_settings, settings=SETTINGS)
