"""The command line, as a change lead and a platform admin use it."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from itsm_change_sdk import hookimpl
from itsm_change_sdk.cli import cli
from itsm_change_sdk.errors import ServerError
from itsm_change_sdk.model import Check, CheckStatus
from itsm_change_sdk.sandbox.platform import SandboxPlatform

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "portal-rollout" / "program.yaml"


@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None):
        return runner.invoke(cli, [str(a) for a in args], input=input, catch_exceptions=False)

    return invoke


class TestValidate:
    def test_valid_file(self, run):
        result = run("validate", EXAMPLE)
        assert result.exit_code == 0
        assert "ok (portal-rollout:" in result.output

    def test_broken_file_lists_every_problem_and_exits_2(self, run, tmp_path):
        broken = tmp_path / "broken.yaml"
        text = EXAMPLE.read_text().replace("wave: pilot", "wave: pilto", 1)
        text = text.replace("objectives:", "objectivs:", 1)
        broken.write_text(text)
        result = run("validate", broken)
        assert result.exit_code == 2
        assert "Traceback" not in result.output
        assert re.search(rf"{re.escape(str(broken))}:\d+: units\.0\.wave:", result.output)
        assert "objectivs" in result.output
        assert "problems found" in result.output

    @pytest.mark.parametrize("parser", ["libyaml", "pure-python"])
    @pytest.mark.parametrize("text", ["a: " + "[" * 100_000, "a: " + "{x: " * 50_000,
                                      "a:\n" + "".join("  " * i + "- \n" for i in range(1, 60))])
    def test_deeply_nested_file_is_one_plain_refusal(self, run, tmp_path, monkeypatch, parser,
                                                     text):
        from itsm_change_sdk import schema

        if parser == "pure-python":
            monkeypatch.setattr(schema, "_CSafeLoader", None)
        elif schema._CSafeLoader is None:
            pytest.skip("PyYAML was built without libyaml")
        hostile = tmp_path / "hostile.yaml"
        hostile.write_text(text)
        started = time.monotonic()
        result = run("validate", hostile)
        assert time.monotonic() - started < 10
        assert result.exit_code == 2
        assert "Traceback" not in result.output
        assert re.search(rf"{re.escape(str(hostile))}:\d+: ", result.output)
        assert result.output.count(str(hostile)) == 1

    def test_missing_file_exits_2(self, run, tmp_path):
        result = run("validate", tmp_path / "nope.yaml")
        assert result.exit_code == 2
        assert "nope.yaml" in result.output


class TestProgramLifecycle:
    def test_demo_then_status_plan_apply(self, run):
        demo = run("demo", "--weeks", "3")
        assert demo.exit_code == 0, demo.output
        assert "Adoption summary" in demo.output
        status = run("status", EXAMPLE)
        assert status.exit_code == 0
        assert "training" in status.output and "done" in status.output

    def test_apply_dry_run_writes_nothing(self, run):
        run("demo", "--weeks", "1")
        before = run("status", EXAMPLE).output
        result = run("apply", EXAMPLE, "--dry-run")
        assert result.exit_code == 0
        assert "Dry run: nothing was written." in result.output
        assert run("status", EXAMPLE).output == before

    def test_unknown_platform_is_a_usage_error(self, run):
        result = run("plan", EXAMPLE, "--platform", "nowhere")
        assert result.exit_code == 2
        assert "no platform named 'nowhere' is installed" in result.output

    def test_demo_reports_each_simulated_week_before_the_summary(self, run):
        output = run("demo", "--weeks", "3").output
        positions = [output.index(f"week {n} of 3:") for n in (1, 2, 3)]
        assert positions == sorted(positions)
        assert positions[-1] < output.index("Adoption summary")

    def test_demo_is_deterministic_for_a_seed(self, run):
        first = run("demo", "--weeks", "2", "--seed", "3").output
        second = run("demo", "--weeks", "2", "--seed", "3").output
        assert first == second


class TestAdmin:
    def test_plugins_lists_the_sandbox_and_its_hooks(self, run):
        result = run("plugins")
        assert result.exit_code == 0
        assert "itsm_change_sdk.sandbox.hooks (built in)" in result.output
        assert "itsm_change_register_platforms" in result.output
        assert "sandbox" in result.output.splitlines()[-1]
        platform_section = result.output.split("platform sandbox (hooks of its instances)")[1]
        assert "    itsm_change_publish_training" in platform_section
        assert "    itsm_change_parse_webhook" in platform_section

    def test_plugins_filters_by_hook(self, run):
        result = run("plugins", "--hook", "itsm_change_feedback_captured")
        assert "platform sandbox" not in result.output
        assert "itsm_change_sdk.sandbox.hooks" not in result.output

    def test_doctor_on_the_sandbox(self, run):
        run("demo", "--weeks", "1")
        result = run("doctor", "--platform", "sandbox")
        assert result.exit_code == 0
        assert "[ok  ] sandbox: database" in result.output

    def test_doctor_ending_on_an_error_is_a_failed_line_with_a_fix(self, run, monkeypatch):
        def failing(self):
            raise ServerError("", platform="sandbox", method="GET", url="https://x/api",
                              status_code=502, body="<html>Bad Gateway</html>")

        monkeypatch.setattr(SandboxPlatform, "itsm_change_doctor", hookimpl(failing))
        result = run("doctor", "--platform", "sandbox")
        assert result.exit_code == 1
        assert "[FAIL] sandbox: platform: sandbox:" in result.output
        assert "-> 502" in result.output
        assert "fix: sandbox is failing or unreachable behind a proxy" in result.output
        assert "Traceback" not in result.output

    def test_every_failed_check_comes_with_a_fix(self, run, monkeypatch):
        def no_fix(self):
            return [Check("sandbox", "database", CheckStatus.FAIL, "broken\x1b[2J")]

        monkeypatch.setattr(SandboxPlatform, "itsm_change_doctor", hookimpl(no_fix))
        result = run("doctor", "--platform", "sandbox")
        assert result.exit_code == 1
        assert "[FAIL] sandbox: database: broken\\x1b[2J" in result.output
        assert "fix: run 'itsm-change -v doctor --platform sandbox'" in result.output

    def test_install_on_the_sandbox_needs_nothing(self, run):
        result = run("install", "--platform", "sandbox")
        assert result.exit_code == 0
        assert "[done] sandbox" in result.output


class TestSandboxStaffActions:
    def test_queue_and_staff_actions(self, run):
        run("demo", "--weeks", "1")
        people = run("sandbox", "people").output.splitlines()
        agent = next(line.split()[0] for line in people if line.startswith("u-"))
        queue = run("queue", agent)
        assert queue.exit_code == 0
        assert "Training:" in queue.output and "Open tickets:" in queue.output
        task = re.search(r"(TRN\d{7})\s+\[open\]", queue.output)
        if task:
            done = run("sandbox", "complete", task.group(1))
            assert done.exit_code == 0
            assert task.group(1) not in run("queue", agent).output
        raised = run("sandbox", "raise", "Cannot log in", "--group", "Service Desk Tier 1",
                     "--category", "access", "--channel", "phone")
        number = raised.output.split()[0]
        commented = run("sandbox", "comment", number, "#feedback ability=2 need a guide",
                        "--as", agent)
        assert commented.exit_code == 0
        synced = run("sync", EXAMPLE)
        assert "1 feedback responses captured" in synced.output

    def test_bad_survey_score_is_a_usage_error(self, run):
        run("demo", "--weeks", "1")
        result = run("sandbox", "answer", "SRV0000001", "--score", "awareness=9")
        assert result.exit_code == 2
        assert "N from 1 to 5" in result.output

    def test_unknown_agent_is_a_usage_error(self, run):
        result = run("queue", "nobody@example.com")
        assert result.exit_code == 2
        assert "no sandbox person" in result.output


def test_as_of_rehearses_a_date_in_the_programs_calendar(run):
    run("demo", "--weeks", "1")
    before = run("--as-of", "2027-01-05", "plan", EXAMPLE).output
    assert "0 to create" in before.splitlines()[-1]
    on_pilot = run("--as-of", "2027-01-12T09:00", "plan", EXAMPLE).output
    assert "at 2027-01-12 09:00 UTC" in on_pilot
    assert "+ create  training" in on_pilot


def test_retargeting_needs_a_record_for_each_ticket_note(run, tmp_path):
    copy = tmp_path / "program.yaml"
    copy.write_text(EXAMPLE.read_text().replace("jira: HELP-1, ", ""))
    result = run("plan", copy, "--platform", "jira")
    assert result.exit_code == 2
    assert "communications." in result.output
    assert "has no record on 'jira'; add one, e.g. record: {jira:" in result.output


def test_an_unwritable_data_directory_is_a_plain_error(run, tmp_path, monkeypatch):
    blocked = tmp_path / "file-not-dir"
    blocked.write_text("")
    monkeypatch.setenv("ITSM_CHANGE_HOME", str(blocked / "home"))
    result = run("status", EXAMPLE)
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and "Traceback" not in result.output
    assert "file-not-dir" in result.output


def test_config_file_gives_command_defaults(run, tmp_path, monkeypatch):
    config = tmp_path / "config.toml"
    config.write_text("[demo]\nweeks = 1\nseed = 3\n")
    monkeypatch.setenv("ITSM_CHANGE_CONFIG", str(config))
    result = run("demo")
    assert result.exit_code == 0
    assert "Simulated 2027-01-04 to 2027-01-10 (seed 3)" in result.output


class TestDbOption:
    @pytest.mark.parametrize("value", ["sqlite://", "sqlite:///:memory:",
                                       "sqlite:///file:x?mode=memory&uri=true"])
    def test_in_memory_ledger_is_refused(self, run, value):
        result = run("status", EXAMPLE, "--db", value)
        assert result.exit_code == 2
        assert "in-memory database" in result.output and "--db" in result.output

    def test_malformed_url_is_refused_and_creates_no_file(self, run, tmp_path, monkeypatch):
        monkeypatch.chdir(tmp_path)
        result = run("status", EXAMPLE, "--db", "::::")
        assert result.exit_code == 2
        assert "neither a file path nor a URL" in result.output
        assert not (tmp_path / "::::").exists()

    def test_a_file_path_is_a_persistent_ledger(self, run, tmp_path):
        ledger = tmp_path / "ledger.db"
        assert run("status", EXAMPLE, "--db", ledger).exit_code == 0
        assert ledger.exists()


class TestForScriptsAndTypos:
    def test_dash_h_is_help_everywhere(self, run):
        assert "Usage: cli [OPTIONS] COMMAND" in run("-h").output
        assert "--dry-run" in run("apply", "-h").output
        assert "Add a comment to TICKET" in run("sandbox", "comment", "-h").output

    def test_help_lists_each_command_with_its_whole_first_sentence(self, run):
        listing = run("-h").output.split("Commands:")[1]
        assert "..." not in listing
        assert ("Read back completions, feedback and new tickets by polling (no webhooks "
                "needed).") in " ".join(listing.split())

    @pytest.mark.parametrize("args, suggestion", [
        (["statsu", EXAMPLE], "'status'"),
        (["sandbox", "comnent"], "'comment'"),
    ])
    def test_misspelt_command_suggests_the_right_one(self, run, args, suggestion):
        result = run(*args)
        assert result.exit_code == 2
        assert f"Did you mean {suggestion}" in result.output

    def test_misspelt_platform_suggests_the_installed_one_not_a_package(self, run):
        result = run("plan", EXAMPLE, "--platform", "sandbx")
        assert result.exit_code == 2
        assert "did you mean 'sandbox'?" in result.output
        assert "pip install" not in result.output

    def test_misspelt_hook_filter_suggests_the_hook(self, run):
        result = run("plugins", "--hook", "itsm_change_feedback_captued")
        assert result.exit_code == 2
        assert "did you mean 'itsm_change_feedback_captured'?" in result.output

    def test_plugins_as_json(self, run):
        result = run("plugins", "--json")
        data = json.loads(result.output)
        sandbox = next(p for p in data["plugins"] if p["name"] == "sandbox")
        assert sandbox["kind"] == "platform"
        assert "itsm_change_publish_training" in sandbox["hooks"]
        assert data["skipped"] == {}

    def test_status_as_json(self, run):
        run("demo", "--weeks", "3")
        data = json.loads(run("status", EXAMPLE, "--json").output)
        assert data["program"] == "portal-rollout"
        kinds = {row["kind"] for row in data["effects"]}
        assert "training" in kinds
        assert 0 < data["training"]["completed"] <= data["training"]["assigned"]
