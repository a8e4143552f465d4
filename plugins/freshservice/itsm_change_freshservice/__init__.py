"""Freshservice (API v2) platform for itsm-change-sdk."""

from __future__ import annotations

from .client import FreshservicePlatform

__all__ = ["FreshservicePlatform"]
