"""Custom marshmallow fields whose messages say what was expected and what was found."""

from __future__ import annotations

import contextvars
import difflib
import re
import string
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, date, datetime, time, tzinfo
from typing import Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marshmallow import Schema, ValidationError, fields

from .messages import describe

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

_SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_METRIC_RE = re.compile(r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DATE_ONLY_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SLUG_MAX = 64

program_tz: contextvars.ContextVar[tzinfo] = contextvars.ContextVar("program_tz", default=UTC)
"""The program's time zone while a program is being loaded (naive datetimes are read in it)."""


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
        return ValidationError(f"expected {self.expected}, found {describe(value)}{hint}")

    def empty(self) -> ValidationError:
        return ValidationError(f"must not be empty: expected {self.expected}")


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
            raise self.empty()
        return text


class Label(Text):
    """Text, or a whole number taken as text (a priority ``1``, a record number ``12345``)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return super()._deserialize(value, attr, data, **kwargs)


class _Pattern(_Field):
    """Text matching ``pattern``, at most :data:`_SLUG_MAX` characters; ``hint`` shows how."""

    pattern: ClassVar[re.Pattern[str]]
    hint: ClassVar[str]

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if not isinstance(value, str) or not self.pattern.match(value) or len(value) > _SLUG_MAX:
            raise self.fail(value, self.hint)
        return value


class Slug(_Pattern):
    what = "an id"
    pattern = _SLUG_RE
    hint = (
        f"; ids are slugs of lowercase letters, digits and single dashes, at most "
        f"{_SLUG_MAX} characters (e.g. 'wave-2')"
    )


class ChannelName(_Pattern):
    what = "a channel"
    pattern = _METRIC_RE
    hint = (
        "; channels are lowercase letters, digits, underscores and dashes "
        "(e.g. 'announcement', 'task', 'ticket_note')"
    )


class MetricName(_Pattern):
    what = "a metric kind"
    pattern = _METRIC_RE
    hint = (
        "; metric kinds are lowercase letters, digits, underscores and dashes "
        "(e.g. 'channel_share')"
    )


class Choice(_Field):
    def __init__(self, choices: Collection[str], what: str | None = None, **kwargs: Any) -> None:
        self.choices = tuple(choices)
        super().__init__(what or "one of " + ", ".join(self.choices), **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if not isinstance(value, str) or value not in self.choices:
            raise self.fail(value)
        return value


class _Bounded(_Field):
    """A number with optional inclusive bounds."""

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

    def in_range(self, number: float) -> bool:
        return (self.minimum is None or number >= self.minimum) and (
            self.maximum is None or number <= self.maximum
        )


class Number(_Bounded):
    what = "a number"

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(value)
        number = float(value)
        if number != number or number in (float("inf"), float("-inf")):
            raise self.fail(value)
        if not self.in_range(number):
            raise self.fail(value)
        return number


class Integer(_Bounded):
    what = "a whole number"

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not self.in_range(value):
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
            moment = moment.replace(tzinfo=program_tz.get())
        try:
            return moment.astimezone(UTC)
        except (OverflowError, ValueError):
            # Python's datetimes end at years 1 and 9999: a moment at either edge can leave
            # that range once its offset is applied.
            raise ValidationError(
                f"{describe(value)} falls outside the years 1 to 9999 once converted to UTC; "
                "give a date in the program's calendar"
            ) from None


def zone(value: Any) -> tzinfo | None:
    """The time zone an IANA name stands for, or ``None`` if it is not one."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return ZoneInfo(value.strip())
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


class TimeZone(_Field):
    what = "an IANA time zone name such as Europe/London or UTC"

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if zone(value) is None:
            raise self.fail(value)
        return str(value)


class Email(_Field):
    what = "an email address such as dana.reyes@example.com"

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if not isinstance(value, str) or not _EMAIL_RE.match(value.strip()):
            raise self.fail(value)
        return value.strip()


class Flag(_Field):
    what = "true or false"

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.fail(value)
        return value


class Marker(_Field):
    what = "a short word without spaces, such as #feedback"

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if not isinstance(value, str) or not value or len(value) > 32 or value != value.split()[0]:
            raise self.fail(value)
        return value


def _placeholders(text: str) -> list[tuple[str, str | None, str | None]]:
    """``(name, format spec, conversion)`` of each placeholder; ValueError if braces are off."""
    return [
        (name, spec, conversion)
        for _literal, name, spec, conversion in string.Formatter().parse(text)
        if name is not None
    ]


def placeholder_names(text: str) -> set[str]:
    """The placeholders a template uses (none when its braces do not parse)."""
    try:
        return {name for name, _, _ in _placeholders(text) if name}
    except ValueError:
        return set()


def template_problems(text: str) -> list[str]:
    """What is wrong with a template's placeholders (empty when nothing is)."""
    try:
        found = _placeholders(text)
    except ValueError as exc:
        return [
            f"the template's braces do not balance ({exc}); placeholders look like {{unit}}, "
            "and a literal brace is written {{ or }}"
        ]
    known = ", ".join("{" + name + "}" for name in TEMPLATE_PLACEHOLDERS)
    problems = []
    for name, spec, conversion in found:
        if name not in TEMPLATE_PLACEHOLDERS:
            close = difflib.get_close_matches(name, TEMPLATE_PLACEHOLDERS, n=1)
            hint = f" (did you mean {{{close[0]}}}?)" if close else ""
            shown = "{" + name + "}"
            problems.append(f"unknown placeholder {shown}{hint}; placeholders are: {known}")
        elif spec or conversion:
            problems.append(
                f"placeholder {{{name}}} takes no format or conversion; write it as {{{name}}}"
            )
    return problems


class Template(Text):
    """Text that may use the ``{name}`` placeholders in :data:`TEMPLATE_PLACEHOLDERS`."""

    what = "message text (placeholders such as {program} allowed)"

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        problems = template_problems(text)
        if problems:
            raise ValidationError(problems)
        return text


def _load_each(
    items: Sequence[Any], load: Callable[[Any], Any]
) -> tuple[list[tuple[int, Any]], dict[int, Any]]:
    """Load every item, so that one bad item does not hide the others' problems."""
    good: list[tuple[int, Any]] = []
    errors: dict[int, Any] = {}
    for index, item in enumerate(items):
        try:
            good.append((index, load(item)))
        except ValidationError as exc:
            errors[index] = exc.messages
    return good, errors


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
        good, errors = _load_each(value, self.inner.deserialize)
        if errors:
            raise ValidationError(errors)
        out = [item for _, item in good]
        if len(out) < self.min_items:
            raise self.empty()
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
            raise ValidationError(f"setting names must be text, found {describe(bad[0])}")
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


class Loaded(list):  # type: ignore[type-arg]
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
            kwargs.setdefault("load_default", Loaded)
        super().__init__(f"a list of {what}s", **kwargs)
        self.schema = schema
        self.item = what
        self.min_items = min_items

    def _load_item(self, item: Any) -> Any:
        if not isinstance(item, Mapping):
            raise ValidationError([
                f"expected a mapping describing a {self.item} (id: ..., title: ...), "
                f"found {describe(item)}"
            ])
        return self.schema().load(item)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Loaded:
        if not isinstance(value, list | tuple):
            raise self.fail(value, f"; write one '- id: ...' {self.item} per item")
        if len(value) < self.min_items:
            raise ValidationError(f"must not be empty: list at least one {self.item}")
        good, errors = _load_each(value, self._load_item)
        loaded = Loaded()
        for index, item in good:
            loaded.append(item)
            loaded.indices.append(index)
        if errors:
            raise ValidationError(errors, valid_data=loaded)
        return loaded
