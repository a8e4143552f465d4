"""``serve`` and ``sync``: the event service (webhooks, scheduler) and polling."""

from __future__ import annotations

import click


def register(cli: click.Group) -> None:
    """Adds the event-service commands."""
