"""The public entry point for scripts: one object that holds the plugins, the enabled
platforms, the ledger and the clock, and runs a program through them.

    from itsm_change_sdk import Workspace, load_program

    program = load_program("program.yaml")
    with Workspace() as ws:
        ws.enable_for(program)
        print(ws.plan(program).render())
        report = ws.apply(program)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any

import pluggy

from .config import ledger_url
from .errors import ProgramError, ProgramIssue
from .ledger import EffectRow, Ledger
from .model import BUILTIN_CHANNELS, Addressing, ChannelSpec, Program, utcnow
from .planner import Plan
from .plugins import Platforms, get_plugin_manager, register_checked
from .runner import ApplyReport, Runner
from .sync import Syncer, SyncReport

__all__ = ["Workspace", "retarget"]


def retarget(program: Program, platform: str,
             channels: Mapping[str, ChannelSpec] | None = None) -> Program:
    """The same program with every unit on ``platform``: rehearse on the sandbox, then run
    the unchanged file against production with ``--platform``.

    A ``ticket_note`` (any channel that notes on a record) names its record per platform,
    so each needs one for ``platform``. ``channels`` are the registered channels (None: the
    built-in ones).
    """
    specs = channels if channels is not None else {c.name: c for c in BUILTIN_CHANNELS}
    on_record = {name for name, spec in specs.items() if spec.addressing is Addressing.RECORD}
    missing = [
        ProgramIssue(f"communications.{index}.record",
                     f"communication {event.id!r} has no record on {platform!r}; add one, "
                     f"e.g. record: {{{platform}: <the change record's number or key>}}")
        for index, event in enumerate(program.communications)
        if event.channel in on_record and platform not in event.record
    ]
    if missing:
        raise ProgramError(program.source or program.id, missing)
    units = tuple(dataclasses.replace(u, platform=platform) for u in program.units)
    return dataclasses.replace(program, units=units, platforms=(platform,))


class Workspace:
    """Plugins, enabled platforms, the ledger and the clock, for one or more programs.

    :param db: the ledger URL or SQLite path (default: ``ITSM_CHANGE_DB`` or a per-user file).
    :param clock: returns "now"; a rehearsal can run on a simulated calendar.
    :param settings: per-platform explicit settings, over the environment and config file.
    """

    def __init__(self, db: str | None = None, *, clock: Callable[[], datetime] = utcnow,
                 settings: Mapping[str, Mapping[str, Any]] | None = None,
                 pm: pluggy.PluginManager | None = None, concurrency: int = 4) -> None:
        self.pm = pm or get_plugin_manager()
        self.platforms = Platforms(self.pm)
        self.ledger = Ledger(ledger_url(db))
        self.clock = clock
        self.settings = dict(settings or {})
        self.concurrency = concurrency

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self.platforms.close()
        self.ledger.close()

    def enable(self, platform: str, **settings: Any) -> object:
        """Enable one platform (settings given here win over the config file and env)."""
        explicit = {**self.settings.get(platform, {}), **settings}
        return self.platforms.enable(platform, explicit)

    def enable_for(self, program: Program) -> None:
        """Enable every platform the program's units are on (``platforms`` may list more:
        the ones the file carries records for, ready for ``--platform``)."""
        for platform in dict.fromkeys(unit.platform for unit in program.units):
            self.enable(platform)

    def add_observer(self, plugin: object, name: str | None = None) -> None:
        """Register an object whose ``@hookimpl`` methods observe the run.

        An object whose hook name is misspelt, or that has no ``@hookimpl`` at all, is refused
        with a :class:`~itsm_change_sdk.errors.PluginError` rather than silently never called.
        """
        register_checked(self.pm, plugin, name, what="observer", require_hooks=True)

    def runner(self, program: Program) -> Runner:
        return Runner(program, self.platforms, self.ledger, self.clock, self.concurrency)

    def plan(self, program: Program) -> Plan:
        return self.runner(program).plan()

    def apply(self, program: Program, *, dry_run: bool = False,
              progress: Callable[[int], None] | None = None) -> ApplyReport:
        return self.runner(program).apply(dry_run=dry_run, progress=progress)

    def sync(self, program: Program) -> SyncReport:
        return Syncer(program, self.platforms, self.ledger, self.clock, self.concurrency).run()

    def status(self, program: Program) -> list[EffectRow]:
        return self.ledger.effects(program.id)
