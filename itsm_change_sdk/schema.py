"""Load a change program from a YAML or JSON file into the model objects.

The public entry points are :func:`load_program` (a file), :func:`load_program_text` (text
already in memory) and :func:`load_program_data` (a mapping already parsed). Every problem
raises :class:`~itsm_change_sdk.errors.ProgramError` listing **every** issue found, each with
its dotted field path (``training.1.objectives``), what is wrong and what is expected, and,
where known, its line in the file.

Reading is defensive: files above :data:`MAX_PROGRAM_BYTES` are refused before they are read,
binary and non-UTF-8 files are refused, YAML is read with a safe loader that refuses custom
tags and anchors/aliases (so an alias bomb cannot expand), and nesting is capped.

The file format is documented in ``docs/program-file.md``.
"""

from __future__ import annotations

import contextvars
import difflib
import json
import re
import stat
import string
from collections.abc import Collection, Iterator, Mapping
from datetime import UTC, date, datetime, time, tzinfo
from pathlib import Path
from typing import Any, ClassVar, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from marshmallow import RAISE, Schema, ValidationError, fields, post_load, validates_schema

from .errors import ProgramError, ProgramIssue
from .model import (
    ADKAR_DIMENSIONS,
    AllianceMember,
    Cadence,
    Channel,
    CommunicationEvent,
    Goal,
    Program,
    Prompt,
    Survey,
    TicketFilter,
    TrainingModule,
    Unit,
    Wave,
)

__all__ = [
    "COMPLETION_KINDS",
    "GOAL_PERIODS",
    "MAX_CADENCE_OCCURRENCES",
    "MAX_NESTING",
    "MAX_PROGRAM_BYTES",
    "TEMPLATE_PLACEHOLDERS",
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
]

MAX_PROGRAM_BYTES = 1024 * 1024
"""Program files above this size (1 MiB) are refused without being read."""

MAX_NESTING = 20
"""Deepest nesting of lists and mappings a program file may use."""

MAX_CADENCE_OCCURRENCES = 1000
"""A cadence (``every``) may produce at most this many occurrences."""

TEMPLATE_PLACEHOLDERS: tuple[str, ...] = (
    "program",
    "unit",
    "wave",
    "starts",
    "go_live",
    "occurrence",
    "survey",
    "marker",
    "module",
)
"""The ``{name}`` placeholders a communication template may use (prompt text has none)."""

COMPLETION_KINDS: tuple[str, ...] = ("attestation", "quiz", "ticket_closed")
GOAL_PERIODS: tuple[str, ...] = ("day", "week", "month")
ALLIANCE_AUDIENCE = "alliance"
"""The audience word for the management alliance; no unit may use it as its id."""

_SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_METRIC_RE = re.compile(r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DATE_ONLY_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SLUG_MAX = 64
_UNKNOWN = "\x00unknown field\x00"
_SCHEMA_KEY = "_schema"

_TZ: contextvars.ContextVar[tzinfo] = contextvars.ContextVar("program_tz", default=UTC)
"""The program's time zone while a program is being loaded (naive datetimes are read in it)."""


# --------------------------------------------------------------------------------------------
# Fields
# --------------------------------------------------------------------------------------------


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe(value: Any) -> str:
    """Name what was found, for messages such as 'expected a date, found a list'."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"true/false ({str(value).lower()})"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the text {_short(value)!r}" if value.strip() else "empty text"
    if isinstance(value, datetime):
        return f"the date-time {value.isoformat()}"
    if isinstance(value, date):
        return f"the date {value.isoformat()}"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, bytes):
        return "binary data"
    return f"a {type(value).__name__}"


class _Field(fields.Field):  # type: ignore[type-arg]
    """A field whose messages say what is expected."""

    what: ClassVar[str] = "a value"

    def __init__(self, what: str | None = None, **kwargs: Any) -> None:
        self.expected = what or self.what
        # marshmallow formats these with str.format: keep literal braces literal.
        literal = self.expected.replace("{", "{{").replace("}", "}}")
        messages: dict[str, Any] = {
            "required": f"required field is missing: expected {literal}",
            "null": f"must not be empty: expected {literal}",
        }
        super().__init__(error_messages=messages, **kwargs)

    def fail(self, value: Any, hint: str = "") -> ValidationError:
        return ValidationError(f"expected {self.expected}, found {_describe(value)}{hint}")


class Text(_Field):
    what = "text"

    def __init__(
        self, what: str | None = None, *, allow_empty: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(what, **kwargs)
        self.allow_empty = allow_empty

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if not isinstance(value, str):
            raise self.fail(value)
        text: str = value.strip()
        if not text and not self.allow_empty:
            raise ValidationError(f"must not be empty: expected {self.expected}")
        return text


class Label(_Field):
    """Text, or a whole number taken as text (a priority ``1``, a record number ``12345``)."""

    what = "text"

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str):
            raise self.fail(value)
        if not value.strip():
            raise ValidationError(f"must not be empty: expected {self.expected}")
        return value.strip()


class Slug(_Field):
    what = "an id"

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if not isinstance(value, str) or not _SLUG_RE.match(value) or len(value) > _SLUG_MAX:
            raise self.fail(
                value,
                f"; ids are slugs of lowercase letters, digits and single dashes, at most "
                f"{_SLUG_MAX} characters (e.g. 'wave-2')",
            )
        return value


class MetricName(_Field):
    what = "a metric kind"

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if not isinstance(value, str) or not _METRIC_RE.match(value) or len(value) > _SLUG_MAX:
            raise self.fail(
                value,
                "; metric kinds are lowercase letters, digits, underscores and dashes "
                "(e.g. 'channel_share')",
            )
        return value


class Choice(_Field):
    def __init__(self, choices: Collection[str], what: str | None = None, **kwargs: Any) -> None:
        self.choices = tuple(choices)
        super().__init__(what or "one of " + ", ".join(self.choices), **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if not isinstance(value, str) or value not in self.choices:
            raise self.fail(value)
        return value


class Number(_Field):
    what = "a number"

    def __init__(
        self,
        what: str | None = None,
        *,
        minimum: float | None = None,
        maximum: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(what, **kwargs)
        self.minimum = minimum
        self.maximum = maximum

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(value)
        number = float(value)
        if number != number or number in (float("inf"), float("-inf")):
            raise self.fail(value)
        if (self.minimum is not None and number < self.minimum) or (
            self.maximum is not None and number > self.maximum
        ):
            raise self.fail(value)
        return number


class Integer(_Field):
    what = "a whole number"

    def __init__(
        self,
        what: str | None = None,
        *,
        minimum: int | None = None,
        maximum: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(what, **kwargs)
        self.minimum = minimum
        self.maximum = maximum

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(value)
        if (self.minimum is not None and value < self.minimum) or (
            self.maximum is not None and value > self.maximum
        ):
            raise self.fail(value)
        return value


class Date(_Field):
    what = "a date such as 2027-01-11"

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> date:
        if isinstance(value, datetime):
            raise self.fail(value, "; give the day only, without a time")
        if isinstance(value, date):
            return value
        if isinstance(value, str) and _DATE_ONLY_RE.match(value.strip()):
            try:
                return date.fromisoformat(value.strip())
            except ValueError as exc:
                raise ValidationError(f"{value.strip()} is not a real date ({exc})") from None
        raise self.fail(value)


class DateTime(_Field):
    """A moment: a date-time (naive ones are read in the program's time zone) or a date.

    A date alone means the start of that day, or its end (23:59:59) for ``until`` fields.
    The result is timezone-aware UTC.
    """

    what = "a date-time such as 2027-01-11 09:00 (or a date)"

    def __init__(
        self, what: str | None = None, *, end_of_day: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(what, **kwargs)
        self.end_of_day = end_of_day

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        day_time = time(23, 59, 59) if self.end_of_day else time(0, 0)
        if isinstance(value, datetime):
            moment = value
        elif isinstance(value, date):
            moment = datetime.combine(value, day_time)
        elif isinstance(value, str) and value.strip():
            text = value.strip()
            try:
                if _DATE_ONLY_RE.match(text):
                    moment = datetime.combine(date.fromisoformat(text), day_time)
                else:
                    moment = datetime.fromisoformat(text)
            except ValueError:
                raise self.fail(value, " (ISO 8601, e.g. 2027-01-11T09:00 or 2027-01-11)") from None
        else:
            raise self.fail(value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=_TZ.get())
        return moment.astimezone(UTC)


class TimeZone(_Field):
    what = "an IANA time zone name such as Europe/London or UTC"

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if _zone(value) is None:
            raise self.fail(value)
        return str(value)


def _zone(value: Any) -> tzinfo | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return ZoneInfo(value.strip())
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


class Email(_Field):
    what = "an email address such as dana.reyes@example.com"

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if not isinstance(value, str) or not _EMAIL_RE.match(value.strip()):
            raise self.fail(value)
        return value.strip()


class Marker(_Field):
    what = "a short word without spaces, such as #feedback"

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if not isinstance(value, str) or not value or len(value) > 32 or value != value.split()[0]:
            raise self.fail(value)
        return value


class Template(Text):
    """Text that may use the ``{name}`` placeholders in :data:`TEMPLATE_PLACEHOLDERS`."""

    what = "message text (placeholders such as {program} allowed)"

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        problems = template_problems(text)
        if problems:
            raise ValidationError(problems)
        return text


def _placeholder_list() -> str:
    return ", ".join("{" + name + "}" for name in TEMPLATE_PLACEHOLDERS)


def template_problems(text: str) -> list[str]:
    """What is wrong with a template's placeholders (empty when nothing is)."""
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        return [
            f"the template's braces do not balance ({exc}); placeholders look like {{unit}}, "
            "and a literal brace is written {{ or }}"
        ]
    problems = []
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in TEMPLATE_PLACEHOLDERS:
            close = difflib.get_close_matches(name, TEMPLATE_PLACEHOLDERS, n=1)
            hint = f" (did you mean {{{close[0]}}}?)" if close else ""
            shown = "{" + name + "}"
            problems.append(
                f"unknown placeholder {shown}{hint}; placeholders are: {_placeholder_list()}"
            )
        elif spec or conversion:
            problems.append(
                f"placeholder {{{name}}} takes no format or conversion; write it as {{{name}}}"
            )
    return problems


class ListOf(_Field):
    """A list whose items are loaded by ``inner``; errors are reported per item."""

    def __init__(
        self,
        inner: fields.Field,  # type: ignore[type-arg]
        what: str,
        *,
        min_items: int = 0,
        unique: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(what, **kwargs)
        self.inner = inner
        self.min_items = min_items
        self.unique = unique

    def _deserialize(
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> tuple[Any, ...]:
        if not isinstance(value, list | tuple):
            raise self.fail(value, "; write a list such as [a, b] or one '- item' per line")
        out: list[Any] = []
        errors: dict[int, Any] = {}
        for index, item in enumerate(value):
            try:
                out.append(self.inner.deserialize(item))
            except ValidationError as exc:
                errors[index] = exc.messages
        if errors:
            raise ValidationError(errors)
        if len(out) < self.min_items:
            raise ValidationError(f"must not be empty: expected {self.expected}")
        if self.unique:
            seen: dict[Any, int] = {}
            for index, item in enumerate(out):
                if item in seen:
                    errors[index] = [f"{item!r} is listed twice (also item {seen[item]})"]
                seen.setdefault(item, index)
            if errors:
                raise ValidationError(errors)
        return tuple(out)


class Params(_Field):
    what = "a mapping of metric settings, such as {channel: portal}"

    def _deserialize(
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(value)
        bad = [key for key in value if not isinstance(key, str)]
        if bad:
            raise ValidationError(f"setting names must be text, found {_describe(bad[0])}")
        return dict(value)


class Records(_Field):
    what = "a mapping of platform to record number, such as {sandbox: CHG0001001}"

    def _deserialize(
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> dict[str, str]:
        if not isinstance(value, Mapping):
            raise self.fail(value)
        out: dict[str, str] = {}
        errors: dict[str, Any] = {}
        for key, number in value.items():
            try:
                name = str(Slug("a platform name").deserialize(key))
                out[name] = str(Label("a record number such as CHG0001001").deserialize(number))
            except ValidationError as exc:
                errors[str(key)] = exc.messages
        if errors:
            raise ValidationError(errors)
        return out


class Group(_Field):
    """A nested mapping loaded by its own schema."""

    def __init__(self, schema: type[Schema], what: str, **kwargs: Any) -> None:
        super().__init__(what, **kwargs)
        self.schema = schema

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, Mapping):
            raise self.fail(value)
        try:
            return self.schema().load(value)
        except ValidationError as exc:
            raise ValidationError(exc.messages) from None


class _Loaded(list):  # type: ignore[type-arg]
    """The items of a section that loaded cleanly, with their index in the file."""

    def __init__(self) -> None:
        super().__init__()
        self.indices: list[int] = []


class Section(_Field):
    """A top-level list of items; collects every item's errors and keeps the good items."""

    def __init__(
        self, schema: type[Schema], what: str, *, min_items: int = 0, **kwargs: Any
    ) -> None:
        if not kwargs.get("required"):
            kwargs.setdefault("load_default", _Loaded)
        super().__init__(f"a list of {what}s", **kwargs)
        self.schema = schema
        self.item = what
        self.min_items = min_items

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> _Loaded:
        if not isinstance(value, list | tuple):
            raise self.fail(value, f"; write one '- id: ...' {self.item} per item")
        if len(value) < self.min_items:
            raise ValidationError(f"must not be empty: list at least one {self.item}")
        loaded = _Loaded()
        errors: dict[int, Any] = {}
        for index, item in enumerate(value):
            if not isinstance(item, Mapping):
                errors[index] = [
                    f"expected a mapping describing a {self.item} (id: ..., title: ...), "
                    f"found {_describe(item)}"
                ]
                continue
            try:
                loaded.append(self.schema().load(item))
                loaded.indices.append(index)
            except ValidationError as exc:
                errors[index] = exc.messages
        if errors:
            raise ValidationError(errors, valid_data=loaded)
        return loaded


# --------------------------------------------------------------------------------------------
# Schemas
# --------------------------------------------------------------------------------------------


class _Base(Schema):
    class Meta:
        unknown = RAISE

    error_messages: ClassVar[dict[str, str]] = {  # type: ignore[misc]
        "unknown": _UNKNOWN,
        "type": "expected a mapping of fields (name: value)",
    }


def _ids(what: str, **kwargs: Any) -> ListOf:
    return ListOf(Slug(f"a {what} id"), f"a list of {what} ids", unique=True, **kwargs)


def _labels(what: str) -> ListOf:
    return ListOf(Label(what), f"a list of {what}s", unique=True, load_default=())


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


class WaveSchema(_Base):
    id = Slug("a wave id", required=True)
    title = Text("the wave's title", required=True)
    starts = Date(required=True)
    go_live = Date(required=True)

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
        return Wave(**data)


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
                f"until ({data['until']:%Y-%m-%d %H:%M} UTC) is before from "
                f"({data['start']:%Y-%m-%d %H:%M} UTC): the cadence must end after it starts",
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
    channel = Choice(tuple(c.value for c in Channel), required=True)
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
            errors.setdefault(_SCHEMA_KEY, []).append(
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
            and "survey" in _placeholder_names(data["template"])
        ):
            errors.setdefault("template", []).append(
                "the template uses {survey} but the communication has no survey: "
                "attach one with 'survey: <id>' or remove the placeholder"
            )
        if _has(data, "record", "channel") and data["record"] and data["channel"] != "ticket_note":
            errors.setdefault("record", []).append(
                f"record is used only by the ticket_note channel (this channel is "
                f"'{data['channel']}'); remove it or change the channel"
            )
        if errors:
            raise ValidationError(errors)

    @post_load
    def make(self, data: dict[str, Any], **kwargs: Any) -> CommunicationEvent:
        every = data.pop("every")
        return CommunicationEvent(**{**data, "channel": Channel(data["channel"]),
                                     "cadence": every})


def _has(data: Mapping[str, Any], *names: str) -> bool:
    """Whether every named field loaded (a field with an error is absent)."""
    return all(name in data for name in names)


def _placeholder_names(text: str) -> set[str]:
    try:
        return {name for _, name, _, _ in string.Formatter().parse(text) if name}
    except ValueError:
        return set()


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
                f"until ({data['until']:%Y-%m-%d %H:%M} UTC) is not after from "
                f"({data['start']:%Y-%m-%d %H:%M} UTC): the window must end after it starts",
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


class ProgramSchema(_Base):
    """The top level of a program file. Loads to a dict of fields and sections.

    Each section (``goals``, ``waves`` ...) loads to a list of model objects; use
    :func:`load_program_data` to get a checked :class:`~itsm_change_sdk.model.Program`.
    """

    id = Slug("the program id", required=True)
    title = Text("the program's title", required=True)
    description = Text("a description", allow_empty=True, allow_none=True, load_default="")
    sponsor = Text("the sponsor's name", allow_none=True, load_default=None)
    platforms = ListOf(Slug("a platform name"), "a non-empty list of platform names",
                       min_items=1, unique=True, required=True)
    timezone = TimeZone(load_default="UTC")
    feedback_marker = Marker(load_default="#feedback")
    training_threshold = Number("a share from 0 to 1, such as 0.8", minimum=0, maximum=1,
                                load_default=0.8)
    goals = Section(GoalSchema, "goal", allow_none=True)
    waves = Section(WaveSchema, "wave", min_items=1, required=True)
    units = Section(UnitSchema, "unit", min_items=1, required=True)
    alliance = Section(AllianceMemberSchema, "alliance member", allow_none=True)
    training = Section(TrainingModuleSchema, "training module", allow_none=True)
    communications = Section(CommunicationEventSchema, "communication", allow_none=True)
    surveys = Section(SurveySchema, "survey", allow_none=True)
    prompts = Section(PromptSchema, "prompt", allow_none=True)


SECTIONS: tuple[str, ...] = (
    "goals", "waves", "units", "alliance", "training", "communications", "surveys", "prompts",
)

_SCHEMA_AT: dict[str, type[Schema]] = {
    "": ProgramSchema,
    "goals": GoalSchema,
    "goals.filter": TicketFilterSchema,
    "waves": WaveSchema,
    "units": UnitSchema,
    "alliance": AllianceMemberSchema,
    "training": TrainingModuleSchema,
    "communications": CommunicationEventSchema,
    "communications.every": CadenceSchema,
    "surveys": SurveySchema,
    "prompts": PromptSchema,
    "prompts.filter": TicketFilterSchema,
    "prompts.active": ActiveWindowSchema,
}


# --------------------------------------------------------------------------------------------
# Errors: flattening marshmallow's messages into issues
# --------------------------------------------------------------------------------------------


def _join(prefix: str, part: str) -> str:
    if not part:
        return prefix
    return f"{prefix}.{part}" if prefix else part


def _flatten(messages: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            part = "" if key == _SCHEMA_KEY else str(key)
            yield from _flatten(value, _join(prefix, part))
    elif isinstance(messages, list | tuple):
        for message in messages:
            yield from _flatten(message, prefix)
    elif messages == _UNKNOWN:
        yield prefix, _unknown_message(prefix)
    else:
        yield prefix, str(messages)


def _unknown_message(path: str) -> str:
    parts = path.split(".")
    name = parts[-1]
    where = ".".join(p for p in parts[:-1] if not p.isdigit())
    schema = _SCHEMA_AT.get(where)
    if schema is None:
        return f"unknown field '{name}'"
    known = [f.data_key or key for key, f in schema._declared_fields.items()]
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown field '{name}'{hint}; expected one of: {', '.join(known)}"


# --------------------------------------------------------------------------------------------
# Checks across items: ids, references, order
# --------------------------------------------------------------------------------------------


def _raw_items(raw: Mapping[str, Any], section: str) -> list[tuple[int, Mapping[str, Any]]]:
    items = raw.get(section)
    if not isinstance(items, list | tuple):
        return []
    return [(i, item) for i, item in enumerate(items) if isinstance(item, Mapping)]


def _raw_ids(raw: Mapping[str, Any], section: str) -> set[str]:
    return {
        item["id"] for _, item in _raw_items(raw, section) if isinstance(item.get("id"), str)
    }


def _loaded(data: Mapping[str, Any], section: str) -> list[tuple[int, Any]]:
    items = data.get(section)
    if not isinstance(items, _Loaded):
        return []
    return list(zip(items.indices, items, strict=True))


def _known(ids: Collection[str], what: str) -> str:
    if not ids:
        return f"the program has no {what}s"
    return f"{what}s are: " + ", ".join(sorted(ids))


def _strings(value: Any) -> list[tuple[int, str]]:
    """The text items of a list, with their position (other items are the schema's job)."""
    if not isinstance(value, list | tuple):
        return []
    return [(pos, item) for pos, item in enumerate(value) if isinstance(item, str)]


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _cross_checks(
    raw: Mapping[str, Any],
    data: Mapping[str, Any],
    metric_kinds: Collection[str] | None,
) -> list[tuple[str, str]]:
    """Checks across items: unique ids, references, wave order.

    References are read from the raw items, so that an item with another problem still has
    its references checked; a value of the wrong type is left to the schema's message.
    """
    issues: list[tuple[str, str]] = []

    def issue(path: str, message: str) -> None:
        issues.append((path, message))

    # Ids unique within each section.
    for section in SECTIONS:
        first: dict[str, int] = {}
        for index, item in _raw_items(raw, section):
            ident = _text(item.get("id"))
            if ident is None:
                continue
            if ident in first:
                issue(
                    f"{section}.{index}.id",
                    f"duplicate id '{ident}': already used by {section}.{first[ident]}; "
                    f"ids must be unique within {section}",
                )
            first.setdefault(ident, index)

    wave_ids = _raw_ids(raw, "waves")
    unit_ids = _raw_ids(raw, "units")
    survey_ids = _raw_ids(raw, "surveys")
    raw_platforms = raw.get("platforms")
    platforms = {name for _, name in _strings(raw_platforms)}
    platforms_known = bool(platforms)  # else the platforms field has its own issue

    def check_refs(path: str, value: Any, known: set[str], what: str) -> None:
        for pos, ref in _strings(value):
            if ref not in known:
                issue(f"{path}.{pos}", f"unknown {what} '{ref}'; {_known(known, what)}")

    def check_platform(path: str, name: Any) -> None:
        if isinstance(name, str) and platforms_known and name not in platforms:
            issue(
                path,
                f"platform '{name}' is not listed in platforms "
                f"({', '.join(sorted(platforms)) or 'none'}); add it there or fix the name",
            )

    def check_filter(path: str, value: Any) -> None:
        if isinstance(value, Mapping):
            check_platform(f"{path}.platform", value.get("platform"))

    unit_platform: dict[str, str] = {}
    for index, item in _raw_items(raw, "units"):
        path = f"units.{index}"
        if item.get("id") == ALLIANCE_AUDIENCE:
            issue(
                f"{path}.id",
                "the id 'alliance' is reserved for the management alliance in audiences; "
                "choose another unit id",
            )
        wave = _text(item.get("wave"))
        if wave is not None and wave not in wave_ids:
            issue(f"{path}.wave", f"unknown wave '{wave}'; {_known(wave_ids, 'wave')}")
        check_platform(f"{path}.platform", item.get("platform"))
        ident, platform = _text(item.get("id")), _text(item.get("platform"))
        if ident is not None and platform is not None:
            unit_platform.setdefault(ident, platform)

    previous: Wave | None = None
    for index, wave_obj in _loaded(data, "waves"):
        if previous is not None and wave_obj.starts <= previous.starts:
            issue(
                f"waves.{index}.starts",
                f"waves must be listed in start order (the first is the pilot): "
                f"'{wave_obj.id}' starts {wave_obj.starts}, not after '{previous.id}' "
                f"({previous.starts})",
            )
        previous = wave_obj

    for index, item in _raw_items(raw, "goals"):
        path = f"goals.{index}"
        metric = _text(item.get("metric"))
        if metric is not None and metric_kinds is not None and metric not in metric_kinds:
            known = ", ".join(sorted(metric_kinds)) or "none"
            issue(f"{path}.metric", f"unknown metric '{metric}'; metrics are: {known}")
        check_refs(f"{path}.units", item.get("units"), unit_ids, "unit")
        check_filter(f"{path}.filter", item.get("filter"))

    alliance_units: set[str] = set()
    alliance_items = _raw_items(raw, "alliance")
    for index, item in alliance_items:
        alliance_units.update(ref for _, ref in _strings(item.get("units")))
        check_refs(f"alliance.{index}.units", item.get("units"), unit_ids, "unit")
        check_refs(f"alliance.{index}.signs_off", item.get("signs_off"), wave_ids, "wave")

    for index, item in _raw_items(raw, "training"):
        check_refs(f"training.{index}.audience", item.get("audience"), unit_ids, "unit")

    for index, item in _raw_items(raw, "communications"):
        path = f"communications.{index}"
        audience_units: set[str] = set()
        for pos, target in _strings(item.get("audience")):
            if target == ALLIANCE_AUDIENCE:
                if not alliance_items:
                    issue(
                        f"{path}.audience.{pos}",
                        "audience 'alliance' but the program lists no alliance members",
                    )
                audience_units.update(alliance_units)
            elif target not in unit_ids:
                issue(
                    f"{path}.audience.{pos}",
                    f"unknown audience '{target}': expected a unit id or 'alliance'; "
                    f"{_known(unit_ids, 'unit')}",
                )
            else:
                audience_units.add(target)
        survey = _text(item.get("survey"))
        if survey is not None and survey not in survey_ids:
            issue(f"{path}.survey", f"unknown survey '{survey}'; {_known(survey_ids, 'survey')}")
        record = item.get("record")
        record = record if isinstance(record, Mapping) else None
        for name in record or ():
            check_platform(f"{path}.record.{name}", name)
        if item.get("channel") == Channel.TICKET_NOTE.value and (
            record is not None or item.get("record") is None
        ):
            needed = {unit_platform[u] for u in audience_units if u in unit_platform}
            missing = sorted(needed - set(record or ()))
            if missing:
                example = ", ".join(f"{name}: CHG0001001" for name in missing)
                issue(
                    f"{path}.record",
                    f"a ticket_note needs the record to note on for each platform its audience "
                    f"uses; missing: {', '.join(missing)} (e.g. record: {{{example}}})",
                )

    for index, item in _raw_items(raw, "prompts"):
        check_refs(f"prompts.{index}.units", item.get("units"), unit_ids, "unit")
        check_filter(f"prompts.{index}.filter", item.get("filter"))

    return issues


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def load_program_data(
    data: Any,
    *,
    source: str = "<data>",
    metric_kinds: Collection[str] | None = None,
    lines: Mapping[str, int] | None = None,
) -> Program:
    """Check an already-parsed program mapping and build the :class:`Program`.

    Dates and datetimes may be strings or ``date``/``datetime`` objects. ``lines`` maps
    dotted field paths to line numbers for the issues raised.
    """
    line_map = lines or {}
    if not isinstance(data, Mapping):
        raise ProgramError(
            source,
            [ProgramIssue("", f"expected a mapping of program fields (id: ..., title: ...) at "
                              f"the top level, found {_describe(data)}", 1 if lines else None)],
        )
    zone = _zone(data.get("timezone", "UTC")) or UTC
    token = _TZ.set(zone)
    try:
        try:
            loaded: Mapping[str, Any] = ProgramSchema().load(data)
            found: list[tuple[str, str]] = []
        except ValidationError as exc:
            loaded = exc.valid_data if isinstance(exc.valid_data, Mapping) else {}
            found = list(_flatten(exc.messages))
    finally:
        _TZ.reset(token)
    found.extend(_cross_checks(data, loaded, metric_kinds))
    if found:
        raise ProgramError(source, _issues(found, line_map))

    def section(name: str) -> tuple[Any, ...]:
        return tuple(loaded.get(name) or ())

    return Program(
        id=loaded["id"],
        title=loaded["title"],
        platforms=tuple(loaded["platforms"]),
        goals=section("goals"),
        waves=section("waves"),
        units=section("units"),
        alliance=section("alliance"),
        training=section("training"),
        communications=section("communications"),
        surveys=section("surveys"),
        prompts=section("prompts"),
        description=loaded.get("description") or "",
        sponsor=loaded.get("sponsor"),
        feedback_marker=loaded["feedback_marker"],
        training_threshold=loaded["training_threshold"],
        source=source,
    )


def _line_for(path: str, lines: Mapping[str, int]) -> int | None:
    parts = path.split(".") if path else []
    while parts:
        line = lines.get(".".join(parts))
        if line is not None:
            return line
        parts.pop()
    return None


def _issues(found: list[tuple[str, str]], lines: Mapping[str, int]) -> list[ProgramIssue]:
    unique = list(dict.fromkeys(found))
    issues = [ProgramIssue(path, message, _line_for(path, lines)) for path, message in unique]
    return sorted(issues, key=lambda i: (i.line or 0, i.path))


def load_program_text(
    text: str,
    *,
    source: str = "<string>",
    metric_kinds: Collection[str] | None = None,
) -> Program:
    """Load a program from YAML or JSON text (JSON when ``source`` ends in ``.json``)."""
    if len(text) > MAX_PROGRAM_BYTES or len(text.encode("utf-8", "replace")) > MAX_PROGRAM_BYTES:
        raise ProgramError(source, [_too_big_issue(None)])
    if "\x00" in text:
        raise ProgramError(source, [_nul_issue(text.index("\x00"), text)])
    is_json = source.lower().endswith(".json")
    data, lines, issues = _parse_json(text) if is_json else _parse_yaml(text)
    if issues:
        raise ProgramError(source, issues)
    if data is None:
        raise ProgramError(
            source,
            [ProgramIssue("", "the file is empty: expected a program mapping with at least "
                              "id, title, platforms, waves and units")],
        )
    program = load_program_data(data, source=source, metric_kinds=metric_kinds, lines=lines)
    return program


def load_program(
    path: str | Path,
    *,
    metric_kinds: Collection[str] | None = None,
) -> Program:
    """Load and check a program file (``.yaml``/``.yml``, or ``.json``)."""
    file = str(path)
    text = _read(Path(path), file)
    return load_program_text(text, source=file, metric_kinds=metric_kinds)


def _too_big_issue(size: int | None) -> ProgramIssue:
    found = f"the file is {size} bytes; " if size is not None else ""
    return ProgramIssue(
        "",
        f"{found}program files are limited to {MAX_PROGRAM_BYTES} bytes (1 MiB): "
        "is this the right file?",
    )


def _nul_issue(offset: int, content: str | bytes) -> ProgramIssue:
    newline = "\n" if isinstance(content, str) else b"\n"
    line = content[:offset].count(newline) + 1  # type: ignore[arg-type]
    return ProgramIssue(
        "",
        "this is a binary file (it contains NUL bytes): a program file is UTF-8 text, "
        "YAML or JSON",
        line,
    )


def _read(path: Path, file: str) -> str:
    def fail(message: str) -> ProgramError:
        return ProgramError(file, [ProgramIssue("", message)])

    try:
        info = path.stat()
    except FileNotFoundError:
        raise fail("no such file: check the path to the program file") from None
    except OSError as exc:
        raise fail(f"cannot read the file: {exc.strerror or exc}") from None
    if stat.S_ISDIR(info.st_mode):
        raise fail("this is a directory: give the path of a program file (.yaml, .yml or .json)")
    if not stat.S_ISREG(info.st_mode):
        raise fail("this is not a regular file: give the path of a program file")
    if info.st_size > MAX_PROGRAM_BYTES:
        raise ProgramError(file, [_too_big_issue(info.st_size)])
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_PROGRAM_BYTES + 1)
    except OSError as exc:
        raise fail(f"cannot read the file: {exc.strerror or exc}") from None
    if len(raw) > MAX_PROGRAM_BYTES:
        raise ProgramError(file, [_too_big_issue(None)])
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise fail("the file is encoded as UTF-16: save it as UTF-8")
    if b"\x00" in raw:
        raise ProgramError(file, [_nul_issue(raw.index(b"\x00"), raw)])
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ProgramError(
            file,
            [ProgramIssue("", f"the file is not UTF-8 text (byte 0x{raw[exc.start]:02x} cannot "
                              "be decoded): save it as UTF-8", line)],
        ) from None


# --------------------------------------------------------------------------------------------
# YAML and JSON
# --------------------------------------------------------------------------------------------


class _Refused(yaml.MarkedYAMLError):
    """Something the program loader does not accept (anchors, tags, deep nesting)."""


_REMOVED_TAGS = {
    "tag:yaml.org,2002:timestamp",  # dates stay strings; the schema reads them
    "tag:yaml.org,2002:binary",
    "tag:yaml.org,2002:set",
    "tag:yaml.org,2002:omap",
    "tag:yaml.org,2002:pairs",
}


class _ProgramLoader(yaml.SafeLoader):
    """A safe loader that refuses anchors, aliases, custom tags and deep nesting."""

    depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise _Refused(None, None, _ANCHORS_REFUSED, event.start_mark)
        self.depth += 1
        try:
            if self.depth > MAX_NESTING:
                raise _Refused(
                    None, None,
                    f"lists and mappings are nested more than {MAX_NESTING} levels deep",
                    event.start_mark,
                )
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_undefined(self, node: yaml.Node) -> Any:
        tag = str(node.tag).replace("tag:yaml.org,2002:", "!!")
        raise _Refused(
            None, None,
            f"the YAML tag {tag} is not allowed: program files hold plain text, numbers, "
            "lists and mappings",
            node.start_mark,
        )

    def construct_yaml_int(self, node: yaml.Node) -> int:
        try:
            return super().construct_yaml_int(node)  # type: ignore[arg-type]
        except ValueError:
            raise _Refused(None, None, f"the number {_short(str(node.value))!r} cannot be read",
                           node.start_mark) from None


_ProgramLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in _REMOVED_TAGS]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_ProgramLoader.yaml_constructors = {
    tag: constructor
    for tag, constructor in yaml.SafeLoader.yaml_constructors.items()
    if tag not in _REMOVED_TAGS
}
_ProgramLoader.add_constructor(None, _ProgramLoader.construct_undefined)
_ProgramLoader.add_constructor("tag:yaml.org,2002:int", _ProgramLoader.construct_yaml_int)


def _yaml_error_issue(exc: yaml.YAMLError, text: str) -> ProgramIssue:
    if isinstance(exc, _Refused):
        mark = exc.problem_mark
        return ProgramIssue("", str(exc.problem), mark.line + 1 if mark else None)
    if isinstance(exc, yaml.reader.ReaderError):
        line = text[: exc.position].count("\n") + 1
        return ProgramIssue(
            "", f"the file contains a character YAML does not allow (#x{exc.character:04x})"
            if isinstance(exc.character, int) else "the file contains an unreadable character",
            line,
        )
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or "unreadable YAML"
        if "expected a single document" in str(exc.context or ""):
            problem = "a program file holds one YAML document, but this one has another (---)"
        elif exc.context:
            started = exc.context_mark
            if started is not None and mark is not None and started.line != mark.line:
                problem = f"{exc.context} (started on line {started.line + 1}), {problem}"
            else:
                problem = f"{exc.context}, {problem}"
        return ProgramIssue(
            "", f"the file is not valid YAML: {problem}", mark.line + 1 if mark else None
        )
    return ProgramIssue("", f"the file is not valid YAML: {exc}")


_ANCHORS_REFUSED = (
    "YAML anchors and aliases (&name, *name) are not allowed in program files: "
    "write each value out in full"
)
_CSafeLoader: type[Any] | None = getattr(yaml, "CSafeLoader", None)

if _CSafeLoader is not None:

    class _CProgramLoader(_CSafeLoader):  # type: ignore[misc,valid-type]
        """libyaml's parser with the program loader's resolvers (used to compose only)."""

    _CProgramLoader.yaml_implicit_resolvers = _ProgramLoader.yaml_implicit_resolvers


def _check_events(text: str) -> None:
    """With libyaml: refuse anchors, aliases and deep nesting before anything is composed."""
    depth = 0
    for event in yaml.parse(text, Loader=cast(Any, _CSafeLoader)):
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise _Refused(None, None, _ANCHORS_REFUSED, cast(Any, event.start_mark))
        if isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent):
            depth += 1
            if depth > MAX_NESTING:
                raise _Refused(
                    None, None,
                    f"lists and mappings are nested more than {MAX_NESTING} levels deep",
                    cast(Any, event.start_mark),
                )
        elif isinstance(event, yaml.SequenceEndEvent | yaml.MappingEndEvent):
            depth -= 1


def _compose(text: str) -> yaml.Node | None:
    if _CSafeLoader is not None:
        # libyaml is several times faster on large files; the events are checked first,
        # so the composer never sees an alias.
        _check_events(text)
        fast = _CProgramLoader(text)
        try:
            return fast.get_single_node()  # type: ignore[no-any-return]
        finally:
            fast.dispose()
    loader = _ProgramLoader(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


def _construct(text: str, node: yaml.Node) -> Any:
    loader = _ProgramLoader(text)
    try:
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _parse_yaml(text: str) -> tuple[Any, dict[str, int], list[ProgramIssue]]:
    try:
        node = _compose(text)
        if node is None:
            return None, {}, []
        data = _construct(text, node)
    except yaml.YAMLError as exc:
        return None, {}, [_yaml_error_issue(exc, text)]
    except RecursionError:
        return None, {}, [ProgramIssue("", "the file is nested too deeply to read")]
    lines: dict[str, int] = {}
    duplicates: list[ProgramIssue] = []
    _map_lines(node, "", lines, duplicates)
    return data, lines, duplicates


def _map_lines(
    node: yaml.Node, prefix: str, lines: dict[str, int], duplicates: list[ProgramIssue]
) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            key = str(key_node.value)
            path = _join(prefix, key)
            line = key_node.start_mark.line + 1
            if key in seen:
                duplicates.append(
                    ProgramIssue(
                        path,
                        f"'{key}' appears twice in the same mapping (first on line "
                        f"{seen[key]}); keep one",
                        line,
                    )
                )
            seen.setdefault(key, line)
            lines[path] = line
            _map_lines(value_node, path, lines, duplicates)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            path = _join(prefix, str(index))
            lines[path] = item.start_mark.line + 1
            _map_lines(item, path, lines, duplicates)


def _parse_json(text: str) -> tuple[Any, dict[str, int], list[ProgramIssue]]:
    if not text.strip():
        return None, {}, []

    def refuse_constant(name: str) -> Any:
        raise ValueError(f"{name} is not a number JSON allows")

    try:
        data = json.loads(text, parse_constant=refuse_constant)
    except json.JSONDecodeError as exc:
        return None, {}, [ProgramIssue("", f"the file is not valid JSON: {exc.msg}", exc.lineno)]
    except (ValueError, RecursionError) as exc:
        return None, {}, [ProgramIssue("", f"the file is not valid JSON: {exc}")]
    # Lines: JSON (without tabs, which JSON allows only as whitespace) is also YAML, and the
    # YAML composer knows where every node starts. Best effort: no lines if that fails.
    lines: dict[str, int] = {}
    duplicates: list[ProgramIssue] = []
    try:
        node = _compose(text.replace("\t", " "))
    except (yaml.YAMLError, RecursionError):
        node = None
    if node is not None:
        _map_lines(node, "", lines, duplicates)
    return data, lines, duplicates
