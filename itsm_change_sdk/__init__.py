"""itsm-change-sdk: run the people side of an IT change inside the ticketing tools in use.

The public API for scripts::

    from itsm_change_sdk import Workspace, load_program

    program = load_program("program.yaml")       # validated; ProgramError lists every issue
    with Workspace() as ws:                       # plugins, platforms, ledger, clock
        ws.enable_for(program)
        print(ws.plan(program).render())          # what apply would do, as a diff
        print(ws.apply(program).summary())        # do it; safe to repeat
        print(ws.sync(program).summary())         # read completions, feedback, prompts

Observers are plain objects with ``@hookimpl`` methods, registered with
``Workspace.add_observer``.
"""

from .errors import (
    APIError,
    ConfigurationError,
    ITSMError,
    PluginError,
    ProgramError,
    UnsupportedOperation,
    WebhookRejected,
)
from .hookspecs import hookimpl
from .ledger import Ledger
from .model import Effect, EffectKind, FeedbackResponse, Program, Ticket, TicketEvent
from .planner import Plan
from .runner import ApplyReport
from .schema import load_program, load_program_text
from .sync import SyncReport
from .workspace import Workspace, retarget

__version__ = "0.1.0"

__all__ = [
    "APIError",
    "ApplyReport",
    "ConfigurationError",
    "Effect",
    "EffectKind",
    "FeedbackResponse",
    "ITSMError",
    "Ledger",
    "Plan",
    "PluginError",
    "Program",
    "ProgramError",
    "SyncReport",
    "Ticket",
    "TicketEvent",
    "UnsupportedOperation",
    "WebhookRejected",
    "Workspace",
    "__version__",
    "hookimpl",
    "load_program",
    "load_program_text",
    "retarget",
]
