"""Checking a program's ticket filters against a platform (``validate --platform``,
``doctor --program``): the values a platform does not hold are found before ``sync``, where
they would make a query fail or match nothing.

Plugins implement ``itsm_change_check_filters`` with the helpers here, so every platform
words its findings the same way: the prompt or goal, the field, the value, and the closest
values the platform holds.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping

from ..model import Check, CheckStatus, Program, TicketFilter
from ..plugins import Platforms

__all__ = ["check_filters", "check_value", "filter_places", "filters_ok"]

HOOK = "itsm_change_check_filters"


def filter_places(program: Program, platform: str) -> list[tuple[str, TicketFilter]]:
    """The prompts' and goals' filters that apply to ``platform``, each with where it is
    (``prompt 'reset'``, ``goal 'share'``)."""
    places = [(f"prompt {p.id!r}", p.filter) for p in program.prompts]
    places += [(f"goal {g.id!r}", g.filter) for g in program.goals]
    return [(where, f) for where, f in places if not f.platform or f.platform == platform]


def _closest(value: str, known: Collection[str]) -> list[str]:
    by_fold = {k.casefold(): k for k in known}
    return [by_fold[k] for k in difflib.get_close_matches(value.casefold(), list(by_fold),
                                                         n=3, cutoff=0.5)]


def check_value(platform: str, where: str, field: str, value: str, accepted: Collection[str],
                what: str, *, labels: Mapping[str, str] | None = None,
                status: CheckStatus = CheckStatus.FAIL) -> Check | None:
    """None when ``value`` is one of ``accepted`` (case-insensitive). A label of an accepted
    value (``labels``: label -> value) passes with a warning that says the value is matched
    through its label; anything else is a ``status`` check naming the closest values."""
    if value.casefold() in {a.casefold() for a in accepted}:
        return None
    by_label = {label.casefold(): real for label, real in (labels or {}).items()}
    if value.casefold() in by_label:
        real = by_label[value.casefold()]
        return Check(platform, f"filters: {where}", CheckStatus.WARN,
                     f"{where}: {field} {value!r} is the label of the value {real!r}; it is "
                     "matched through its label",
                     f"write {field}: [{real}] to match exactly what {platform} stores")
    close = _closest(value, [*accepted, *(labels or {})])
    listed = ", ".join(sorted(accepted, key=str.casefold)[:12]) or "none"
    hint = (f"did you mean {' or '.join(repr(c) for c in close)}? " if close else "")
    return Check(platform, f"filters: {where}", status,
                 f"{where}: {field} {value!r} is not {what}, so it matches no ticket there",
                 f"{hint}change {where}'s filter {field} to values {platform} holds "
                 f"({listed}), or set its filter's platform to where {value!r} exists")


def filters_ok(platform: str, places: Collection[tuple[str, TicketFilter]]) -> Check:
    """The one line for a platform whose filters are all fine."""
    return Check(platform, "filters", CheckStatus.OK,
                 f"{len(places)} prompt and goal filters checked against {platform}")


def check_filters(platforms: Platforms, name: str, program: Program) -> list[Check]:
    """The platform's own checks of ``program``'s filters, or one warning where the plugin
    cannot list the values its filters accept."""
    if not platforms.implements(name, HOOK):
        return [Check(name, "filters", CheckStatus.WARN,
                      f"the {name} plugin cannot check filter values against the platform",
                      "check the prompts' and goals' filter values by hand")]
    checks: list[Check] = platforms.call(name, HOOK, program=program) or []
    return checks
