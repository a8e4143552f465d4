"""Registers the ``freshservice`` platform with the core (entry point ``freshservice``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from itsm_change_sdk.hookspecs import hookimpl

if TYPE_CHECKING:
    from itsm_change_sdk.plugins import PlatformRegistry

PLATFORM_NAME = "freshservice"

SETTINGS = (
    "timeout",
    "domain",
    "api_key",
    "training_mode",
    "training_ticket",
    "requester_email",
    "plan",
    "webhook_secret",
    "page_size",
    "include_stats",
    "workspace_id",
)
SECRETS = ("api_key", "webhook_secret")


@hookimpl
def itsm_change_register_platforms(register: PlatformRegistry) -> None:
    from .client import FreshservicePlatform

    register.add(
        PLATFORM_NAME, FreshservicePlatform.from_settings, settings=SETTINGS, secrets=SECRETS
    )
