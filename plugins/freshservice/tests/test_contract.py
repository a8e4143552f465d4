"""The Freshservice plugin passes the contract suite every platform plugin passes.

The ``platform`` and ``double`` fixtures come from ``conftest.py``: the plugin pointed at
:class:`FakeFreshservice`, a stateful fake of API v2 on ``responses`` callbacks that answers
with the payload shapes Freshservice documents.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from itsm_change_sdk.cli import cli
from itsm_change_sdk.model import Effect, EffectKind
from itsm_change_sdk.testing.contract import PlatformContract


class TestFreshserviceContract(PlatformContract):
    """``training_mode = "ticket"`` (the default): one ticket per assignment, found again by
    its hashed key tag; survey answers are the CSAT responses on feedback tickets."""


class TestFreshserviceTaskModeContract(PlatformContract):
    """``training_mode = "task"``: assignments, acknowledgements and feedback requests are
    tasks on one tracking ticket, found again by the marker in their description."""

    @pytest.fixture
    def double(self, fake):
        """Tasks have no CSAT survey: answers come only from feedback tickets."""
        fake.capabilities = dataclasses.replace(fake.capabilities, survey_answers=False)
        return fake

    @pytest.fixture
    def platform(self, make_platform, double):
        tracker = double.add_ticket(title="Change training tracker", kind="service_request",
                                    opened_at=datetime(2027, 1, 4, 9, tzinfo=UTC))
        instance = make_platform(training_mode="task", training_ticket=tracker.number)
        yield instance
        instance.close()

    def test_tasks_hang_on_the_tracking_ticket(self, platform, double):
        person = double.add_person("Agent Tracker", "agent.tracker@example.com")
        effect = Effect(key="chg:contract:training:portal:freshservice:" + person.id,
                        kind=EffectKind.TRAINING, platform="freshservice", program="contract",
                        title="Training: Portal basics", body="Log a portal ticket.",
                        channel="task", recipient=person)
        (result,) = platform.itsm_change_publish_training(effects=[effect], known={})
        assert result.ok
        (record,) = double.records(EffectKind.TRAINING)
        assert record.ticket_id == str(platform.parent_ticket)
        assert record.remote_id == result.ref.remote_id
        assert double.records(EffectKind.FEEDBACK_REQUEST) == []


def test_notes_are_found_on_the_ticket_their_key_names(make_platform, double):
    """A fresh instance (no memory of what it posted) finds a ``ticket_note`` message and a
    prompt on the tickets their keys end with, reading each ticket's conversations once."""
    first = double.add_ticket(title="Change A", opened_at=datetime(2027, 1, 11, tzinfo=UTC))
    second = double.add_ticket(title="Change B", opened_at=datetime(2027, 1, 11, tzinfo=UTC))
    message = Effect(key=f"chg:contract:comm:kickoff:20270111T0900:freshservice:{first.number}",
                     kind=EffectKind.MESSAGE, platform="freshservice", program="contract",
                     title="Kickoff", body="The portal goes live.", channel="ticket_note",
                     ticket_id=first.number)
    prompt = Effect(key=f"chg:contract:prompt:portal:freshservice:{second.id}",
                    kind=EffectKind.PROMPT, platform="freshservice", program="contract",
                    title="Tip", body="Point the caller to the portal.",
                    channel="ticket_note", ticket_id=second.id)
    writer = make_platform()
    (sent,) = writer.itsm_change_deliver_communication(effects=[message], known={})
    (posted,) = writer.itsm_change_post_prompts(effects=[prompt], known={})
    reader = make_platform()
    before = len(double.requests)
    other = f"chg:contract:prompt:other:freshservice:{second.id}"
    assert reader.itsm_change_find_effects(EffectKind.PROMPT, [prompt.key, other]) == \
        [posted.ref]
    assert reader.itsm_change_find_effects(EffectKind.MESSAGE, [message.key]) == [sent.ref]
    reads = [r.url for r in double.requests[before:] if "/conversations" in (r.url or "")]
    assert len(reads) == 2, "one read of each ticket's conversations"
    assert double.write_calls() == 2


def test_plugins_command_lists_the_freshservice_platform():
    """``itsm-change plugins`` shows the installed plugin and its ``freshservice`` platform."""
    result = CliRunner().invoke(cli, ["plugins"])
    assert result.exit_code == 0, result.output
    assert "freshservice (itsm-change-freshservice " in result.output
    (platforms,) = [line for line in result.output.splitlines()
                    if line.startswith("Platforms: ")]
    assert "freshservice" in platforms.removeprefix("Platforms: ").split(", ")
