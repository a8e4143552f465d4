"""Check-in briefs for the management alliance, delivered through this plugin's existing
communication hook against the fake: one task per manager with the brief intact, found again
by key, read back as closed once the manager closes it."""

from __future__ import annotations

from itsm_change_sdk.testing.briefs import check_briefs_delivered


def test_briefs_reach_each_manager_once_and_read_back_when_closed(platform, double, tmp_path):
    check_briefs_delivered(platform, double, tmp_path)
