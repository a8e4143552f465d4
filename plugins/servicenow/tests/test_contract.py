"""The ServiceNow plugin passes the contract suite every platform plugin passes.

The double is the stateful fake instance of ``conftest.py`` (Table, Batch and OAuth APIs).
"""

from __future__ import annotations

from click.testing import CliRunner

from itsm_change_sdk.cli import cli
from itsm_change_sdk.testing.contract import PlatformContract


class TestServiceNowContract(PlatformContract):
    """Defaults: tasks in ``vtb_task``, keys in ``correlation_id``, Service Portal
    announcements, notes as work notes."""


def test_the_cli_lists_the_servicenow_platform():
    result = CliRunner().invoke(cli, ["plugins"])
    assert result.exit_code == 0, result.output
    assert "servicenow (itsm-change-servicenow " in result.output
    (platforms,) = [line for line in result.output.splitlines()
                    if line.startswith("Platforms: ")]
    assert "servicenow" in platforms.removeprefix("Platforms: ").split(", ")
