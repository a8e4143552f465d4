"""The spec check itself, and the plugin's registration through its entry point."""

from __future__ import annotations

import json
from importlib.metadata import entry_points

import pytest
from jira_spec import load_validator

from itsm_change_sdk.plugins import PlatformRegistry


@pytest.fixture
def validator():
    checker = load_validator()
    start = len(checker.problems)
    yield checker
    del checker.problems[start:]


def test_spec_subset_records_its_official_source():
    from jira_spec import PLATFORM_SPEC

    source = json.loads(PLATFORM_SPEC.read_text())["x-cut-from"]
    assert source["origin"].startswith("https://developer.atlassian.com/cloud/jira/platform/")
    assert len(source["sha256"]) == 64 and source["info.version"]


def test_spec_check_catches_the_removed_search_and_bad_bodies(validator):
    start = len(validator.problems)
    validator.check("POST", "/rest/api/3/search", {}, {"jql": "project = OPS"})
    validator.check("POST", "/rest/api/3/search/jql", {}, {"jql": "x", "startAt": 0})
    validator.check("GET", "/rest/api/3/group/member", {"groupname": ["x"], "bogus": ["1"]},
                    None)
    validator.check("POST", "/rest/servicedeskapi/request/HELP-1/comment", {},
                    {"body": "text", "public": "no"})
    problems = validator.problems[start:]
    assert any("deprecated" in p for p in problems)
    assert any("startAt" in p for p in problems)
    assert any("bogus" in p for p in problems)
    assert any("servicedeskapi" in p and "public" in p for p in problems)


def test_plugin_never_calls_the_removed_search(platform, double):
    from datetime import UTC, datetime

    double.add_ticket(title="a", opened_at=datetime(2025, 6, 1, tzinfo=UTC))
    list(platform.itsm_change_stream_tickets(since=None))
    list(platform.itsm_change_find_comments(marker="#feedback", since=None))
    platform.itsm_change_find_effects(kind="training", keys=["chg:a:training:b:c"])
    paths = {r[1] for r in double.requests_log}
    assert "/rest/api/3/search" not in paths
    assert "/rest/api/3/search/jql" in paths


def test_entry_point_registers_the_platform(settings):
    (ep,) = [e for e in entry_points(group="itsm_change") if e.name == "jira"]
    module = ep.load()
    assert module.PLATFORM_NAME == "jira"
    registry = PlatformRegistry()
    module.itsm_change_register_platforms(register=registry)
    spec = registry.specs["jira"]
    assert {"api_token", "client_secret", "refresh_token", "webhook_secret"} <= set(spec.secrets)
    platform = spec.factory(settings)
    assert "ATATT3xFfGF0" not in repr(platform)
    platform.close()


def test_hooks_are_reached_through_the_plugin_manager(platform, double):
    from datetime import UTC, datetime

    from itsm_change_sdk.plugins import Platforms, get_plugin_manager

    double.add_ticket(title="through pluggy", opened_at=datetime(2025, 6, 1, tzinfo=UTC))
    platforms = Platforms(get_plugin_manager(load_entry_points=False))
    platforms.add("jira", platform)
    tickets = list(platforms.call("jira", "itsm_change_stream_tickets", since=None))
    assert [t.title for t in tickets] == ["through pluggy"]
    assert platforms.implements("jira", "itsm_change_find_comments")
    assert platforms.implements("jira", "itsm_change_parse_webhook")
