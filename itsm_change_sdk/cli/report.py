"""``report``, ``gate`` and ``signoff``: what a change lead reads and decides."""

from __future__ import annotations

import click


def register(cli: click.Group) -> None:
    """Adds the reporting commands."""
