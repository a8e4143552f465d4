"""ServiceNow platform for itsm-change-sdk (Table API, Batch API, journal entries)."""

from __future__ import annotations

from .client import ServiceNowPlatform

__all__ = ["ServiceNowPlatform"]
