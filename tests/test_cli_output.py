"""status and plugins: a table with headers on a terminal, the plain lines in a pipe."""

from __future__ import annotations

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
