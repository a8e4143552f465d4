"""Jira Cloud and Jira Service Management platform for itsm-change-sdk."""

from __future__ import annotations

from .settings import PLATFORM_NAME, SECRETS, SETTINGS

__all__ = ["PLATFORM_NAME", "SECRETS", "SETTINGS"]
