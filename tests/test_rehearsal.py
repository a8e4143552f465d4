"""A rehearsal on the sandbox: staff actions and every command share one clock."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from itsm_change_sdk.cli import cli
from itsm_change_sdk.config import sandbox_url
from itsm_change_sdk.sandbox.store import SandboxStore

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "portal-rollout" / "program.yaml"


@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(*args: object):
        return runner.invoke(cli, [str(a) for a in args], catch_exceptions=False)

    return invoke


@pytest.fixture
def after_demo(run):
    """Three simulated weeks: past the pilot's go-live, so the feedback cursor has moved."""
    demo = run("demo", "--weeks", "3")
    assert demo.exit_code == 0, demo.output
    simulated = re.search(r"^Simulated .* (\d+) feedback responses\.$", demo.output, re.M)
    assert simulated and int(simulated.group(1)) > 0, demo.output
    store = SandboxStore(sandbox_url())
    agent = next(p.id for p in store.people() if p.id.startswith("u-"))
    return store, agent


def test_feedback_given_after_the_demo_is_captured_by_the_next_sync(run, after_demo):
    store, agent = after_demo
    demo_ended = store.latest_activity()
    raised = run("sandbox", "raise", "Cannot log in", "--group", "Service Desk Tier 1")
    number = raised.output.split()[0]
    run("sandbox", "comment", number, "#feedback ability=2 need a guide", "--as", agent)
    assert store.notes(number)[-1].created_at > demo_ended
    synced = run("sync", EXAMPLE)
    assert "1 feedback responses captured" in synced.output


def test_staff_actions_are_stamped_at_the_global_as_of(run, after_demo):
    store, agent = after_demo
    raised = run("--as-of", "2027-02-01T10:15", "sandbox", "raise", "Printer", "--group",
                 "Service Desk Tier 1")
    number = raised.output.split()[0]
    assert store.ticket(number).opened_at == datetime(2027, 2, 1, 10, 15, tzinfo=UTC)
    run("--as-of", "2027-02-01T11:00", "sandbox", "comment", number, "#feedback ability=3",
        "--as", agent)
    assert store.notes(number)[-1].created_at == datetime(2027, 2, 1, 11, tzinfo=UTC)
    run("--as-of", "2027-02-01T12:00", "sandbox", "resolve", number)
    assert store.ticket(number).updated_at == datetime(2027, 2, 1, 12, tzinfo=UTC)


def test_a_matching_ticket_raised_in_the_rehearsal_gets_its_prompt(run, after_demo):
    store, _agent = after_demo
    when = "2027-02-01T10:00"
    raised = run("--as-of", when, "sandbox", "raise", "Forgot my password", "--group",
                 "Service Desk Tier 1", "--category", "password reset")
    number = raised.output.split()[0]
    synced = run("--as-of", "2027-02-01T10:05", "sync", EXAMPLE)
    assert synced.exit_code == 0, synced.output
    prompts = [n for n in store.notes(number) if n.author == "itsm-change"]
    assert prompts, synced.output


def test_a_matching_ticket_raised_after_the_demo_gets_its_prompt_without_as_of(run,
                                                                               after_demo):
    """The demo leaves the sandbox on its simulated calendar, ahead of the real clock: the
    next sync follows that calendar, as the report does, so the prompt is inside its dates."""
    store, _agent = after_demo
    raised = run("sandbox", "raise", "Forgot my password", "--group", "Service Desk Tier 1",
                 "--category", "password reset")
    number = raised.output.split()[0]
    synced = CliRunner().invoke(cli, ["sync", str(EXAMPLE)], catch_exceptions=False)
    assert synced.exit_code == 0, synced.output
    assert "runs ahead of the clock" in synced.stderr
    prompts = [n for n in store.notes(number) if n.author == "itsm-change"]
    assert len(prompts) == 1, synced.output
    again = run("sync", EXAMPLE)
    assert again.exit_code == 0 and len(
        [n for n in store.notes(number) if n.author == "itsm-change"]) == 1


@pytest.mark.parametrize("command", [["gate", EXAMPLE, "pilot"], ["report", EXAMPLE]])
def test_report_and_gate_honour_the_global_as_of(run, command):
    result = run("--as-of", "2027-01-05", *command)
    assert result.exit_code in (0, 1), result.output
    assert "2027-01-05" in result.output


def test_every_as_of_takes_the_same_format(run):
    global_form = run("--as-of", "2027-01-05T09:30", "gate", EXAMPLE, "pilot")
    command_form = run("gate", EXAMPLE, "pilot", "--as-of", "2027-01-05T09:30")
    assert "as of 2027-01-05" in global_form.output
    assert global_form.output == command_form.output
