"""The ServiceNow plugin passes the contract suite every platform plugin passes.

The double is the stateful fake instance of ``conftest.py`` (Table, Batch and OAuth APIs).
"""

from __future__ import annotations

import dataclasses

import pytest
from click.testing import CliRunner
from itsm_change_servicenow import ServiceNowPlatform

from itsm_change_sdk.cli import cli
from itsm_change_sdk.testing.contract import PlatformContract


class TestServiceNowContract(PlatformContract):
    """Defaults: tasks in ``vtb_task``, keys in ``correlation_id``, Service Portal
    announcements, notes as work notes."""


class TestServiceNowSurveyContract(PlatformContract):
    """With ``survey_answers``: answers from Assessments and Surveys (``asmt_metric_result``,
    read with dot-walked fields) are collected as feedback."""

    @pytest.fixture
    def double(self, double):
        double.capabilities = dataclasses.replace(double.capabilities, survey_answers=True)
        return double

    @pytest.fixture
    def platform(self, double, no_sleep):
        instance = ServiceNowPlatform.from_settings({**double.settings(),
                                                     "survey_answers": "true"})
        instance.transport.policy = no_sleep
        yield instance
        instance.close()


def test_the_cli_lists_the_servicenow_platform():
    result = CliRunner().invoke(cli, ["plugins"])
    assert result.exit_code == 0, result.output
    assert "servicenow (itsm-change-servicenow " in result.output
    (platforms,) = [line for line in result.output.splitlines()
                    if line.startswith("Platforms: ")]
    assert "servicenow" in platforms.removeprefix("Platforms: ").split(", ")
