"""Rules across items: unique ids, references between sections, wave order."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from ..model import Addressing, ChannelSpec, Wave
from ..results import REFERENCE, reference_problem
from .fields import Loaded
from .schemas import SECTIONS

ALLIANCE_AUDIENCE = "alliance"
"""The audience word for the management alliance; no unit may use it as its id."""
SPONSORS_AUDIENCE = "sponsors"
"""The training audience word for the program's sponsors."""


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
    channels: Mapping[str, ChannelSpec],
) -> list[tuple[str, str]]:
    """``(path, message)`` for each rule across items that is broken.

    References are read from the raw items, so that an item with another problem still has
    its references checked; a value of the wrong type is left to the schema's message.
    The rules run section by section, in the order a reader meets them in the file.
    """
    checks = _CrossChecks(raw)
    checks.unique_ids()
    checks.units()
    checks.wave_order(data)
    checks.goals(metric_kinds)
    checks.alliance()
    checks.training()
    checks.communications(channels)
    checks.checkins(channels)
    checks.sponsors()
    checks.prompts()
    checks.unmarked_feedback()
    return checks.issues


class _CrossChecks:
    """One program's cross-item rules; each method checks one section."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw
        self.issues: list[tuple[str, str]] = []
        self.wave_ids = _raw_ids(raw, "waves")
        self.unit_ids = _raw_ids(raw, "units")
        self.survey_ids = _raw_ids(raw, "surveys")
        self.platforms = {name for _, name in _strings(raw.get("platforms"))}
        self.unit_platform: dict[str, str] = {}
        self.alliance_units: set[str] = set()
        self.has_alliance = bool(_raw_items(raw, "alliance"))

    # -- shared rules ----------------------------------------------------------------------

    def issue(self, path: str, message: str) -> None:
        self.issues.append((path, message))

    def check_ref(self, path: str, value: Any, known: set[str], what: str) -> None:
        ref = _text(value)
        if ref is not None and ref not in known:
            self.issue(path, f"unknown {what} '{ref}'; {_known(known, what)}")

    def check_refs(self, path: str, value: Any, known: set[str], what: str) -> None:
        for pos, ref in _strings(value):
            self.check_ref(f"{path}.{pos}", ref, known, what)

    def check_platform(self, path: str, name: Any) -> None:
        # Without platforms listed, the platforms field has its own issue.
        if isinstance(name, str) and self.platforms and name not in self.platforms:
            self.issue(
                path,
                f"platform '{name}' is not listed in platforms "
                f"({', '.join(sorted(self.platforms)) or 'none'}); add it there or fix the name",
            )

    def check_filter(self, path: str, value: Any) -> None:
        if isinstance(value, Mapping):
            self.check_platform(f"{path}.platform", value.get("platform"))

    # -- sections ----------------------------------------------------------------------

    def unique_ids(self) -> None:
        for section in SECTIONS:
            first: dict[str, int] = {}
            for index, item in _raw_items(self.raw, section):
                ident = _text(item.get("id"))
                if ident is None:
                    continue
                if ident in first:
                    self.issue(
                        f"{section}.{index}.id",
                        f"duplicate id '{ident}': already used by {section}.{first[ident]}; "
                        f"ids must be unique within {section}",
                    )
                first.setdefault(ident, index)

    def units(self) -> None:
        for index, item in _raw_items(self.raw, "units"):
            path = f"units.{index}"
            if item.get("id") == ALLIANCE_AUDIENCE:
                self.issue(
                    f"{path}.id",
                    "the id 'alliance' is reserved for the management alliance in audiences; "
                    "choose another unit id",
                )
            self.check_ref(f"{path}.wave", item.get("wave"), self.wave_ids, "wave")
            self.check_platform(f"{path}.platform", item.get("platform"))
            ident, platform = _text(item.get("id")), _text(item.get("platform"))
            if ident is not None and platform is not None:
                self.unit_platform.setdefault(ident, platform)

    def wave_order(self, data: Mapping[str, Any]) -> None:
        previous: Wave | None = None
        for index, wave in _loaded(data, "waves"):
            if previous is not None and wave.starts <= previous.starts:
                self.issue(
                    f"waves.{index}.starts",
                    f"waves must be listed in start order (the first is the pilot): "
                    f"'{wave.id}' starts {wave.starts}, not after '{previous.id}' "
                    f"({previous.starts})",
                )
            previous = wave

    def goals(self, metric_kinds: Collection[str] | None) -> None:
        for index, item in _raw_items(self.raw, "goals"):
            path = f"goals.{index}"
            metric = _text(item.get("metric"))
            if metric is not None and metric_kinds is not None and metric not in metric_kinds:
                known = ", ".join(sorted(metric_kinds)) or "none"
                self.issue(f"{path}.metric", f"unknown metric '{metric}'; metrics are: {known}")
            self.check_refs(f"{path}.units", item.get("units"), self.unit_ids, "unit")
            self.check_filter(f"{path}.filter", item.get("filter"))

    def alliance(self) -> None:
        for index, item in _raw_items(self.raw, "alliance"):
            self.alliance_units.update(ref for _, ref in _strings(item.get("units")))
            self.check_refs(f"alliance.{index}.units", item.get("units"), self.unit_ids, "unit")
            self.check_refs(f"alliance.{index}.signs_off", item.get("signs_off"), self.wave_ids,
                            "wave")

    def training(self) -> None:
        leaders = {ALLIANCE_AUDIENCE: self.has_alliance,
                   SPONSORS_AUDIENCE: bool(_raw_items(self.raw, "sponsors"))}
        for index, item in _raw_items(self.raw, "training"):
            for pos, target in _strings(item.get("audience")):
                path = f"training.{index}.audience.{pos}"
                if target in leaders:
                    if not leaders[target]:
                        self.issue(path, f"audience '{target}' but the program lists none; "
                                         f"add them under {target} or remove '{target}'")
                    continue
                self.check_ref(path, target, self.unit_ids, "unit")

    def communications(self, channels: Mapping[str, ChannelSpec]) -> None:
        for index, item in _raw_items(self.raw, "communications"):
            path = f"communications.{index}"
            audience_units = self._audience(path, item)
            self.check_ref(f"{path}.survey", item.get("survey"), self.survey_ids, "survey")
            template = item.get("template")
            for ref in REFERENCE.findall(template if isinstance(template, str) else ""):
                problem = reference_problem(_raw_ids(self.raw, "goals"), self.unit_ids, ref)
                if problem:
                    self.issue(f"{path}.template", problem)
            self._channel_and_record(path, item, channels, audience_units)

    def _audience(self, path: str, item: Mapping[str, Any]) -> set[str]:
        """The units a communication reaches (the alliance's units for 'alliance')."""
        audience_units: set[str] = set()
        for pos, target in _strings(item.get("audience")):
            if target == ALLIANCE_AUDIENCE:
                if not self.has_alliance:
                    self.issue(
                        f"{path}.audience.{pos}",
                        "audience 'alliance' but the program lists no alliance members",
                    )
                audience_units.update(self.alliance_units)
            elif target not in self.unit_ids:
                self.issue(
                    f"{path}.audience.{pos}",
                    f"unknown audience '{target}': expected a unit id or 'alliance'; "
                    f"{_known(self.unit_ids, 'unit')}",
                )
            else:
                audience_units.add(target)
        return audience_units

    def _channel_and_record(self, path: str, item: Mapping[str, Any],
                            channels: Mapping[str, ChannelSpec],
                            audience_units: set[str]) -> None:
        """The channel is registered; a record is given exactly where the channel notes on
        one, for every platform the audience uses."""
        name = _text(item.get("channel"))
        spec = channels.get(name) if name is not None else None
        if name is not None and spec is None:
            self.issue(f"{path}.channel",
                       f"unknown channel '{name}'; channels are: {', '.join(sorted(channels))}"
                       " (a channel plugin adds more)")
        record = item.get("record")
        record = record if isinstance(record, Mapping) else None
        for platform in record or ():
            self.check_platform(f"{path}.record.{platform}", platform)
        if spec is None:
            return
        if spec.addressing is not Addressing.RECORD:
            if record:
                self.issue(f"{path}.record",
                           f"record is used only by the ticket_note channel and other channels "
                           f"that note on a record (this channel is '{name}'); remove it or "
                           "change the channel")
            return
        # A record of the wrong type has its own issue; only a missing or mapped one is checked.
        if record is None and item.get("record") is not None:
            return
        needed = {self.unit_platform[u] for u in audience_units if u in self.unit_platform}
        missing = sorted(needed - set(record or ()))
        if missing:
            example = ", ".join(f"{platform}: CHG0001001" for platform in missing)
            self.issue(
                f"{path}.record",
                f"a {name} needs the record to note on for each platform its audience "
                f"uses; missing: {', '.join(missing)} (e.g. record: {{{example}}})",
            )

    def checkins(self, channels: Mapping[str, ChannelSpec]) -> None:
        for index, item in _raw_items(self.raw, "checkins"):
            path = f"checkins.{index}"
            if not self.has_alliance:
                self.issue(path, "a check-in briefs the management alliance, but the program "
                                 "lists no alliance members; add them under alliance")
            name = _text(item.get("channel")) or "task"
            spec = channels.get(name)
            if spec is None:
                self.issue(f"{path}.channel",
                           f"unknown channel '{name}'; channels are: "
                           f"{', '.join(sorted(channels))} (a channel plugin adds more)")
            elif spec.addressing is not Addressing.PERSON:
                self.issue(f"{path}.channel",
                           f"a brief names the people overdue on training, so it goes to one "
                           f"manager at a time; channel '{name}' does not address one person: "
                           "use 'task'")

    def sponsors(self) -> None:
        for index, item in _raw_items(self.raw, "sponsors"):
            self.check_platform(f"sponsors.{index}.platform", item.get("platform"))

    def prompts(self) -> None:
        for index, item in _raw_items(self.raw, "prompts"):
            self.check_refs(f"prompts.{index}.units", item.get("units"), self.unit_ids, "unit")
            self.check_filter(f"prompts.{index}.filter", item.get("filter"))

    def unmarked_feedback(self) -> None:
        setting = self.raw.get("feedback")
        if not isinstance(setting, Mapping):
            return
        self.check_refs("feedback.exclude_units", setting.get("exclude_units"), self.unit_ids,
                        "unit")
        for pos, name in _strings(setting.get("exclude_platforms")):
            self.check_platform(f"feedback.exclude_platforms.{pos}", name)
