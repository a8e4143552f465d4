"""status and plugins: a table with headers on a terminal, the plain lines in a pipe."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from itsm_change_sdk.cli import cli, output

COLOUR = re.compile(r"\x1b\[(?:[0-9;]*;)?(?:3[0-8]|9[0-7])[;m]")
"""An ANSI foreground colour code (bold and italic are not colour)."""
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "portal-rollout" / "program.yaml"


@pytest.fixture
def run():
    def invoke(*args: object, env: dict[str, str] | None = None):
        return CliRunner().invoke(cli, [str(a) for a in args], env=env, catch_exceptions=False)

    return invoke


@pytest.fixture
def terminal(monkeypatch):
    monkeypatch.setattr(output, "on_terminal", lambda: True)
    monkeypatch.delenv("NO_COLOR", raising=False)


def test_plugins_on_a_terminal_is_a_table_with_headers(run, terminal):
    text = run("plugins").output
    assert "Name" in text and "Kind" in text and "Version" in text and "Hooks" in text
    assert "│" in text or "|" in text
    assert "sandbox" in text and "platform" in text


def test_status_on_a_terminal_is_a_table_in_colour(run, terminal):
    run("demo", "--weeks", "1")
    text = run("status", EXAMPLE).output
    assert "Kind" in text and "State" in text and "Count" in text
    assert COLOUR.search(text)


def test_no_color_keeps_the_table_and_drops_the_colour(run, terminal):
    run("demo", "--weeks", "1")
    text = run("status", EXAMPLE, env={"NO_COLOR": "1"}).output
    assert "Count" in text
    assert not COLOUR.search(text)


def test_in_a_pipe_the_output_is_plain_lines(run):
    run("demo", "--weeks", "1")
    text = run("status", EXAMPLE).output
    assert text.startswith("portal-rollout:\n")
    assert "\x1b[" not in text and "│" not in text


def test_plan_on_a_terminal_is_a_table_with_a_summary_line(run, terminal):
    run("demo", "--weeks", "1")
    text = run("--as-of", "2027-02-01", "plan", EXAMPLE).output
    assert "Action" in text and "Kind" in text and "Key" in text and "Detail" in text
    assert "│" in text
    assert COLOUR.search(text)
    assert "Plan for portal-rollout at 2027-02-01 00:00 UTC:" in text.splitlines()[-1]


def test_plan_in_a_pipe_is_the_diff(run):
    run("demo", "--weeks", "1")
    lines = run("--as-of", "2027-02-01", "plan", EXAMPLE).output.splitlines()
    assert lines[0].startswith("+ create ")
    assert "│" not in "".join(lines)
    assert lines[-1].startswith("Plan for portal-rollout at 2027-02-01 00:00 UTC:")


def test_plan_as_json_lists_each_action_and_the_counts(run):
    run("demo", "--weeks", "1")
    text = run("--as-of", "2027-02-01", "plan", EXAMPLE, "--json").output
    found = json.loads(text)
    assert found["program"] == "portal-rollout"
    assert found["counts"]["create"] == sum(a["action"] == "create" for a in found["actions"])
    assert found["counts"]["create"] > 0
    assert found["writes"] == sum(found["counts"][k] for k in ("create", "update", "retire"))
    assert {"action", "kind", "key", "platform", "detail"} <= set(found["actions"][0])


def test_gate_on_a_terminal_is_a_table_of_conditions(run, terminal):
    run("demo", "--weeks", "10")
    result = run("gate", EXAMPLE, "wave-2")
    assert result.exit_code == 1
    assert "Check" in result.output and "Status" in result.output
    assert "Reason" in result.output and "│" in result.output
    assert "not met" in result.output and "sign-off by priya-nair" in result.output
    text = run("gate", EXAMPLE, "wave-2", env={"NO_COLOR": "1"}).output
    assert "Reason" in text and not COLOUR.search(text)


def test_gate_in_a_pipe_is_one_line_per_condition(run):
    run("demo", "--weeks", "10")
    text = run("gate", EXAMPLE, "wave-2").output
    assert "  [--] sign-off by priya-nair (Priya Nair, Service Desk escalations): missing" in text
    assert "│" not in text


def test_gate_as_json_has_each_condition_and_keeps_the_exit_code(run):
    run("demo", "--weeks", "10")
    result = run("gate", EXAMPLE, "wave-2", "--json")
    assert result.exit_code == 1
    found = json.loads(result.output)
    assert found["wave"] == "wave-2" and found["previous"] == "pilot"
    assert found["open"] is False
    missing = [c for c in found["conditions"] if not c["ok"]]
    assert {c["check"] for c in missing} == {"signoff"}
    assert len(missing) == 2
    assert run("gate", EXAMPLE, "pilot", "--json").exit_code == 0


def test_report_json_without_a_file_prints_the_verdict_and_gates(run, tmp_path):
    run("demo", "--weeks", "10")
    result = run("report", EXAMPLE, "--json", "--csv", tmp_path / "csv")
    found = json.loads(result.stdout)
    assert found["program"] == "portal-rollout"
    assert found["verdict"]["next_wave"] == "wave-3"
    assert found["gates"]["wave-2"]["open"] is False
    assert "Wrote 0" not in result.stdout and "CSV files" in result.stderr
    written = tmp_path / "r.json"
    text = run("report", EXAMPLE, "--json", written).output
    assert text.startswith("Adoption report: ") and f"Wrote {written}" in text
    assert "tables" in json.loads(written.read_text())
