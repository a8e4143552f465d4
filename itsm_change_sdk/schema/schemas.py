"""The marshmallow schemas, one per section of a program file; each builds its model object.

Rules that need only one item are checked here; rules across items are in :mod:`.checks`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

from marshmallow import RAISE, Schema, ValidationError, post_load, validates_schema

from ..model import (
    ADKAR_DIMENSIONS,
    AllianceMember,
    Cadence,
    CheckIn,
    CommunicationEvent,
    Goal,
    Prompt,
    Sponsor,
    Survey,
    TicketFilter,
    TrainingModule,
    Unit,
    UnmarkedFeedback,
    Wave,
)
from .fields import (
    ChannelName,
    Choice,
    Date,
    DateTime,
    Email,
    Flag,
    Group,
    Integer,
    Label,
    ListOf,
    Marker,
    MetricName,
    Number,
    Params,
    Records,
    Section,
    Slug,
    Template,
    Text,
    TimeZone,
    placeholder_names,
)
from .messages import SCHEMA_KEY, UNKNOWN, join_path

MAX_CADENCE_OCCURRENCES = 1000
"""A cadence (``every``) may produce at most this many occurrences."""

COMPLETION_KINDS: tuple[str, ...] = ("attestation", "quiz", "ticket_closed")
GOAL_PERIODS: tuple[str, ...] = ("day", "week", "month")


class _Base(Schema):
    class Meta:
        unknown = RAISE

    error_messages: ClassVar[dict[str, str]] = {  # type: ignore[misc]
        "unknown": UNKNOWN,
        "type": "expected a mapping of fields (name: value)",
    }


def _ids(what: str, **kwargs: Any) -> ListOf:
    return ListOf(Slug(f"a {what} id"), f"a list of {what} ids", unique=True, **kwargs)


def _labels(what: str) -> ListOf:
    return ListOf(Label(what), f"a list of {what}s", unique=True, load_default=())


def _has(data: Mapping[str, Any], *names: str) -> bool:
    """Whether every named field loaded (a field with an error is absent)."""
    return all(name in data for name in names)


def _utc(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"


class TicketFilterSchema(_Base):
    platform = Slug("a platform name", allow_none=True, load_default=None)
    kinds = _labels("ticket kind")
    categories = _labels("category")
    services = _labels("service")
    groups = _labels("assignment group")
    channels = _labels("channel")
    priorities = _labels("priority")

    @post_load
    def make(self, data: dict[str, Any], **kwargs: Any) -> TicketFilter:
        return TicketFilter(**data)


class GoalSchema(_Base):
    id = Slug("a goal id", required=True)
    title = Text("the goal's title", required=True)
    metric = MetricName(required=True)
    params = Params(load_default=dict)
    filter = Group(TicketFilterSchema, "a ticket filter mapping", load_default=TicketFilter)
    baseline = Number("the metric's value before the change (a number)", required=True)
    target = Number("the metric's target value (a number)", required=True)
    units = _ids("unit", load_default=())
    period = Choice(GOAL_PERIODS, load_default="week")

    @validates_schema(skip_on_field_errors=False)
    def check(self, data: dict[str, Any], **kwargs: Any) -> None:
        if _has(data, "baseline", "target") and data["baseline"] == data["target"]:
            raise ValidationError(
                f"target equals baseline ({data['target']:g}): a goal must move its metric; "
                "set a target above or below the baseline",
                "target",
            )

    @post_load
    def make(self, data: dict[str, Any], **kwargs: Any) -> Goal:
        return Goal(**data)


class GateSchema(_Base):
    """A wave's ``gate:``: conditions beyond the default ones."""

    leaders_trained = Flag(load_default=False)


class WaveSchema(_Base):
    id = Slug("a wave id", required=True)
    title = Text("the wave's title", required=True)
    starts = Date(required=True)
    go_live = Date(required=True)
    gate = Group(GateSchema, "a mapping such as {leaders_trained: true}", load_default=dict)

    @validates_schema(skip_on_field_errors=False)
    def check(self, data: dict[str, Any], **kwargs: Any) -> None:
        if _has(data, "starts", "go_live") and data["go_live"] < data["starts"]:
            raise ValidationError(
                f"go_live ({data['go_live']}) is before starts ({data['starts']}): "
                "a wave goes live on or after the day it starts",
                "go_live",
            )

    @post_load
    def make(self, data: dict[str, Any], **kwargs: Any) -> Wave:
        gate = data.pop("gate") or {}
        return Wave(**data, leaders_trained=bool(gate.get("leaders_trained", False)))


class UnitSchema(_Base):
    id = Slug("a unit id", required=True)
    title = Text("the unit's title", required=True)
    wave = Slug("the id of the unit's wave", required=True)
    platform = Slug("the name of the unit's platform", required=True)
    group = Text("the platform group whose members form the unit", allow_none=True,
                 load_default=None)
    members = ListOf(Label("a member id"), "a list of member ids", unique=True, load_default=())
    manager = Text("the unit manager's id or name", allow_none=True, load_default=None)
    ticket_groups = ListOf(Text("an assignment group"), "a list of assignment groups",
                           unique=True, load_default=())

    @validates_schema(skip_on_field_errors=False)
    def check(self, data: dict[str, Any], **kwargs: Any) -> None:
        if _has(data, "group", "members") and not data["group"] and not data["members"]:
            raise ValidationError(
                "a unit needs a group (the platform group whose members form it) "
                "or members (explicit member ids), or both"
            )

    @post_load
    def make(self, data: dict[str, Any], **kwargs: Any) -> Unit:
        return Unit(**data)


class AllianceMemberSchema(_Base):
    id = Slug("a member id", required=True)
    name = Text("the manager's name", required=True)
    email = Email(allow_none=True, load_default=None)
    domain = Text("the functional domain they speak for", required=True)
    units = _ids("unit", min_items=1, required=True)
    signs_off = _ids("wave", load_default=())

    @post_load
    def make(self, data: dict[str, Any], **kwargs: Any) -> AllianceMember:
        return AllianceMember(**data)


class TrainingModuleSchema(_Base):
    id = Slug("a module id", required=True)
    title = Text("the module's title", required=True)
    objectives = ListOf(
        Text("a learning objective"),
        "a non-empty list of learning objectives (what people can do afterwards); "
        "training without objectives is a checkbox",
        min_items=1,
        unique=True,
        required=True,
    )
    audience = _ids("unit", min_items=1, required=True)
    due_days = Integer(
        "the number of days after the wave starts by which it is due (0 to 365)",
        minimum=0,
        maximum=365,
        required=True,
    )
    completion = Choice(COMPLETION_KINDS, load_default="attestation")
    link = Text("a link to the material", allow_none=True, load_default=None)
    duration_minutes = Integer("minutes (1 to 1440)", minimum=1, maximum=1440,
                               allow_none=True, load_default=None)
    min_score = Integer("a pass mark from 0 to 100", minimum=0, maximum=100,
                        allow_none=True, load_default=None)

    @validates_schema(skip_on_field_errors=False)
    def check(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not _has(data, "completion", "min_score"):
            return
        if data["completion"] == "quiz" and data["min_score"] is None:
            raise ValidationError(
                "completion 'quiz' needs min_score: the pass mark from 0 to 100", "min_score"
            )
        if data["completion"] != "quiz" and data["min_score"] is not None:
            raise ValidationError(
                f"min_score applies only when completion is 'quiz' "
                f"(this module's completion is '{data['completion']}')",
                "min_score",
            )

    @post_load
    def make(self, data: dict[str, Any], **kwargs: Any) -> TrainingModule:
        return TrainingModule(**data)


class CadenceSchema(_Base):
    days = Integer("the number of days between occurrences (1 to 366)", minimum=1, maximum=366,
                   required=True)
    start = DateTime("the first occurrence, a date-time such as 2027-01-25 09:00",
                     data_key="from", required=True)
    until = DateTime("the last possible occurrence, a date-time or date", end_of_day=True,
                     required=True)

    @validates_schema(skip_on_field_errors=False)
    def check(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not _has(data, "start", "until"):
            return
        if data["until"] < data["start"]:
            raise ValidationError(
                f"until ({_utc(data['until'])}) is before from ({_utc(data['start'])}): "
                "the cadence must end after it starts",
                "until",
            )
        if "days" not in data:
            return
        count = (data["until"] - data["start"]).days // data["days"] + 1
        if count > MAX_CADENCE_OCCURRENCES:
            raise ValidationError(
                f"this cadence makes {count} occurrences; at most {MAX_CADENCE_OCCURRENCES} "
                "are allowed: use a longer interval or a shorter period",
                "days",
            )

    @post_load
    def make(self, data: dict[str, Any], **kwargs: Any) -> Cadence:
        return Cadence(every_days=data["days"], start=data["start"], until=data["until"])


class CommunicationEventSchema(_Base):
    id = Slug("a communication id", required=True)
    title = Text("the communication's title", required=True)
    channel = ChannelName(required=True)
    audience = ListOf(
        Slug("a unit id or 'alliance'"),
        "a list of unit ids, or 'alliance' for the management alliance",
        min_items=1,
        unique=True,
        required=True,
    )
    template = Template(required=True)
    at = DateTime(allow_none=True, load_default=None)
    every = Group(CadenceSchema, "a cadence mapping {days, from, until}", allow_none=True,
                  load_default=None)
    survey = Slug("a survey id", allow_none=True, load_default=None)
    record = Records(load_default=dict)

    @validates_schema(skip_on_field_errors=False)
    def check(self, data: dict[str, Any], **kwargs: Any) -> None:
        errors: dict[str, list[str]] = {}
        if not _has(data, "at", "every"):
            pass
        elif data["at"] is None and data["every"] is None:
            errors.setdefault(SCHEMA_KEY, []).append(
                "a communication needs a time: give 'at' (one date-time) or "
                "'every' (a cadence {days, from, until})"
            )
        elif data["at"] is not None and data["every"] is not None:
            errors.setdefault("every", []).append(
                "give either 'at' or 'every', not both: one communication is sent once "
                "or on a cadence"
            )
        if (
            _has(data, "survey", "template")
            and data["survey"] is None
            and "survey" in placeholder_names(data["template"])
        ):
            errors.setdefault("template", []).append(
                "the template uses {survey} but the communication has no survey: "
                "attach one with 'survey: <id>' or remove the placeholder"
            )
        if errors:
            raise ValidationError(errors)

    @post_load
    def make(self, data: dict[str, Any], **kwargs: Any) -> CommunicationEvent:
        every = data.pop("every")
        return CommunicationEvent(**{**data, "cadence": every})


class CheckInSchema(_Base):
    """``checkins:``: a brief for each alliance member on a cadence."""

    id = Slug("a check-in id", required=True)
    title = Text("the brief's title", required=True)
    every = Group(CadenceSchema, "a cadence mapping {days, from, until}", required=True)
    channel = ChannelName(load_default="task")

    @post_load
    def make(self, data: dict[str, Any], **kwargs: Any) -> CheckIn:
        every = data.pop("every")
        return CheckIn(**{**data, "cadence": every})


class SponsorSchema(_Base):
    id = Slug("a sponsor id", required=True)
    name = Text("the sponsor's name", required=True)
    platform = Slug("the platform their tasks go to", allow_none=True, load_default=None)
    email = Email(allow_none=True, load_default=None)

    @post_load
    def make(self, data: dict[str, Any], **kwargs: Any) -> Sponsor:
        return Sponsor(**data)


class SurveySchema(_Base):
    id = Slug("a survey id", required=True)
    title = Text("the survey's title", required=True)
    question = Text("the question put to respondents", required=True)
    dimensions = ListOf(
        Choice(ADKAR_DIMENSIONS, "an ADKAR dimension (" + ", ".join(ADKAR_DIMENSIONS) + ")"),
        "a non-empty list of ADKAR dimensions",
        min_items=1,
        unique=True,
        load_default=ADKAR_DIMENSIONS,
    )

    @post_load
    def make(self, data: dict[str, Any], **kwargs: Any) -> Survey:
        return Survey(**data)


class ActiveWindowSchema(_Base):
    start = DateTime("when the prompt switches on, a date-time or date", data_key="from",
                     required=True)
    until = DateTime("when the prompt switches off, a date-time or date", end_of_day=True,
                     required=True)

    @validates_schema(skip_on_field_errors=False)
    def check(self, data: dict[str, Any], **kwargs: Any) -> None:
        if _has(data, "start", "until") and data["until"] <= data["start"]:
            raise ValidationError(
                f"until ({_utc(data['until'])}) is not after from ({_utc(data['start'])}): "
                "the window must end after it starts",
                "until",
            )


class PromptSchema(_Base):
    id = Slug("a prompt id", required=True)
    title = Text("the prompt's title", required=True)
    filter = Group(TicketFilterSchema, "a ticket filter mapping such as {categories: [...]}",
                   required=True)
    text = Text("the guidance an agent sees on a matching ticket (shown as written)",
                required=True)
    active = Group(ActiveWindowSchema, "an active window {from, until}", required=True)
    units = _ids("unit", load_default=())

    @validates_schema(skip_on_field_errors=False)
    def check(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "filter" in data and data["filter"].is_empty():
            raise ValidationError(
                "the filter matches every ticket: give at least one of kinds, categories, "
                "services, groups, channels or priorities",
                "filter",
            )

    @post_load
    def make(self, data: dict[str, Any], **kwargs: Any) -> Prompt:
        active = data.pop("active")
        return Prompt(**data, active_from=active["start"], active_until=active["until"])


class UnmarkedFeedbackSchema(_Base):
    """``feedback:``: read ordinary comments for feedback (needs the ``insights`` extra)."""

    unmarked = Flag(load_default=False)
    threshold = Number("a confidence from 0 to 1, such as 0.6", minimum=0, maximum=1,
                       load_default=0.5)
    exclude_platforms = ListOf(Slug("a platform name"), "a list of platform names",
                               unique=True, load_default=())
    exclude_units = _ids("unit", load_default=())

    @post_load
    def make(self, data: dict[str, Any], **kwargs: Any) -> UnmarkedFeedback:
        return UnmarkedFeedback(
            enabled=data["unmarked"], threshold=data["threshold"],
            exclude_platforms=tuple(data["exclude_platforms"]),
            exclude_units=tuple(data["exclude_units"]))


class ProgramSchema(_Base):
    """The top level of a program file. Loads to a dict of fields and sections.

    Each section (``goals``, ``waves`` ...) loads to a list of model objects; use
    :func:`~itsm_change_sdk.schema.load_program_data` to get a checked
    :class:`~itsm_change_sdk.model.Program`.
    """

    id = Slug("the program id", required=True)
    title = Text("the program's title", required=True)
    description = Text("a description", allow_empty=True, allow_none=True, load_default="")
    sponsor = Text("the sponsor's name", allow_none=True, load_default=None)
    platforms = ListOf(Slug("a platform name"), "a non-empty list of platform names",
                       min_items=1, unique=True, required=True)
    timezone = TimeZone(load_default="UTC")
    feedback_marker = Marker(load_default="#feedback")
    feedback = Group(UnmarkedFeedbackSchema, "a mapping such as {unmarked: true, threshold: 0.6}",
                     load_default=UnmarkedFeedback)
    training_threshold = Number("a share from 0 to 1, such as 0.8", minimum=0, maximum=1,
                                load_default=0.8)
    min_sample = Integer("a whole number of tickets, such as 20", minimum=1,
                         load_default=20)
    gates = Choice(("advisory", "enforce"), load_default="advisory")
    silence_days = Integer("a whole number of days, such as 14", minimum=1, maximum=366,
                           load_default=14)
    goals = Section(GoalSchema, "goal", allow_none=True)
    waves = Section(WaveSchema, "wave", min_items=1, required=True)
    units = Section(UnitSchema, "unit", min_items=1, required=True)
    alliance = Section(AllianceMemberSchema, "alliance member", allow_none=True)
    sponsors = Section(SponsorSchema, "sponsor", allow_none=True)
    checkins = Section(CheckInSchema, "check-in", allow_none=True)
    training = Section(TrainingModuleSchema, "training module", allow_none=True)
    communications = Section(CommunicationEventSchema, "communication", allow_none=True)
    surveys = Section(SurveySchema, "survey", allow_none=True)
    prompts = Section(PromptSchema, "prompt", allow_none=True)


def _schemas_by_path(schema: type[Schema], prefix: str = "") -> dict[str, type[Schema]]:
    found: dict[str, type[Schema]] = {prefix: schema}
    for key, field in schema._declared_fields.items():
        if isinstance(field, Section | Group):
            found.update(_schemas_by_path(field.schema, join_path(prefix, field.data_key or key)))
    return found


SECTIONS: tuple[str, ...] = tuple(
    key for key, field in ProgramSchema._declared_fields.items() if isinstance(field, Section)
)
"""The top-level lists of items, in file order."""

SCHEMA_AT = _schemas_by_path(ProgramSchema)
"""The schema at each item path with the indices dropped (``goals.filter``), for hints."""
