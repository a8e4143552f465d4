"""Validated Jira settings (the secret ones stay with the transport and token holder)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from itsm_change_sdk.errors import ConfigurationError

__all__ = ["JiraConfig"]


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

    @property
    def search_projects(self) -> tuple[str, ...]:
        projects = [self.project, *self.ticket_projects]
        if self.announcement_issue and "-" in self.announcement_issue:
            projects.append(self.announcement_issue.rsplit("-", 1)[0])
        return tuple(dict.fromkeys(projects))


def _split(value: Any) -> tuple[str, ...]:
    if not value:
        return ()
    if isinstance(value, list | tuple):
        return tuple(str(v).strip() for v in value if str(v).strip())
    return tuple(part.strip() for part in str(value).split(",") if part.strip())


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
