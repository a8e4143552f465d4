"""Entry point: registers the ``servicenow`` platform with the core."""

from __future__ import annotations

from typing import TYPE_CHECKING

from itsm_change_sdk.hookspecs import hookimpl

if TYPE_CHECKING:
    from itsm_change_sdk.plugins import PlatformRegistry

PLATFORM_NAME = "servicenow"

SETTINGS = (
    "timeout",
    "instance_url",
    "auth",
    "username",
    "password",
    "client_id",
    "client_secret",
    "task_table",
    "correlation_field",
    "announcement_table",
    "announcement_audience_field",
    "webhook_secret",
    "page_size",
    "survey_answers",
)
SECRETS = ("password", "client_secret", "webhook_secret")


@hookimpl
def itsm_change_register_platforms(register: PlatformRegistry) -> None:
    from .client import ServiceNowPlatform

    register.add(PLATFORM_NAME, ServiceNowPlatform.from_settings, settings=SETTINGS,
                 secrets=SECRETS)
