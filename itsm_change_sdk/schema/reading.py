"""Turn a file or text into plain data plus a line for each field path, refusing hostile input.

Files above :data:`MAX_PROGRAM_BYTES` are refused before they are read, binary and non-UTF-8
files are refused, and YAML is composed by a safe loader that refuses custom tags and
anchors/aliases (so an alias bomb cannot expand) and caps nesting at :data:`MAX_NESTING`.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any, cast

import yaml

from ..errors import ProgramError, ProgramIssue
from .messages import join_path, short

MAX_PROGRAM_BYTES = 1024 * 1024
"""Program files above this size (1 MiB) are refused without being read."""

MAX_NESTING = 20
"""Deepest nesting of lists and mappings a program file may use."""

_ANCHORS_REFUSED = (
    "YAML anchors and aliases (&name, *name) are not allowed in program files: "
    "write each value out in full"
)

Parsed = tuple[Any, dict[str, int], list[ProgramIssue]]
"""The data, the line of each dotted field path, and the issues found while parsing."""


# --------------------------------------------------------------------------------------------
# Files and text
# --------------------------------------------------------------------------------------------


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


def read_file(path: Path, file: str) -> str:
    """The text of a program file; checks its size before reading and its encoding after."""

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
            # One byte over the cap: the file may have grown since stat().
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


def parse_text(text: str, source: str) -> tuple[Any, dict[str, int]]:
    """The data in YAML or JSON text (JSON when ``source`` ends in ``.json``) and its lines."""
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
    return data, lines


# --------------------------------------------------------------------------------------------
# YAML
# --------------------------------------------------------------------------------------------


class _Refused(yaml.MarkedYAMLError):
    """Something the program loader does not accept (anchors, tags, deep nesting)."""


def _refuse_anchor(event: Any) -> None:
    if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
        raise _Refused(None, None, _ANCHORS_REFUSED, event.start_mark)


def _refuse_depth(depth: int, mark: Any) -> None:
    if depth > MAX_NESTING:
        raise _Refused(
            None, None, f"lists and mappings are nested more than {MAX_NESTING} levels deep", mark
        )


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
        _refuse_anchor(event)
        self.depth += 1
        try:
            _refuse_depth(self.depth, event.start_mark)
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
            raise _Refused(None, None, f"the number {short(str(node.value))!r} cannot be read",
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


_CSafeLoader: type[Any] | None = getattr(yaml, "CSafeLoader", None)

if _CSafeLoader is not None:

    class _CProgramLoader(_CSafeLoader):  # type: ignore[misc,valid-type]
        """libyaml's parser with the program loader's resolvers (used to compose only)."""

    _CProgramLoader.yaml_implicit_resolvers = _ProgramLoader.yaml_implicit_resolvers


def _check_events(text: str, loader: type[Any]) -> None:
    """With libyaml: refuse anchors, aliases and deep nesting before anything is composed."""
    depth = 0
    for event in yaml.parse(text, Loader=loader):
        _refuse_anchor(event)
        if isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent):
            depth += 1
            _refuse_depth(depth, cast(Any, event.start_mark))
        elif isinstance(event, yaml.SequenceEndEvent | yaml.MappingEndEvent):
            depth -= 1


def _compose(text: str) -> yaml.Node | None:
    # Read through the package, where the tests switch libyaml off to cover the pure parser.
    from . import _CSafeLoader as libyaml

    if libyaml is not None:
        # libyaml is several times faster on large files; the events are checked first,
        # so the composer never sees an alias.
        _check_events(text, libyaml)
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
        if "exceeded maximum nesting depth" in problem:  # PyYAML's own limit, since 6.0.4
            problem = f"lists and mappings are nested more than {MAX_NESTING} levels deep"
            return ProgramIssue("", problem, mark.line + 1 if mark else None)
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


def _map_lines(
    node: yaml.Node, prefix: str, lines: dict[str, int], duplicates: list[ProgramIssue]
) -> None:
    """Record the line of every path under ``node``; report keys given twice."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            key = str(key_node.value)
            path = join_path(prefix, key)
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
            path = join_path(prefix, str(index))
            lines[path] = item.start_mark.line + 1
            _map_lines(item, path, lines, duplicates)


def _lines_of(node: yaml.Node | None) -> tuple[dict[str, int], list[ProgramIssue]]:
    lines: dict[str, int] = {}
    duplicates: list[ProgramIssue] = []
    if node is not None:
        _map_lines(node, "", lines, duplicates)
    return lines, duplicates


def _parse_yaml(text: str) -> Parsed:
    try:
        node = _compose(text)
        if node is None:
            return None, {}, []
        data = _construct(text, node)
    except yaml.YAMLError as exc:
        return None, {}, [_yaml_error_issue(exc, text)]
    except RecursionError:
        return None, {}, [ProgramIssue("", "the file is nested too deeply to read")]
    return data, *_lines_of(node)


# --------------------------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------------------------


def _parse_json(text: str) -> Parsed:
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
    try:
        node = _compose(text.replace("\t", " "))
    except (yaml.YAMLError, RecursionError):
        node = None
    return data, *_lines_of(node)
