"""Channels are plugins: the built-in ones come through the registration hook, and the
planner and runner know a channel only by what its registration says."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from itsm_change_sdk import hookimpl
from itsm_change_sdk.errors import ConfigurationError, PluginError, ProgramError
from itsm_change_sdk.model import Addressing, ChannelSpec, EffectKind, EffectRef, EffectResult
from itsm_change_sdk.planner import plan
from itsm_change_sdk.plugins import ChannelRegistry, channel_registry, get_plugin_manager
from itsm_change_sdk.schema import load_program_text

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "portal-rollout" / "program.yaml"
NOW = datetime(2027, 1, 5, 10, tzinfo=UTC)
BOARD = """communications:
  - id: kickoff-board
    title: The portal is coming
    channel: board
    audience: [sd-tier1, field-services]
    at: 2027-01-05 09:00
    template: "{program} is coming to {unit}."
"""


class Board:
    """A self-delivering channel that records what it was handed."""

    def __init__(self, settings):
        self.settings = settings
        self.delivered: list = []

    def deliver(self, effects, known):
        self.delivered.extend(effects)
        return [EffectResult(e.key, True, ref=EffectRef(e.key, "board", e.key)) for e in effects]

    def find_effects(self, keys):
        return []

    def close(self):
        pass


class BoardPlugin:
    @hookimpl
    def itsm_change_register_channels(self, register):
        register.add("board", Addressing.AUDIENCE, "the office notice board", factory=Board,
                     settings=("room",))


def board_program(channels):
    return load_program_text(EXAMPLE.read_text().replace("communications:\n", BOARD, 1),
                             channels=channels)


class TestRegistry:
    def test_the_built_in_channels_come_through_the_hook(self):
        specs = channel_registry(get_plugin_manager(load_entry_points=False)).specs()
        assert {name: spec.addressing for name, spec in specs.items()
                if name in ("announcement", "task", "ticket_note")} == {
            "announcement": Addressing.GROUPS, "task": Addressing.PERSON,
            "ticket_note": Addressing.RECORD}

    def test_blocking_the_built_in_module_removes_its_channels(self, monkeypatch):
        monkeypatch.setenv("ITSM_CHANGE_DISABLED_PLUGINS", "itsm_change_sdk.channels")
        specs = channel_registry(get_plugin_manager(load_entry_points=False)).specs()
        assert "task" not in specs

    def test_a_name_registers_once(self):
        registry = ChannelRegistry()
        registry.add("board", Addressing.AUDIENCE, "x", factory=Board)
        with pytest.raises(PluginError, match="registered twice"):
            registry.add("board", Addressing.AUDIENCE, "x", factory=Board)

    def test_a_self_delivering_channel_needs_a_factory_and_others_take_none(self):
        with pytest.raises(PluginError, match="needs a factory"):
            ChannelRegistry().add("board", Addressing.AUDIENCE, "x")
        with pytest.raises(PluginError, match="takes no factory"):
            ChannelRegistry().add("memo", Addressing.PERSON, "x", factory=Board)


class TestPlanning:
    def channels(self):
        pm = get_plugin_manager(load_entry_points=False)
        pm.register(BoardPlugin())
        return channel_registry(pm).specs()

    def test_an_audience_channel_gets_one_effect_for_the_whole_audience(self):
        channels = self.channels()
        program = board_program(channels)
        actions = [a for a in plan(program, {}, {}, NOW, channels).actions
                   if a.effect is not None and a.effect.channel == "board"]
        (action,) = actions
        effect = action.effect
        assert effect.key == "chg:portal-rollout:comm:kickoff-board:20270105T0900:board"
        assert effect.platform == "board" and effect.kind is EffectKind.MESSAGE
        assert effect.audience_groups == ("Field Services", "Service Desk Tier 1")
        assert "coming to Service Desk Tier 1, Field Services" in effect.body

    def test_a_channel_nobody_registers_is_refused_by_the_schema(self):
        with pytest.raises(ProgramError) as info:
            board_program({s.name: s for s in (ChannelSpec("task", Addressing.PERSON, "t"),)})
        (issue,) = [i for i in info.value.issues if i.path == "communications.0.channel"]
        assert "unknown channel 'board'; channels are: task" in issue.message

    def test_and_by_the_planner_when_the_plugin_went_missing(self):
        program = board_program(self.channels())
        without = {k: v for k, v in self.channels().items() if k != "board"}
        with pytest.raises(ConfigurationError, match="'board', which no installed plugin"):
            plan(program, {}, {}, NOW, without)


def test_the_runner_hands_the_effect_to_the_channel_once(tmp_path, monkeypatch):
    from itsm_change_sdk import Workspace
    from itsm_change_sdk.sandbox.platform import SandboxPlatform
    from itsm_change_sdk.sandbox.store import SandboxStore

    monkeypatch.setenv("ITSM_CHANGE_BOARD_ROOM", "lobby")
    with Workspace(str(tmp_path / "ledger.db"), clock=lambda: NOW) as ws:
        ws.pm.register(BoardPlugin())
        ws.platforms.registered_channels = channel_registry(ws.pm)
        program = board_program(ws.platforms.channels)
        ws.platforms.add("sandbox", SandboxPlatform(SandboxStore(
            f"sqlite:///{tmp_path / 'sandbox.db'}")))
        ws.apply(program)
        ws.apply(program)
        board = ws.platforms.deliveries["board"]
        assert board.settings["room"] == "lobby"
        assert [e.key for e in board.delivered] == [
            "chg:portal-rollout:comm:kickoff-board:20270105T0900:board"]
