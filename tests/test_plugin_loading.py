"""A faulty plugin or observer is named and left out; everything else keeps working."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

import pytest
from click.testing import CliRunner

from itsm_change_sdk import Workspace, hookimpl, plugins
from itsm_change_sdk.cli import cli
from itsm_change_sdk.errors import PluginError

TYPO_PLUGIN = """
from itsm_change_sdk import hookimpl

@hookimpl
def itsm_change_register_platfroms(register):
    register.add("typo", lambda settings: object())
"""

BROKEN_IMPORT = "raise RuntimeError('missing dependency')\n"


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Pretend the given modules are installed itsm_change plugins, beside the real ones."""

    def install(**modules: str) -> None:
        extra = []
        for name, source in modules.items():
            (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
            extra.append(EntryPoint(name=name, value=name, group=plugins.ENTRY_POINT_GROUP))
        real = list(entry_points(group=plugins.ENTRY_POINT_GROUP))
        monkeypatch.syspath_prepend(str(tmp_path))
        monkeypatch.setattr(plugins, "entry_points", lambda group: real + extra)
        monkeypatch.setattr(plugins, "_warned", set())

    return install


class TestInstalledPlugins:
    def test_misspelt_hook_is_named_with_a_suggestion_and_skipped(self, installed, caplog):
        installed(typo_plugin=TYPO_PLUGIN)
        pm = plugins.get_plugin_manager()
        assert pm.get_plugin("typo_plugin") is None
        assert "itsm_change_register_platforms" in pm.skipped["typo_plugin"]
        assert "sandbox" in plugins.platform_registry(pm).specs
        assert "typo_plugin" in caplog.text and "did you mean" in caplog.text

    def test_plugin_that_fails_to_import_is_skipped(self, installed):
        installed(broken_plugin=BROKEN_IMPORT)
        pm = plugins.get_plugin_manager()
        assert "missing dependency" in pm.skipped["broken_plugin"]
        assert "sandbox" in plugins.platform_registry(pm).specs

    def test_skipped_plugin_is_warned_about_once_per_process(self, installed, caplog):
        installed(typo_plugin=TYPO_PLUGIN)
        plugins.get_plugin_manager()
        plugins.get_plugin_manager()
        assert len([r for r in caplog.records if "typo_plugin" in r.getMessage()]) == 1


@pytest.mark.parametrize("variable", ["ITSM_CHANGE_LOAD_PLUGINS",
                                      "ITSM_CHANGE_DISABLED_PLUGINS"])
def test_a_misspelt_plugin_name_in_the_environment_is_answered(variable, monkeypatch, caplog):
    monkeypatch.setattr(plugins, "_warned", set())
    monkeypatch.setenv(variable, "itsm_change_sdk.metric")
    plugins.get_plugin_manager()
    assert f"{variable} names 'itsm_change_sdk.metric'" in caplog.text
    assert "did you mean 'itsm_change_sdk.metrics'?" in caplog.text


RAISING_PLATFORM = """
from itsm_change_sdk import hookimpl

@hookimpl
def itsm_change_register_platforms(register):
    raise RuntimeError("settings schema missing")
"""


def test_a_plugin_raising_while_registering_platforms_is_named_and_left_out(
        installed, caplog):
    installed(raising_platform=RAISING_PLATFORM)
    result = CliRunner().invoke(cli, ["plugins", "--json"], catch_exceptions=False)
    assert result.exit_code == 0
    assert "'raising_platform' failed in itsm_change_register_platforms" in caplog.text
    assert "settings schema missing" in caplog.text
    found = json.loads(result.stdout)
    assert "sandbox" in {p["name"] for p in found["plugins"] if p["kind"] == "platform"}
    assert "raising_platform" in found["skipped"]
    doctor = CliRunner().invoke(cli, ["doctor", "--platform", "sandbox"],
                                catch_exceptions=False)
    assert doctor.exit_code == 0, doctor.output


def test_cli_help_and_commands_work_beside_a_faulty_plugin(tmp_path):
    """A real process with a broken plugin on its entry-point path: --help and plugins work."""
    (tmp_path / "typo_plugin.py").write_text(textwrap.dedent(TYPO_PLUGIN))
    dist = tmp_path / "typo_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: typo-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[itsm_change]\ntypo_plugin = typo_plugin\n")
    code = "from itsm_change_sdk.cli import main; main()"
    for args in (["--help"], ["plugins"]):
        done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True,
                              text=True, env={**os.environ, "PYTHONPATH": str(tmp_path)},
                              check=False)
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr
        assert "'typo_plugin'" in done.stderr and "itsm_change_register_platforms" in done.stderr


class Observer:
    def __init__(self) -> None:
        self.seen: list[object] = []

    @hookimpl
    def itsm_change_feedback_captured(self, response: object) -> None:
        self.seen.append(response)


class TestAddObserver:
    def test_an_observer_with_a_real_hook_is_registered(self):
        with Workspace() as ws:
            observer = Observer()
            ws.add_observer(observer, name="mine")
            assert ws.pm.get_plugin("mine") is observer

    def test_misspelt_hook_is_refused_with_its_name(self):
        class Typo:
            @hookimpl
            def itsm_change_feedback_captued(self, response: object) -> None: ...

        with Workspace() as ws, pytest.raises(PluginError) as caught:
            ws.add_observer(Typo())
        assert "itsm_change_feedback_captued" in str(caught.value)
        assert "did you mean 'itsm_change_feedback_captured'" in str(caught.value)
        ws.pm.check_pending()  # nothing half-registered is left behind

    def test_object_without_any_hook_is_refused(self):
        class Plain:
            def itsm_change_feedback_captured(self, response: object) -> None: ...

        with Workspace() as ws, pytest.raises(PluginError, match="no @hookimpl"):
            ws.add_observer(Plain())

    def test_hook_with_an_argument_the_spec_lacks_is_refused(self):
        class WrongArgs:
            @hookimpl
            def itsm_change_feedback_captured(self, responce: object) -> None: ...

        with Workspace() as ws, pytest.raises(PluginError, match="responce"):
            ws.add_observer(WrongArgs())


def test_closed_pipe_ends_quietly():
    """``itsm-change plugins | head -0``: no 'Broken pipe' message, no traceback."""
    process = subprocess.Popen(
        [sys.executable, "-c", "from itsm_change_sdk.cli import main; main()", "plugins"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait() == 141
    assert stderr == ""
