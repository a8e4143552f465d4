"""Registers the ``freshservice`` platform with the core (entry point ``freshservice``).

Nothing in the plugin imports this module (the others take the name and settings from
:mod:`.settings`), so no import cycle runs through it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from itsm_change_sdk.hookspecs import hookimpl

from .settings import PLATFORM_NAME, SECRETS, SETTINGS

if TYPE_CHECKING:
    from itsm_change_sdk.plugins import PlatformRegistry

__all__ = ["PLATFORM_NAME", "SECRETS", "SETTINGS", "itsm_change_register_platforms"]


@hookimpl
def itsm_change_register_platforms(register: PlatformRegistry) -> None:
    from .client import FreshservicePlatform

    register.add(PLATFORM_NAME, FreshservicePlatform.from_settings, settings=SETTINGS)
