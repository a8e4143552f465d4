"""The Jira platform's settings, declared once, and the validated configuration (the secret
ones stay with the transport and token holder).

The registration (:mod:`.hooks`), the client's configuration, configuration errors,
``itsm-change plugins --settings`` and the README table all read :data:`SETTINGS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from itsm_change_sdk.errors import ConfigurationError
from itsm_change_sdk.settings import TIMEOUT, PluginSettings, Setting

__all__ = ["PLATFORM_NAME", "SECRETS", "SETTINGS", "JiraConfig"]

PLATFORM_NAME = "jira"

SETTINGS = PluginSettings(PLATFORM_NAME, (
    TIMEOUT,
    Setting("site_url", "https://<site>.atlassian.net", required=True),
    Setting("auth", "basic (email + API token) or oauth (OAuth 2.0 3LO); default oauth "
            "when client_id is set, else basic", choices=("basic", "oauth")),
    Setting("email", "the Atlassian account's email (basic: required)"),
    Setting("api_token", "API token from id.atlassian.com (basic: required)", secret=True),
    Setting("access_token", "an access token to start with (oauth, optional)", secret=True),
    Setting("refresh_token", "the first refresh token, offline_access scope (oauth)",
            secret=True),
    Setting("client_id", "OAuth app client id (oauth: required)"),
    Setting("client_secret", "OAuth app client secret (oauth: required)", secret=True),
    Setting("cloud_id", "calls go to api.atlassian.com/ex/jira/<cloud_id> (oauth: required; "
            "basic: for a scoped API token)"),
    Setting("token_store", "where rotated refresh tokens are kept (default: the data "
            "directory's jira-oauth-<cloud_id>.json)"),
    Setting("project", "project key where training, acknowledgement and feedback issues are "
            "created", required=True),
    Setting("issue_type", "issue type of those issues (e.g. Sub-task with parent_issue)",
            default="Task"),
    Setting("parent_issue", "create the issues as sub-tasks of this issue"),
    Setting("done_transition", "transition id or name used to retire issues (default: the "
            "first transition to a Done status)"),
    Setting("correlation", "label, or a text custom field id (customfield_10050) holding "
            "the correlation key", default="label"),
    Setting("service_desk_id", "JSM service desk id: CSAT collection, reporter = person on "
            "feedback requests"),
    Setting("ticket_projects", "project keys whose issues are the tickets (default: project)",
            type=tuple),
    Setting("internal_role", "project role that non-JSM notes and prompts are restricted to"),
    Setting("announcement_issue", "issue key whose comments carry announcements"),
    Setting("channel_field", "custom field id holding the ticket channel"),
    Setting("group_field", "custom field id holding the ticket's team/group (without it no "
            "unit owns a ticket)"),
    Setting("webhook_secret", "secret Jira signs webhooks with; unsigned ones are refused",
            secret=True),
    Setting("webhook_name", "name of the admin webhook install manages",
            default="itsm-change"),
    Setting("write_concurrency", "comments in flight at once within one write call (1-32); "
            "Jira has no bulk comment endpoint", type=int, default=4),
))

SECRETS = SETTINGS.secrets


@dataclass(frozen=True)
class JiraConfig:
    """Resolved, validated settings (no secrets)."""

    site_url: str
    project: str
    issue_type: str = "Task"
    parent_issue: str | None = None
    done_transition: str | None = None
    correlation: str = "label"
    service_desk_id: str | None = None
    ticket_projects: tuple[str, ...] = ()
    internal_role: str | None = None
    announcement_issue: str | None = None
    channel_field: str | None = None
    group_field: str | None = None
    webhook_secret: str | None = field(default=None, repr=False)
    webhook_name: str = "itsm-change"
    write_concurrency: int = 4
    """Comments in flight at once within one batch (Jira has no bulk comment call)."""

    @property
    def search_projects(self) -> tuple[str, ...]:
        projects = [self.project, *self.ticket_projects]
        if self.announcement_issue and "-" in self.announcement_issue:
            projects.append(self.announcement_issue.rsplit("-", 1)[0])
        return tuple(dict.fromkeys(projects))


def _opt(settings: Mapping[str, Any], key: str) -> str | None:
    value = settings.get(key)
    return str(value) if value not in (None, "") else None


def _require(settings: Mapping[str, Any], key: str, what: str) -> str:
    require = getattr(settings, "require", None)
    if callable(require):
        return str(require(key, what))
    value = _opt(settings, key)
    if value is None:
        raise ConfigurationError(f"jira: {what} is not set; set ITSM_CHANGE_JIRA_{key.upper()}")
    return value

