"""Registers the ``jira`` platform with itsm-change."""

from __future__ import annotations

from typing import TYPE_CHECKING

from itsm_change_sdk.hookspecs import hookimpl

if TYPE_CHECKING:
    from itsm_change_sdk.plugins import PlatformRegistry

PLATFORM_NAME = "jira"

SETTINGS: tuple[str, ...] = (
    "timeout",
    "site_url",
    "auth",
    "email",
    "api_token",
    "access_token",
    "refresh_token",
    "client_id",
    "client_secret",
    "cloud_id",
    "token_store",
    "project",
    "issue_type",
    "parent_issue",
    "done_transition",
    "correlation",
    "service_desk_id",
    "ticket_projects",
    "internal_role",
    "announcement_issue",
    "channel_field",
    "group_field",
    "webhook_secret",
    "webhook_name",
)
SECRETS: tuple[str, ...] = (
    "api_token",
    "access_token",
    "refresh_token",
    "client_secret",
    "webhook_secret",
)


@hookimpl
def itsm_change_register_platforms(register: PlatformRegistry) -> None:
    from .client import JiraPlatform

    register.add(PLATFORM_NAME, JiraPlatform.from_settings, settings=SETTINGS, secrets=SECRETS)
