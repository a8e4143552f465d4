"""What a worker process holds: the workspace (plugins, ledger, clock), the programs it
serves, and the shared rate limit installed into every platform client."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigurationError
from ..http.pacing import use_shared_limit
from ..model import Program
from ..workspace import Workspace
from .ratelimit import RedisRateLimit
from .settings import ClusterSettings

__all__ = ["PROGRAMS_ENV", "WorkerContext", "context", "reset"]

log = logging.getLogger(__name__)

PROGRAMS_ENV = "ITSM_CHANGE_WORKER_PROGRAMS"
"""The program files a worker serves, separated by the path separator (``worker`` sets it)."""


@dataclass
class WorkerContext:
    settings: ClusterSettings
    ws: Workspace
    programs: dict[str, Program] = field(default_factory=dict)
    sync: str = "auto"

    def program(self, program_id: str) -> Program:
        try:
            return self.programs[program_id]
        except KeyError:
            raise ConfigurationError(
                f"this worker does not serve program {program_id!r} (it serves "
                f"{', '.join(sorted(self.programs)) or 'none'}); start it with that program's "
                "file: itsm-change worker PROGRAM...") from None

    def polled(self, program: Program) -> list[str]:
        """The platforms a tick polls: ``auto`` polls those without a webhook secret."""
        from ..service.server import webhook_secret

        names = [p for p in program.platforms if p in self.ws.platforms.instances]
        if self.sync == "never":
            return []
        if self.sync == "always":
            return names
        return [p for p in names if not webhook_secret(self.ws, p)]


_lock = threading.Lock()
_context: WorkerContext | None = None


def load_programs(ws: Workspace, files: list[str]) -> dict[str, Program]:
    from ..cli.common import load

    programs: dict[str, Program] = {}
    for name in files:
        program = load(Path(name), None, ws)
        ws.enable_for(program)
        programs[program.id] = program
    return programs


def context() -> WorkerContext:
    """This process's context, built on first use (after a fork, never before)."""
    global _context
    with _lock:
        if _context is None:
            settings = ClusterSettings.from_env()
            ws = Workspace()
            files = [f for f in os.environ.get(PROGRAMS_ENV, "").split(os.pathsep) if f]
            programs = load_programs(ws, files)
            install_shared_limit(settings)
            _context = WorkerContext(settings, ws, programs,
                                     os.environ.get("ITSM_CHANGE_WORKER_SYNC", "auto"))
        return _context


def install_shared_limit(settings: ClusterSettings) -> None:
    """Draw every platform call of this process from the cluster's budget."""
    use_shared_limit(RedisRateLimit.from_settings(settings))


def reset() -> None:
    """Forget the context (a new pool process builds its own) and draw from the shared
    budget through connections of this process."""
    global _context
    with _lock:
        _context = None
    install_shared_limit(ClusterSettings.from_env())
