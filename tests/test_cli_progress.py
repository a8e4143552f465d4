"""Progress of a long apply: a truthful bar on a terminal, nothing in a pipe."""

from __future__ import annotations

import io
from pathlib import Path

from click.testing import CliRunner

from itsm_change_sdk.cli import cli
from itsm_change_sdk.cli.progress import apply_progress, planning

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "portal-rollout" / "program.yaml"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_bar_counts_writes_and_ends_with_a_summary():
    out = Terminal()
    with planning("portal-rollout", out):
        pass
    with apply_progress(10, out) as update:
        update(4)
        update(6)
    text = out.getvalue()
    assert "Planning portal-rollout" in text
    assert "10/10" in text and "writes/s" in text
    assert text.rstrip().splitlines()[-1].startswith("10 of 10 writes in ")


def test_in_a_pipe_nothing_is_drawn():
    out = io.StringIO()
    with planning("portal-rollout", out), apply_progress(10, out) as update:
        update(10)
    assert out.getvalue() == ""


def test_apply_output_in_a_pipe_is_the_result_only():
    result = CliRunner().invoke(cli, ["apply", str(EXAMPLE)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "Applying" not in result.output and "Planning" not in result.output
    assert result.output.startswith("Applied portal-rollout: ")
