"""What a program wants on its platforms now, and the diff against what the ledger holds.

Pure functions of (program, unit members, ledger rows, now): no I/O, so ``plan`` shows
exactly what ``apply`` will do.

Rules worth knowing:

* training is assigned to a unit's members once its wave has started; an edited module
  updates open tasks in place; a removed module, or a person who left the unit, has their
  open task retired;
* a communication fires once per occurrence; a repeating one (``every:``) reaches a unit
  from its wave's start on; when several occurrences are overdue (apply did not run for a
  while) only the latest is sent and the older ones are recorded as skipped;
* messages, notes and survey requests already delivered are history: edits apply to later
  occurrences. Announcements still visible are updated in place;
* a check-in (``checkins:``) is a message like any other, one per alliance member and
  occurrence; its brief is written from the report's numbers when it is about to be sent.
"""

from __future__ import annotations

import dataclasses
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from .errors import ConfigurationError
from .feedback import example_answer
from .ledger import PlanRow
from .model import (
    Addressing,
    AllianceMember,
    ChannelSpec,
    CheckIn,
    CommunicationEvent,
    Effect,
    EffectKind,
    Person,
    Program,
    TrainingModule,
    Unit,
)
from .results import is_marked, mark_results, quote_results

if TYPE_CHECKING:
    from .report.build import Report

__all__ = ["Measures", "Plan", "PlannedAction", "desired_effects", "plan", "render_template"]

Measures = Callable[[], "Report"]
"""Builds the report's numbers, called at most once a plan and only when a check-in brief
is about to be written."""

ANNOUNCEMENT_DAYS = 14
ACK_DAYS = 7


@dataclass(frozen=True)
class PlannedAction:
    action: str
    """``create``, ``update``, ``retire``, ``skip`` or ``hold`` (not sent yet, for the
    reason in ``detail``)."""
    key: str
    kind: str
    platform: str
    detail: str
    effect: Effect | None = None
    row: PlanRow | None = None


@dataclass
class Plan:
    program: str
    now: datetime
    actions: list[PlannedAction] = field(default_factory=list)
    unchanged: int = 0

    def count(self, action: str) -> int:
        return sum(1 for a in self.actions if a.action == action)

    @property
    def writes(self) -> int:
        return sum(1 for a in self.actions if a.action in ("create", "update", "retire"))

    def render(self) -> str:
        symbols = {"create": "+", "update": "~", "retire": "-", "skip": "/", "hold": "!"}
        lines = [f"{symbols[a.action]} {a.action:<7} {a.kind:<16} {a.key}  {a.detail}"
                 for a in self.actions]
        lines.append(
            f"Plan for {self.program} at {self.now:%Y-%m-%d %H:%M} UTC: "
            f"{self.count('create')} to create, {self.count('update')} to update, "
            f"{self.count('retire')} to retire, {self.count('skip')} to skip, "
            + (f"{self.count('hold')} held, " if self.count("hold") else "")
            + f"{self.unchanged} unchanged."
        )
        return "\n".join(lines)


def render_template(template: str, values: Mapping[str, str]) -> str:
    """Fill ``{name}`` placeholders; anything else (attribute access, format specs, unknown
    names) stays as written, so a template can never reach into an object."""
    out: list[str] = []
    for literal, name, spec, conversion in string.Formatter().parse(template):
        out.append(literal)
        if name is None:
            continue
        if name in values and not spec and not conversion:
            out.append(values[name])
        else:
            suffix = (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
            out.append("{" + name + suffix + "}")
    return "".join(out)


def _survey_text(program: Program, survey_id: str) -> str:
    survey = program.survey(survey_id)
    dims = ", ".join(survey.dimensions)
    return (
        f"Pulse survey '{survey.title}': {survey.question}\n"
        f"Score each of {dims} from 1 (not at all) to 5 (fully). Answer on this task, or in a "
        f"comment on any ticket: {example_answer(program.feedback_marker)}"
    )


def _training_body(program: Program, module: TrainingModule, due: str) -> str:
    lines = [f"Program: {program.title}", f"Module: {module.title}"]
    if module.duration_minutes:
        lines.append(f"Time needed: about {module.duration_minutes} minutes")
    lines.append("After this module you can:")
    lines.extend(f"  - {objective}" for objective in module.objectives)
    if module.link:
        lines.append(f"Material: {module.link}")
    how = {
        "attestation": "Close this task when you have completed the module.",
        "quiz": f"Close this task with your quiz score (at least {module.min_score}).",
        "ticket_closed": "This task closes when you have worked a ticket the new way.",
    }.get(module.completion, "Close this task when you have completed the module.")
    lines.append(f"Due {due}. {how}")
    return "\n".join(lines)


def _leader_training(program: Program, module: TrainingModule, now: datetime
                     ) -> list[Effect]:
    """Leaders take the module their people take, ahead of them: each alliance member who
    speaks for a unit in its audience (and each sponsor) gets it so that it falls due the
    day the first of those units' waves starts."""
    units = [program.unit(u) for u in module.audience if u not in ("alliance", "sponsors")]
    leaders: list[tuple[str, Person, list[Unit]]] = []
    if "alliance" in module.audience:
        for member in program.alliance:
            own = [u for u in units if u.id in member.units]
            if own:
                person = Person(member.id, member.name, own[0].platform, member.email)
                leaders.append((member.id, person, own))
    if "sponsors" in module.audience and units:
        for sponsor in program.sponsors:
            platform = sponsor.platform or units[0].platform
            leaders.append((sponsor.id, Person(sponsor.id, sponsor.name, platform,
                                               sponsor.email), units))
    out = []
    for leader, person, own in leaders:
        due = min(program.wave(u.wave).starts for u in own)
        if due - timedelta(days=module.due_days) > now.date():
            continue
        out.append(Effect(
            key=f"chg:{program.id}:training:{module.id}:{person.platform}:{person.id}",
            kind=EffectKind.TRAINING, platform=person.platform, program=program.id,
            title=f"Training: {module.title}",
            body=_training_body(program, module, due.isoformat()), channel="task",
            recipient=person, due=due, meta={"leader": leader, "module": module.id}))
    return out


def _training(program: Program, members: Mapping[str, Sequence[Person]], now: datetime
              ) -> list[Effect]:
    out: dict[str, Effect] = {}
    for module in program.training:
        for effect in _leader_training(program, module, now):
            out.setdefault(effect.key, effect)
        for unit_id in module.audience:
            if unit_id in ("alliance", "sponsors"):
                continue
            unit = program.unit(unit_id)
            wave = program.wave(unit.wave)
            if wave.starts > now.date():
                continue
            due = wave.starts + timedelta(days=module.due_days)
            body = _training_body(program, module, due.isoformat())
            # One title and meta for the unit's whole module, not a copy per person.
            title = f"Training: {module.title}"
            meta = {"unit": unit.id, "module": module.id, "wave": unit.wave}
            for person in members.get(unit.id, ()):
                key = f"chg:{program.id}:training:{module.id}:{unit.platform}:{person.id}"
                out.setdefault(key, Effect(
                    key=key, kind=EffectKind.TRAINING, platform=unit.platform,
                    program=program.id, title=title, body=body,
                    channel="task", recipient=person, due=due, meta=meta,
                ))
    return list(out.values())


def _audience(program: Program, event: CommunicationEvent, when: datetime
              ) -> tuple[list[Unit], list[AllianceMember]]:
    units: list[Unit] = []
    alliance: list[AllianceMember] = []
    for name in event.audience:
        if name == "alliance":
            alliance.extend(program.alliance)
            continue
        unit = program.unit(name)
        if event.cadence is None or program.wave(unit.wave).starts <= when.date():
            units.append(unit)
    return units, alliance


def _occurrence_effects(program: Program, event: CommunicationEvent, when: datetime,
                        members: Mapping[str, Sequence[Person]],
                        channels: Mapping[str, ChannelSpec]) -> list[Effect]:
    """The effects of one occurrence of ``event``: its audience at ``when``, the rendered
    body, then one effect per person, per platform or for the whole audience, as the
    channel's addressing says."""
    units, alliance = _audience(program, event, when)
    if not units and not alliance:
        return []
    channel = _channel(event, channels)
    body = _occurrence_body(program, event, when, units)
    kind = EffectKind.FEEDBACK_REQUEST if event.survey and \
        channel.addressing is Addressing.PERSON else EffectKind.MESSAGE
    meta = {"event": event.id, "occurrence": when.isoformat()}
    if event.survey:
        meta["survey"] = event.survey
    base = f"chg:{program.id}:comm:{event.id}:{when.strftime('%Y%m%dT%H%M')}"
    message = Effect(key=base, kind=kind, platform="", program=program.id, title=event.title,
                     body=body, channel=channel.name, meta=meta)
    if channel.addressing is Addressing.PERSON:
        return _per_person(program, message, units, alliance, members, when)
    groups = _audience_groups(program, units, alliance)
    if channel.addressing is Addressing.AUDIENCE:
        every_group = tuple(sorted({g for names in groups.values() for g in names}))
        return [dataclasses.replace(message, key=f"{base}:{channel.name}",
                                    platform=channel.name, audience_groups=every_group)]
    return _per_platform(event, channel, message, groups, when)


def _channel(event: CommunicationEvent, channels: Mapping[str, ChannelSpec]) -> ChannelSpec:
    channel = channels.get(event.channel)
    if channel is None:
        raise ConfigurationError(
            f"communication {event.id!r} uses the channel {event.channel!r}, which no "
            f"installed plugin registers (channels: {', '.join(sorted(channels))}); install "
            "its plugin or change the channel")
    return channel


def _occurrence_body(program: Program, event: CommunicationEvent, when: datetime,
                     units: Sequence[Unit]) -> str:
    """The event's template filled in for this occurrence, with its survey appended."""
    first_wave = program.wave(units[0].wave) if units else program.waves[0]
    values = {
        "program": program.title,
        "unit": ", ".join(u.title for u in units) or "the management alliance",
        "wave": first_wave.title,
        "starts": first_wave.starts.isoformat(),
        "go_live": first_wave.go_live.isoformat(),
        "occurrence": when.date().isoformat(),
        "marker": program.feedback_marker,
        "survey": _survey_text(program, event.survey) if event.survey else "",
        "module": ", ".join(m.title for m in program.training),
    }
    body = render_template(mark_results(event.template), values)
    if event.survey and "{survey}" not in event.template:
        body = f"{body}\n\n{values['survey']}"
    return body


def _per_person(program: Program, message: Effect, units: Sequence[Unit],
                alliance: Sequence[AllianceMember], members: Mapping[str, Sequence[Person]],
                when: datetime) -> list[Effect]:
    """One task per person in the audience (unit members, then alliance members), once."""
    due = (when + timedelta(days=ACK_DAYS)).date()
    recipients: list[tuple[str, Person, str]] = [
        (unit.platform, person, unit.id) for unit in units
        for person in members.get(unit.id, ())]
    for member in alliance:
        platform = program.unit(member.units[0]).platform
        recipients.append((platform, Person(member.id, member.name, platform, member.email),
                           member.units[0]))
    effects: dict[str, Effect] = {}
    for platform, person, unit_id in recipients:
        key = f"{message.key}:{platform}:{person.id}"
        effects.setdefault(key, dataclasses.replace(
            message, key=key, platform=platform, recipient=person, due=due,
            meta={**message.meta, "unit": unit_id}))
    return list(effects.values())


def _audience_groups(program: Program, units: Sequence[Unit],
                     alliance: Sequence[AllianceMember]) -> dict[str, tuple[str, ...]]:
    """Per platform the audience reaches, the groups it is shown to."""
    alliance_units = [program.unit(u) for m in alliance for u in m.units]
    out: dict[str, set[str]] = {}
    for unit in [*units, *alliance_units]:
        out.setdefault(unit.platform, set())
        if unit.group:
            out[unit.platform].add(unit.group)
    return {platform: tuple(sorted(groups)) for platform, groups in sorted(out.items())}


def _per_platform(event: CommunicationEvent, channel: ChannelSpec, message: Effect,
                  groups: Mapping[str, tuple[str, ...]], when: datetime) -> list[Effect]:
    """One announcement, or one note on the event's record, per platform."""
    windowed = channel.addressing is Addressing.GROUPS
    until = _visible_until(event, when)
    effects = []
    for platform, names in groups.items():
        ticket_id = event.record.get(platform) if channel.addressing is Addressing.RECORD \
            else None
        # A note's key ends with its record, so a plugin can look it up on that record.
        key = f"{message.key}:{platform}:{ticket_id}" if ticket_id \
            else f"{message.key}:{platform}"
        effects.append(dataclasses.replace(
            message, key=key, platform=platform, ticket_id=ticket_id, audience_groups=names,
            visible_from=when if windowed else None, visible_until=until if windowed else None))
    return effects


def _visible_until(event: CommunicationEvent, when: datetime) -> datetime:
    if event.cadence is not None:
        return when + timedelta(days=event.cadence.every_days)
    return when + timedelta(days=ANNOUNCEMENT_DAYS)


def _checkin_effects(program: Program, checkin: CheckIn, when: datetime,
                     channels: Mapping[str, ChannelSpec]) -> list[Effect]:
    """One brief per alliance member for this occurrence, on their first unit's platform.
    The body is written just before sending (:func:`itsm_change_sdk.alliance.fill_brief`)."""
    channel = channels.get(checkin.channel)
    if channel is None or channel.addressing is not Addressing.PERSON:
        raise ConfigurationError(
            f"check-in {checkin.id!r} uses the channel {checkin.channel!r}, which is not "
            "registered as a channel addressing one person; use 'task'")
    stamp = when.strftime("%Y%m%dT%H%M")
    due = (when + timedelta(days=ACK_DAYS)).date()
    out = []
    for member in program.alliance:
        platform = program.unit(member.units[0]).platform
        out.append(Effect(
            key=f"chg:{program.id}:checkin:{checkin.id}:{stamp}:{platform}:{member.id}",
            kind=EffectKind.MESSAGE, platform=platform, program=program.id,
            title=f"{checkin.title} ({when.date().isoformat()})", body="",
            channel=checkin.channel,
            recipient=Person(member.id, member.name, platform, member.email), due=due,
            meta={"event": checkin.id, "checkin": checkin.id, "occurrence": when.isoformat(),
                  "leader": member.id}))
    return out


def desired_effects(program: Program, members: Mapping[str, Sequence[Person]], now: datetime,
                    channels: Mapping[str, ChannelSpec]) -> tuple[list[Effect], list[Effect]]:
    """(effects due now, overdue occurrences superseded by a later one)."""
    due = _training(program, members, now)
    superseded: list[Effect] = []
    for checkin in program.checkins:
        past = [when for when in checkin.occurrences() if when <= now]
        if not past:
            continue
        due.extend(_checkin_effects(program, checkin, past[-1], channels))
        for when in past[:-1]:
            superseded.extend(_checkin_effects(program, checkin, when, channels))
    for event in program.communications:
        past = [when for when in event.occurrences() if when <= now]
        if not past:
            continue
        due.extend(_occurrence_effects(program, event, past[-1], members, channels))
        for when in past[:-1]:
            superseded.extend(_occurrence_effects(program, event, when, members, channels))
    return due, superseded


def _event_exists(program: Program, row: PlanRow) -> bool:
    event = row.meta.get("event")
    return any(e.id == event for e in program.communications) or \
        any(c.id == event for c in program.checkins)


class _Once:
    """The report's numbers, built on first use only."""

    def __init__(self, measures: Measures | None) -> None:
        self.measures = measures
        self.value: Report | None = None

    def get(self) -> Report | None:
        if self.value is None and self.measures is not None:
            self.value = self.measures()
        return self.value


def _written(effect: Effect, program: Program, members: Mapping[str, Sequence[Person]],
             rows: Mapping[str, PlanRow], report: _Once) -> Effect | str:
    """The effect as it will be sent, or why it is held back for now."""
    quotes = is_marked(effect.body)
    if "checkin" not in effect.meta and not quotes:
        return effect
    built = report.get()
    if built is None:
        return "its figures need the report (plan through a Workspace or Runner)"
    if quotes:
        return quote_results(effect, built)
    from .alliance import fill_brief

    return fill_brief(effect, built, rows.values(), members)


def _training_gone(program: Program, members: Mapping[str, Sequence[Person]],
                   row: PlanRow, now: datetime) -> str | None:
    """Why an assigned training task is no longer wanted, or None to keep it.

    A unit whose wave starts after ``now`` keeps its tasks: the ledger then holds writes from
    a later date (a rehearsal ahead of the clock, or a plan given an earlier ``--as-of``), and
    nothing about the program or the unit changed.
    """
    module_id, unit_id = str(row.meta.get("module", "")), str(row.meta.get("unit", ""))
    module = next((m for m in program.training if m.id == module_id), None)
    if module is None:
        return f"training module {module_id!r} was removed from the program"
    if "leader" in row.meta:
        if row.due is not None and row.due - timedelta(days=module.due_days) > now.date():
            return None  # assigned at a later date than this plan's: keep it
        return f"{row.meta['leader']} no longer takes {module_id!r} as a leader"
    unit = next((u for u in program.units if u.id == unit_id), None)
    if unit is None or unit_id not in module.audience:
        return f"unit {unit_id!r} is no longer in the audience of {module_id!r}"
    if program.wave(unit.wave).starts > now.date():
        return None
    if row.platform != unit.platform:
        return f"{unit_id} now runs on {unit.platform}, not {row.platform}"
    person = row.key.rsplit(":", 1)[-1]
    if not any(p.id == person for p in members.get(unit_id, ())):
        return f"{person} is no longer a member of {unit_id}"
    return "no longer assigned"


def plan(program: Program, members: Mapping[str, Sequence[Person]],
         rows: Mapping[str, PlanRow], now: datetime,
         channels: Mapping[str, ChannelSpec], measures: Measures | None = None) -> Plan:
    """The diff between what ``program`` wants at ``now`` and the ledger's ``rows``.

    :param channels: the registered channels, by name (``Platforms.channels``).
    :param measures: builds the report's numbers, for check-in briefs (without it a due
        brief is held).
    :raises ConfigurationError: a communication names a channel no plugin registers.
    """
    result = Plan(program.id, now)
    due, superseded = desired_effects(program, members, now, channels)
    wanted = {e.key for e in due}
    report = _Once(measures)
    for effect in due:
        row = rows.get(effect.key)
        if row is None or row.state in ("failed", "pending"):
            written = _written(effect, program, members, rows, report)
            if isinstance(written, str):
                result.actions.append(PlannedAction(
                    "hold", effect.key, str(effect.kind), effect.platform,
                    f"{_describe(effect)}: held, {written}", effect, row))
                continue
            effect = written
        label = _describe(effect)
        if row is None or row.state == "failed":
            result.actions.append(PlannedAction("create", effect.key, str(effect.kind),
                                                effect.platform, label, effect, row))
        elif row.state == "pending":
            result.actions.append(PlannedAction(
                "create", effect.key, str(effect.kind), effect.platform,
                f"{label} (outcome of an earlier run unknown: looked up first)", effect, row))
        elif (row.state == "done" and _updatable(effect, channels) and not row.completed
              and not is_marked(effect.body) and row.fingerprint != effect.fingerprint):
            result.actions.append(PlannedAction("update", effect.key, str(effect.kind),
                                                effect.platform, label, effect, row))
        else:
            result.unchanged += 1
    for effect in superseded:
        if effect.key not in rows:
            result.actions.append(PlannedAction(
                "skip", effect.key, str(effect.kind), effect.platform,
                "overdue occurrence superseded by a later one", effect))
    for key, row in rows.items():
        if key in wanted or row.state != "done" or row.completed:
            continue
        if row.kind == EffectKind.TRAINING:
            why = _training_gone(program, members, row, now)
            if why is None:
                continue
            reason = why
        elif _retirable(row, channels) and not _event_exists(program, row):
            reason = "its communication was removed from the program"
        else:
            continue
        result.actions.append(PlannedAction("retire", key, row.kind, row.platform, reason,
                                            row=row))
    order = {"retire": 0, "update": 1, "create": 2, "skip": 3, "hold": 4}
    result.actions.sort(key=lambda a: (order[a.action], a.kind, a.key))
    return result


def _addressing(channel: str | None, channels: Mapping[str, ChannelSpec]) -> Addressing | None:
    spec = channels.get(channel or "")
    return spec.addressing if spec else None


def _updatable(effect: Effect, channels: Mapping[str, ChannelSpec]) -> bool:
    """Training tasks and announcements change in place; delivered messages are history."""
    return effect.kind is EffectKind.TRAINING or \
        _addressing(effect.channel, channels) is Addressing.GROUPS


def _retirable(row: PlanRow, channels: Mapping[str, ChannelSpec]) -> bool:
    """Announcements and open tasks of a removed communication can be taken back; notes and
    messages already posted are history."""
    return _addressing(row.channel, channels) in (Addressing.GROUPS, Addressing.PERSON)


def _describe(effect: Effect) -> str:
    if effect.recipient is not None:
        due = f", due {effect.due}" if effect.due else ""
        return f"{effect.title!r} for {effect.recipient.name}{due}"
    if effect.ticket_id:
        return f"{effect.title!r} on {effect.ticket_id}"
    if effect.audience_groups:
        return f"{effect.title!r} to {', '.join(effect.audience_groups)}"
    return repr(effect.title)
