"""Rules across items: unique ids, references between sections, wave order."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from ..model import Channel, Wave
from .fields import Loaded
from .schemas import SECTIONS

ALLIANCE_AUDIENCE = "alliance"
"""The audience word for the management alliance; no unit may use it as its id."""


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
    if not isinstance(items, Loaded):
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


def cross_checks(
    raw: Mapping[str, Any],
    data: Mapping[str, Any],
    metric_kinds: Collection[str] | None,
) -> list[tuple[str, str]]:
    """``(path, message)`` for each rule across items that is broken.

    References are read from the raw items, so that an item with another problem still has
    its references checked; a value of the wrong type is left to the schema's message.
    """
    issues: list[tuple[str, str]] = []

    def issue(path: str, message: str) -> None:
        issues.append((path, message))

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
    platforms = {name for _, name in _strings(raw.get("platforms"))}
    platforms_known = bool(platforms)  # else the platforms field has its own issue

    def check_ref(path: str, value: Any, known: set[str], what: str) -> None:
        ref = _text(value)
        if ref is not None and ref not in known:
            issue(path, f"unknown {what} '{ref}'; {_known(known, what)}")

    def check_refs(path: str, value: Any, known: set[str], what: str) -> None:
        for pos, ref in _strings(value):
            check_ref(f"{path}.{pos}", ref, known, what)

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
        check_ref(f"{path}.wave", item.get("wave"), wave_ids, "wave")
        check_platform(f"{path}.platform", item.get("platform"))
        ident, platform = _text(item.get("id")), _text(item.get("platform"))
        if ident is not None and platform is not None:
            unit_platform.setdefault(ident, platform)

    previous: Wave | None = None
    for index, wave in _loaded(data, "waves"):
        if previous is not None and wave.starts <= previous.starts:
            issue(
                f"waves.{index}.starts",
                f"waves must be listed in start order (the first is the pilot): "
                f"'{wave.id}' starts {wave.starts}, not after '{previous.id}' "
                f"({previous.starts})",
            )
        previous = wave

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
        check_ref(f"{path}.survey", item.get("survey"), survey_ids, "survey")
        record = item.get("record")
        record = record if isinstance(record, Mapping) else None
        for name in record or ():
            check_platform(f"{path}.record.{name}", name)
        # A record of the wrong type has its own issue; only a missing or mapped one is checked.
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
