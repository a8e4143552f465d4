"""The Jira plugin passes the contract suite every platform plugin passes.

The fake Jira site (``jira_fake.FakeJira``) is the double; every request the contract makes
the plugin send is checked against Atlassian's OpenAPI specs by the ``double`` fixture in
``conftest.py``. Announcements are comments on ``announcement_issue``, so the site here has
one and the announcement test runs.
"""

from __future__ import annotations

import dataclasses
import functools
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from jira_fake import FakeJira

from itsm_change_sdk.cli import cli
from itsm_change_sdk.model import Effect, EffectKind
from itsm_change_sdk.testing.contract import PlatformContract


@pytest.fixture
def double(double):
    """The fake site with an issue whose comments carry announcements."""
    issue = double._new_issue("OPS", {"summary": "Change announcements",
                                      "issuetype": {"name": "Task"}})
    double.announcement_issue = issue["key"]
    double.capabilities = dataclasses.replace(
        double.capabilities, channels=double.capabilities.channels | {"announcement"})
    return double


@pytest.fixture
def platform(make_platform, double):
    instance = make_platform(announcement_issue=double.announcement_issue)
    yield instance
    instance.close()


class TestJiraContract(PlatformContract):
    """Correlation keys as labels (the default); tickets are JSM requests."""


class TestJiraServiceDeskContract(PlatformContract):
    """With ``service_desk_id``: feedback requests are reported by their recipient, and their
    CSAT ratings are collected as survey answers."""

    @pytest.fixture
    def double(self, double):
        double.capabilities = dataclasses.replace(double.capabilities, survey_answers=True)
        return double

    @pytest.fixture
    def platform(self, make_platform, double):
        instance = make_platform(announcement_issue=double.announcement_issue,
                                 service_desk_id="10")
        yield instance
        instance.close()


class TestJiraContractWithCustomField(PlatformContract):
    """Correlation keys in a text custom field instead of a label."""

    @pytest.fixture
    def platform(self, make_platform, double):
        instance = make_platform(announcement_issue=double.announcement_issue,
                                 correlation="customfield_10050")
        yield instance
        instance.close()


class TestJiraContractSoftwareTickets(PlatformContract):
    """Tickets in a Jira Software project: notes are platform comments (ADF) restricted to
    ``internal_role`` instead of JSM internal comments."""

    @pytest.fixture
    def double(self, double):
        double.projects["ENG"] = {"id": "10004", "key": "ENG", "projectTypeKey": "software",
                                  "counter": 0}
        double.add_ticket = functools.partial(FakeJira.add_ticket, double, project="ENG")
        return double

    @pytest.fixture
    def platform(self, make_platform, double):
        instance = make_platform(announcement_issue=double.announcement_issue,
                                 ticket_projects="ENG", internal_role="Developers")
        yield instance
        instance.close()

    def test_notes_are_restricted_to_the_internal_role(self, platform, double):
        ticket = double.add_ticket(title="Portal rollout change",
                                   opened_at=datetime(2027, 1, 11, 9, tzinfo=UTC))
        effect = Effect(key=f"chg:contract:prompt:portal:jira:{ticket.id}",
                        kind=EffectKind.PROMPT, platform="jira", program="contract",
                        title="Prompt", channel="ticket_note", ticket_id=ticket.id,
                        body="Point the caller to the portal.")
        (result,) = platform.itsm_change_post_prompts(effects=[effect], known={})
        assert result.ok
        (comment,) = double.issues[ticket.id]["comments"]
        assert comment["visibility"] == {"type": "role", "value": "Developers"}
        assert comment["body"]["type"] == "doc"


def test_a_single_audience_group_restricts_the_announcement(platform, double):
    """Beyond the contract: the announcement comment is visible only to its one group."""
    person = double.add_person("Agent Audience", "agent.audience@example.com")
    group = double.add_group("Service Desk Tier 1", [person])
    effect = Effect(key="chg:contract:comm:kickoff:20270111T0900:jira", kind=EffectKind.MESSAGE,
                    platform="jira", program="contract", title="Portal rollout kickoff",
                    channel="announcement", body="The new portal goes live on 18 January.",
                    audience_groups=(group,), visible_from=datetime(2027, 1, 11, tzinfo=UTC))
    (result,) = platform.itsm_change_deliver_communication(effects=[effect], known={})
    assert result.ok
    (record,) = double.records(EffectKind.MESSAGE)
    assert record.audience_groups == (group,)
    assert record.ticket_id == result.ref.remote_id.split("/")[0]
    assert "goes live on 18 January" in record.body


def test_plugins_command_lists_the_jira_platform():
    """``itsm-change plugins`` shows the installed plugin and its ``jira`` platform."""
    result = CliRunner().invoke(cli, ["plugins"])
    assert result.exit_code == 0, result.output
    assert "jira (itsm-change-jira " in result.output
    (platforms,) = [line for line in result.output.splitlines()
                    if line.startswith("Platforms: ")]
    assert "jira" in platforms.removeprefix("Platforms: ").split(", ")
