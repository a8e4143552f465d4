"""The command line's log: quiet by default, never a payload, retries collapsed."""

from __future__ import annotations

import logging

import pytest

from itsm_change_sdk.cli.logs import MAX_LINE, setup_logging
from itsm_change_sdk.errors import ServerError
from itsm_change_sdk.http.retry import RetryPolicy

PAYLOAD = '{"issueUpdates": [' + '{"fields": {"summary": "secret ticket text"}},' * 2000 + "]}"


@pytest.fixture(autouse=True)
def restore_root_logger():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def failing_bulk_create() -> None:
    raise ServerError("busy", platform="jira", method="POST", status_code=503,
                      url="https://acme.atlassian.net/rest/api/3/issue/bulk?notify=false",
                      body=PAYLOAD, retryable=True, details=[PAYLOAD])


def retry_three_calls() -> None:
    policy = RetryPolicy(attempts=4, sleep=lambda seconds: None)
    for _ in range(3):
        with pytest.raises(ServerError):
            policy.call(failing_bulk_create)


def test_retries_of_one_kind_collapse_into_one_line_and_a_count(capsys):
    logs = setup_logging(verbose=0, quiet=False)
    retry_three_calls()
    err = capsys.readouterr().err
    assert err.count("retrying") == 1
    assert "retrying jira POST /rest/api/3/issue/bulk after 503" in err
    assert logs.summary() == ["retried jira POST /rest/api/3/issue/bulk 9 times (503 x9)"]


def test_no_payload_and_no_internal_function_names_in_retry_lines(capsys):
    setup_logging(verbose=0, quiet=False)
    retry_three_calls()
    err = capsys.readouterr().err
    assert "secret ticket text" not in err
    assert "failing_bulk_create" not in err and "<function" not in err


def test_every_retry_is_shown_with_vv(capsys):
    logs = setup_logging(verbose=2, quiet=False)
    retry_three_calls()
    assert capsys.readouterr().err.count("retrying") == 9
    assert logs.summary() == []


def test_a_long_message_is_cut_below_vv(capsys):
    setup_logging(verbose=0, quiet=False)
    logging.getLogger("itsm_change_sdk.runner").error("failed: %s", PAYLOAD)
    line = capsys.readouterr().err.strip()
    assert len(line) < MAX_LINE + 100
    assert "-vv shows all" in line


def test_quiet_shows_errors_only(capsys):
    setup_logging(verbose=0, quiet=True)
    logging.getLogger("itsm_change_sdk").warning("a warning")
    logging.getLogger("itsm_change_sdk").error("an error")
    err = capsys.readouterr().err
    assert "a warning" not in err and "an error" in err


class TestErrorMessages:
    @pytest.fixture
    def failing(self):
        import click
        from click.testing import CliRunner

        from itsm_change_sdk.cli import Group
        from itsm_change_sdk.errors import APIError

        def invoke(message: str):
            @click.group(cls=Group)
            def group() -> None: ...

            @group.command()
            def call() -> None:
                raise APIError(message)

            return CliRunner().invoke(group, ["call"], catch_exceptions=False)

        return invoke

    def test_escape_sequences_from_a_platform_are_shown_escaped(self, failing):
        result = failing("ticket \x1b[2J\x1b]0;owned\x07 refused")
        assert result.exit_code == 1
        assert "\x1b" not in result.output and "\\x1b[2J" in result.output

    def test_an_error_without_any_detail_still_says_what_it_is(self, failing):
        result = failing("")
        assert result.output.startswith("Error: APIError without any detail")
