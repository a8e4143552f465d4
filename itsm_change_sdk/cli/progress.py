"""What a long ``apply`` shows while it runs: only on a terminal, never in a pipe or a log."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

import click

__all__ = ["apply_progress", "planning"]


def _on_terminal(stream: TextIO) -> bool:
    return stream.isatty()


@contextmanager
def planning(what: str, stream: TextIO | None = None) -> Iterator[None]:
    """Say what is happening while the plan is worked out (reads, no writes yet)."""
    out = stream or sys.stderr
    if _on_terminal(out):
        click.echo(f"Planning {what}: reading the ledger and the platforms...", file=out)
    yield


@contextmanager
def apply_progress(total: int, stream: TextIO | None = None
                   ) -> Iterator[Callable[[int], None]]:
    """A bar with done/total, the write rate and an ETA, then one summary line.

    The rate and ETA come from the writes done so far over the time since the first write,
    so they settle after the first batches instead of guessing from the planning time.
    """
    out = stream or sys.stderr
    if not _on_terminal(out) or total <= 0:
        yield lambda done: None
        return
    started: float | None = None
    done_so_far = 0

    def rate() -> str:
        if started is None or done_so_far == 0:
            return ""
        elapsed = max(time.monotonic() - started, 1e-6)
        per_second = done_so_far / elapsed
        left = (total - done_so_far) / per_second
        return f"{per_second:.0f} writes/s, about {left:.0f}s left"

    with click.progressbar(length=total, label="Applying", file=out, show_pos=True,
                           show_eta=False, show_percent=True,
                           item_show_func=lambda item: item) as bar:
        def update(done: int) -> None:
            nonlocal started, done_so_far
            if started is None:
                started = time.monotonic()
            done_so_far += done
            bar.update(done, rate())

        began = time.monotonic()
        yield update
    took = time.monotonic() - began
    click.echo(f"{done_so_far} of {total} writes in {took:.1f}s "
               f"({done_so_far / max(took, 1e-6):.0f}/s)", file=out)
