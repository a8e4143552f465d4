"""The three ways in: a file, text, or an already-parsed mapping, each ending in a checked
:class:`~itsm_change_sdk.model.Program` or one :class:`~itsm_change_sdk.errors.ProgramError`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Iterator, Mapping
from datetime import UTC
from pathlib import Path
from typing import Any

from marshmallow import ValidationError

from ..errors import ProgramError, ProgramIssue
from ..model import BUILTIN_CHANNELS, ChannelSpec, Program, UnmarkedFeedback
from .checks import cross_checks
from .fields import program_tz, zone
from .messages import SCHEMA_KEY, UNKNOWN, describe, join_path
from .reading import parse_text, read_file
from .schemas import SCHEMA_AT, ProgramSchema


def load_program(
    path: str | Path,
    *,
    metric_kinds: Collection[str] | None = None,
    channels: Mapping[str, ChannelSpec] | None = None,
) -> Program:
    """Load and check a program file (``.yaml``/``.yml``, or ``.json``).

    :param metric_kinds: the metric kinds goals may name (None: not checked).
    :param channels: the channels communications may name (None: the built-in ones); a
        workspace passes every registered channel (``Platforms.channels``).
    """
    file = str(path)
    text = read_file(Path(path), file)
    return load_program_text(text, source=file, metric_kinds=metric_kinds, channels=channels)


def load_program_text(
    text: str,
    *,
    source: str = "<string>",
    metric_kinds: Collection[str] | None = None,
    channels: Mapping[str, ChannelSpec] | None = None,
) -> Program:
    """Load a program from YAML or JSON text (JSON when ``source`` ends in ``.json``)."""
    data, lines = parse_text(text, source)
    return load_program_data(data, source=source, metric_kinds=metric_kinds, lines=lines,
                             channels=channels)


def load_program_data(
    data: Any,
    *,
    source: str = "<data>",
    metric_kinds: Collection[str] | None = None,
    lines: Mapping[str, int] | None = None,
    channels: Mapping[str, ChannelSpec] | None = None,
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
                              f"the top level, found {describe(data)}", 1 if lines else None)],
        )
    text_issues = list(_unprintable_text(data))
    token = program_tz.set(zone(data.get("timezone", "UTC")) or UTC)
    try:
        try:
            loaded: Mapping[str, Any] = ProgramSchema().load(data)
            found: list[tuple[str, str]] = []
        except ValidationError as exc:
            # Keep what loaded, so that the checks across items still run on it.
            loaded = exc.valid_data if isinstance(exc.valid_data, Mapping) else {}
            found = list(_flatten(exc.messages))
    finally:
        program_tz.reset(token)
    if channels is None:
        channels = {spec.name: spec for spec in BUILTIN_CHANNELS}
    found.extend(cross_checks(data, loaded, metric_kinds, channels))
    found.extend(text_issues)
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
        unmarked_feedback=loaded.get("feedback") or UnmarkedFeedback(),
        training_threshold=loaded["training_threshold"],
        min_sample=loaded["min_sample"],
        gates=loaded["gates"],
        source=source,
        checkins=section("checkins"),
        sponsors=section("sponsors"),
        silence_days=loaded["silence_days"],
    )


_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _unprintable_text(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Text that cannot be sent or shown safely, wherever it sits (keys included).

    A lone surrogate (JSON ``"\\ud800"``) is not a character: it passes parsing but no
    platform or file can encode it. A control character (such as the terminal's escape) would
    reach tickets and terminals as a command rather than text.
    """
    if isinstance(value, str):
        if match := _SURROGATE.search(value):
            yield path, (f"contains {ascii(match.group())[1:-1]}, half of a surrogate pair and "
                         "not a character; remove it or write the character itself")
        elif match := _CONTROL.search(value):
            yield path, (f"contains the control character {ascii(match.group())[1:-1]}; "
                         "remove it (tabs and line breaks are fine)")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            child = join_path(path, str(key))
            if isinstance(key, str) and not _SURROGATE.search(key) and not _CONTROL.search(key):
                yield from _unprintable_text(item, child)
            else:
                yield from _unprintable_text(key, child)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _unprintable_text(item, join_path(path, str(index)))


def _flatten(messages: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """marshmallow's nested messages as ``(dotted path, message)`` pairs."""
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            part = "" if key == SCHEMA_KEY else str(key)
            yield from _flatten(value, join_path(prefix, part))
    elif isinstance(messages, list | tuple):
        for message in messages:
            yield from _flatten(message, prefix)
    elif messages == UNKNOWN:
        yield prefix, _unknown_message(prefix)
    else:
        yield prefix, str(messages)


def _unknown_message(path: str) -> str:
    parts = path.split(".")
    name = parts[-1]
    where = ".".join(p for p in parts[:-1] if not p.isdigit())
    schema = SCHEMA_AT.get(where)
    if schema is None:
        return f"unknown field '{name}'"
    known = [f.data_key or key for key, f in schema._declared_fields.items()]
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown field '{name}'{hint}; expected one of: {', '.join(known)}"


def _line_for(path: str, lines: Mapping[str, int]) -> int | None:
    """The line of ``path``, or of its nearest parent (a missing field has no line)."""
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
