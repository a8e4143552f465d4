"""Registers the sandbox platform (filled in by the sandbox implementation)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..hookspecs import hookimpl

if TYPE_CHECKING:
    from ..plugins import PlatformRegistry

PLATFORM_NAME = "sandbox"


@hookimpl
def itsm_change_register_platforms(register: PlatformRegistry) -> None:
    from .platform import SandboxPlatform

    register.add(PLATFORM_NAME, SandboxPlatform.from_settings, settings=("db",))
