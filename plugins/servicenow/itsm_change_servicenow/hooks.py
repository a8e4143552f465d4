"""Entry point: registers the ``servicenow`` platform with the core.

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
    from .client import ServiceNowPlatform

    register.add(PLATFORM_NAME, ServiceNowPlatform.from_settings, settings=SETTINGS)
