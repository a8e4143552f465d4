"""The Slack channel posts a program's communications through an incoming webhook."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
import responses
from click.testing import CliRunner
from itsm_change_slack_channel import CHANNEL_NAME, SlackChannel, message_payload

from itsm_change_sdk import Workspace
from itsm_change_sdk.cli import cli
from itsm_change_sdk.errors import ConfigurationError
from itsm_change_sdk.http.retry import RetryPolicy
from itsm_change_sdk.model import Effect, EffectKind, EffectRef
from itsm_change_sdk.sandbox.platform import SandboxPlatform
from itsm_change_sdk.sandbox.store import SandboxStore
from itsm_change_sdk.schema import load_program_text

WEBHOOK = "https://hooks.slack.com/services/T0001/B0002/sEcReTtOkEn0123456789abc"
EXAMPLE = Path(__file__).resolve().parents[2] / "portal-rollout" / "program.yaml"


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    """Every test gets its own data directory and config file; nothing touches ~/."""
    monkeypatch.setenv("ITSM_CHANGE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ITSM_CHANGE_CONFIG", str(tmp_path / "config.toml"))
    for name in ("ITSM_CHANGE_DB", "ITSM_CHANGE_SANDBOX_DB", "ITSM_CHANGE_SLACK_WEBHOOK_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def rsps():
    with responses.RequestsMock() as mock:
        yield mock


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def channel(sleeps):
    instance = SlackChannel(WEBHOOK)
    instance.transport.policy = RetryPolicy(sleep=sleeps.append)
    yield instance
    instance.close()


def message(key: str = "chg:p:comm:kickoff:20270105T0900:slack", **fields) -> Effect:
    values = {"title": "The portal is coming", "audience_groups": ("Service Desk Tier 1",),
              "body": "Go-live is on 18 January. <b>Not markup</b> & *not bold*."}
    values.update(fields)
    return Effect(key=key, kind=EffectKind.MESSAGE, platform=CHANNEL_NAME, program="p",
                  channel=CHANNEL_NAME, **values)


class TestPayload:
    def test_blocks_carry_the_text_as_plain_text(self):
        payload = message_payload(message())
        header, section, context = payload["blocks"]
        assert header == {"type": "header",
                          "text": {"type": "plain_text", "text": "The portal is coming"}}
        assert section["text"] == {"type": "plain_text", "text": message().body}
        assert context["elements"][0]["type"] == "plain_text"
        assert message().key in context["elements"][0]["text"]
        assert "Service Desk Tier 1" in context["elements"][0]["text"]

    def test_the_notification_text_escapes_what_slack_reads_as_markup(self):
        text = message_payload(message())["text"]
        assert "&lt;b&gt;Not markup&lt;/b&gt; &amp; *not bold*" in text
        assert "<b>" not in text

    def test_long_titles_and_bodies_fit_slacks_limits(self):
        payload = message_payload(message(title="T" * 400, body="x" * 7000))
        header, *sections, _ = payload["blocks"]
        assert len(header["text"]["text"]) == 150
        assert [len(s["text"]["text"]) for s in sections] == [3000, 3000, 1000]


class TestDelivery:
    def test_each_new_communication_is_posted_once(self, channel, rsps):
        rsps.add(responses.POST, WEBHOOK, body="ok", status=200)
        first, second = message(), message(key="chg:p:comm:golive:20270118T0830:slack")
        results = channel.deliver([first, second], {})
        assert [r.ok for r in results] == [True, True]
        assert [r.ref.key for r in results] == [first.key, second.key]
        posted = [json.loads(call.request.body) for call in rsps.calls]
        assert [p["blocks"][0]["text"]["text"] for p in posted] == [first.title, second.title]
        assert rsps.calls[0].request.headers["Content-Type"] == "application/json"

    def test_a_posted_communication_is_not_posted_again(self, channel, rsps):
        ref = EffectRef(message().key, CHANNEL_NAME, message().key)
        (result,) = channel.deliver([message(body="edited")], {message().key: ref})
        assert result.ok and result.ref == ref
        assert len(rsps.calls) == 0

    def test_rate_limited_posts_wait_as_slack_asks(self, channel, rsps, sleeps):
        rsps.add(responses.POST, WEBHOOK, body="rate_limited", status=429,
                 headers={"Retry-After": "2"})
        rsps.add(responses.POST, WEBHOOK, body="ok", status=200)
        (result,) = channel.deliver([message()], {})
        assert result.ok and len(rsps.calls) == 2
        assert sleeps and sleeps[0] >= 2

    def test_a_refused_payload_fails_that_message_only(self, channel, rsps):
        rsps.add(responses.POST, WEBHOOK, body="invalid_payload", status=400)
        rsps.add(responses.POST, WEBHOOK, body="ok", status=200)
        bad, good = message(), message(key="chg:p:comm:golive:20270118T0830:slack")
        results = channel.deliver([bad, good], {})
        assert not results[0].ok and "invalid_payload" in results[0].error
        assert results[1].ok

    @pytest.mark.parametrize("status, code", [(403, "action_prohibited"), (404, "no_service"),
                                              (404, "channel_not_found"),
                                              (410, "channel_is_archived")])
    def test_a_dead_webhook_stops_the_call_without_showing_its_token(self, channel, rsps,
                                                                     caplog, status, code):
        rsps.add(responses.POST, WEBHOOK, body=code, status=status)
        with caplog.at_level(logging.DEBUG), pytest.raises(ConfigurationError) as info:
            channel.deliver([message()], {})
        assert code in str(info.value) and "webhook_url" in str(info.value)
        assert "sEcReTtOkEn" not in str(info.value) + repr(info.value.__cause__.__dict__)
        assert "sEcReTtOkEn" not in caplog.text

    def test_nothing_can_be_looked_up(self, channel):
        assert channel.find_effects([message().key]) == []


class TestSettings:
    def test_the_url_must_be_a_slack_incoming_webhook(self):
        with pytest.raises(ConfigurationError, match=r"hooks\.slack\.com"):
            SlackChannel.from_settings({"webhook_url": "https://example.com/hook"})

    def test_a_missing_url_says_which_variable_to_set(self):
        with pytest.raises(ConfigurationError, match="ITSM_CHANGE_SLACK_WEBHOOK_URL"):
            SlackChannel.from_settings({})


def test_the_plugins_command_shows_the_channel():
    result = CliRunner().invoke(cli, ["plugins"])
    assert result.exit_code == 0, result.output
    assert "slack_channel (itsm-change-slack-channel " in result.output
    assert "    itsm_change_register_channels" in result.output
    (line,) = [x for x in result.output.splitlines() if x.startswith("Channels: ")]
    assert "slack" in line.removeprefix("Channels: ").split(", ")


SLACK_KICKOFF = """communications:
  - id: kickoff-slack
    title: The self-service portal is coming
    channel: slack
    audience: [sd-tier1, sd-tier2]
    at: 2027-01-05 09:00
    template: |
      {program} is coming to {unit}; the pilot starts on {starts}.
"""


def slack_program() -> str:
    return EXAMPLE.read_text().replace("communications:\n", SLACK_KICKOFF, 1)


def test_a_program_communication_reaches_slack_once(tmp_path, monkeypatch, rsps):
    """Applied twice through the workspace: one post, for the whole audience."""
    monkeypatch.setenv("ITSM_CHANGE_SLACK_WEBHOOK_URL", WEBHOOK)
    rsps.add(responses.POST, WEBHOOK, body="ok", status=200)
    store = SandboxStore(f"sqlite:///{tmp_path / 'sandbox.db'}")
    with Workspace(str(tmp_path / "ledger.db"),
                   clock=lambda: datetime(2027, 1, 5, 10, tzinfo=UTC)) as ws:
        program = load_program_text(slack_program(), channels=ws.platforms.channels)
        ws.platforms.add("sandbox", SandboxPlatform(store))
        for _ in range(2):
            report = ws.apply(program)
            assert [key for key, _ in report.failed if key.endswith(":slack")] == []
    (call,) = [c for c in rsps.calls if c.request.url == WEBHOOK]
    payload = json.loads(call.request.body)
    assert payload["blocks"][0]["text"]["text"] == "The self-service portal is coming"
    assert "is coming to Service Desk Tier 1, Service Desk Tier 2" in \
        payload["blocks"][1]["text"]["text"]


def test_the_demo_delivers_the_slack_communication_when_enabled(tmp_path, monkeypatch, rsps):
    program = tmp_path / "program.yaml"
    program.write_text(slack_program())
    monkeypatch.setenv("ITSM_CHANGE_SLACK_WEBHOOK_URL", WEBHOOK)
    rsps.add(responses.POST, WEBHOOK, body="ok", status=200)
    result = CliRunner().invoke(cli, ["demo", "--weeks", "1", "--program", str(program)])
    assert result.exit_code == 0, result.output
    posted = [json.loads(c.request.body) for c in rsps.calls if c.request.url == WEBHOOK]
    assert [p["blocks"][0]["text"]["text"] for p in posted] == \
        ["The self-service portal is coming"]


def test_without_the_channel_plugin_the_program_is_refused_by_name():
    with pytest.raises(Exception) as info:
        load_program_text(slack_program(), source="program.yaml", channels={})
    assert "unknown channel 'slack'" in str(info.value)
