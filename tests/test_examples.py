"""The runnable examples do what their READMEs say."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from click.testing import CliRunner

from itsm_change_sdk import Workspace
from itsm_change_sdk.cli import cli

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "portal-rollout" / "program.yaml"


def test_drive_program_script_plans_applies_and_syncs(tmp_path):
    env = {**os.environ, "ITSM_CHANGE_HOME": str(tmp_path / "home")}
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "drive_program.py"), str(EXAMPLE),
         "--as-of", "2027-01-12"],
        capture_output=True, text=True, env=env, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "+ create  training" in result.stdout
    assert "sent: Portal rollout kick-off" in result.stdout or "sent:" in result.stdout
    assert "apply: " in result.stdout and " created" in result.stdout
    again = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "drive_program.py"), str(EXAMPLE),
         "--as-of", "2027-01-12"],
        capture_output=True, text=True, env=env, timeout=120, check=False)
    assert "apply: 0 created, 0 updated" in again.stdout


def test_drive_program_script_reports_a_broken_file(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("id: x\n")
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "drive_program.py"), str(broken)],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "ITSM_CHANGE_HOME": str(tmp_path / "home")})
    assert result.returncode == 2
    assert "broken.yaml" in result.stdout and "Traceback" not in result.stderr


def test_feedback_exporter_plugin_exports_each_response_once(tmp_path, monkeypatch):
    if not any(ep.name == "feedback_exporter" for ep in entry_points(group="itsm_change")):
        pytest.skip("the example plugin is not installed: pip install -e "
                    "examples/feedback-exporter")
    export = tmp_path / "feedback.jsonl"
    monkeypatch.setenv("ITSM_CHANGE_FEEDBACK_EXPORT", str(export))
    result = CliRunner().invoke(cli, ["demo", "--weeks", "3"], catch_exceptions=False)
    assert result.exit_code == 0
    lines = [json.loads(line) for line in export.read_text().splitlines()]
    with Workspace() as ws:
        captured = list(ws.ledger.feedback("portal-rollout"))
    assert len(lines) == len(captured) > 0
    assert {line["id"] for line in lines} == {r.id for r in captured}
    assert all(line["program"] == "portal-rollout" for line in lines)
