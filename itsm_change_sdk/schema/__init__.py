"""Load a change program from a YAML or JSON file into the model objects.

The public entry points are :func:`load_program` (a file), :func:`load_program_text` (text
already in memory) and :func:`load_program_data` (a mapping already parsed). Every problem
raises :class:`~itsm_change_sdk.errors.ProgramError` listing **every** issue found, each with
its dotted field path (``training.1.objectives``), what is wrong and what is expected, and,
where known, its line in the file.

The stages, one module each: :mod:`.reading` (file safety, YAML/JSON, line numbers),
:mod:`.fields` and :mod:`.schemas` (each item on its own), :mod:`.checks` (rules across
items) and :mod:`.loading` (the entry points). The file format is documented in
``docs/program-file.md``.
"""

from __future__ import annotations

from .checks import ALLIANCE_AUDIENCE
from .fields import TEMPLATE_PLACEHOLDERS, template_problems
from .loading import load_program, load_program_data, load_program_text
from .reading import MAX_NESTING, MAX_PROGRAM_BYTES
from .reading import _CSafeLoader as _CSafeLoader  # the switch reading._compose consults
from .schemas import (
    COMPLETION_KINDS,
    GOAL_PERIODS,
    MAX_CADENCE_OCCURRENCES,
    SECTIONS,
    ActiveWindowSchema,
    AllianceMemberSchema,
    CadenceSchema,
    CommunicationEventSchema,
    GoalSchema,
    ProgramSchema,
    PromptSchema,
    SurveySchema,
    TicketFilterSchema,
    TrainingModuleSchema,
    UnitSchema,
    WaveSchema,
)

__all__ = [
    "ALLIANCE_AUDIENCE",
    "COMPLETION_KINDS",
    "GOAL_PERIODS",
    "MAX_CADENCE_OCCURRENCES",
    "MAX_NESTING",
    "MAX_PROGRAM_BYTES",
    "SECTIONS",
    "TEMPLATE_PLACEHOLDERS",
    "ActiveWindowSchema",
    "AllianceMemberSchema",
    "CadenceSchema",
    "CommunicationEventSchema",
    "GoalSchema",
    "ProgramSchema",
    "PromptSchema",
    "SurveySchema",
    "TicketFilterSchema",
    "TrainingModuleSchema",
    "UnitSchema",
    "WaveSchema",
    "load_program",
    "load_program_data",
    "load_program_text",
    "template_problems",
]
