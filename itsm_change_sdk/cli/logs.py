"""The command line's log: one quiet, useful line per event on standard error.

``-q`` shows errors only, the default adds warnings, ``-v`` each platform call, ``-vv``
everything (debug detail, every retry, full messages). Below ``-vv``, repeated retries of
one kind of call collapse into their first line plus a count at the end, and no line is
longer than :data:`MAX_LINE` characters, so a request or response body never floods it.
"""

from __future__ import annotations

import logging
import sys

from ..http.retry import RetryCollapser

__all__ = ["MAX_LINE", "LogSettings", "setup_logging"]

MAX_LINE = 500


class _Shorten(logging.Filter):
    """Cuts a long message (a payload that found its way into an error) to its start."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if len(text) > MAX_LINE:
            record.msg = f"{text[:MAX_LINE]}... ({len(text)} characters; -vv shows all)"
            record.args = ()
        return True


class LogSettings:
    """The handler a command logs through, and what it collapsed."""

    def __init__(self, handler: logging.Handler, retries: RetryCollapser | None) -> None:
        self.handler = handler
        self.retries = retries

    def summary(self) -> list[str]:
        return self.retries.summary() if self.retries else []


def setup_logging(verbose: int, quiet: bool) -> LogSettings:
    """Point the root logger at standard error at the chosen level (once per command)."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "itsm_change_cli", False)]:
        root.removeHandler(old)
    handler = logging.StreamHandler(sys.stderr)
    handler.itsm_change_cli = True  # type: ignore[attr-defined]
    detailed = verbose >= 1
    handler.setFormatter(logging.Formatter(
        "%(levelname)s %(name)s: %(message)s" if detailed else "%(levelname)s: %(message)s"))
    retries = None
    if verbose < 2:
        retries = RetryCollapser()
        handler.addFilter(retries)
        handler.addFilter(_Shorten())
    root.addHandler(handler)
    root.setLevel(logging.ERROR if quiet else logging.WARNING - 10 * min(verbose, 2))
    return LogSettings(handler, retries)
