"""Tables for people on a terminal; the plain lines stay for pipes, logs and scripts.

Colour follows the usual rules (rich applies them): only on a terminal, never with
``NO_COLOR`` set, and ``FORCE_COLOR``/``TERM=dumb`` are honoured.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence

__all__ = ["ACTION_STYLES", "STATE_STYLES", "on_terminal", "print_table"]


def on_terminal() -> bool:
    """True when standard output is a terminal a person reads (not a pipe or a file)."""
    return sys.stdout.isatty()


STATE_STYLES = {"done": "green", "failed": "red", "pending": "yellow", "retired": "dim"}
"""Colours for ledger states in tables (a terminal only; never with NO_COLOR)."""

ACTION_STYLES = {"create": "green", "update": "yellow", "retire": "red", "skip": "dim",
                 "met": "green", "not met": "red"}
"""Colours for plan actions and gate conditions, as for :data:`STATE_STYLES`."""


def print_table(title: str, headers: Sequence[str], rows: Iterable[Sequence[object]],
                *, numeric: Iterable[str] = (),
                styles: Mapping[str, Mapping[str, str]] | None = None) -> None:
    """One table with a header row; ``numeric`` columns are right-aligned, and ``styles``
    colours a column's cells by value (``{"State": STATE_STYLES}``). Cells are shown as
    text, never read as markup, since they carry values from programs and platforms."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    right = set(numeric)
    by_column = styles or {}
    table = Table(title=title, title_justify="left", header_style="bold")
    for header in headers:
        table.add_column(header, justify="right" if header in right else "left")
    for row in rows:
        table.add_row(*(Text(str(cell), style=by_column.get(header, {}).get(str(cell), ""))
                        for header, cell in zip(headers, row, strict=True)))
    Console(file=sys.stdout, force_terminal=on_terminal() or None).print(table)
