"""Plain, typed objects for a change program and for what platforms hand back.

Nothing here knows a wire format: plugins map their payloads to and from these objects.
All datetimes are timezone-aware UTC.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any

__all__ = [
    "ADKAR_DIMENSIONS",
    "BUILTIN_CHANNELS",
    "Addressing",
    "AllianceMember",
    "Cadence",
    "Channel",
    "ChannelSpec",
    "Check",
    "CheckIn",
    "CheckStatus",
    "Comment",
    "CommunicationEvent",
    "Effect",
    "EffectKind",
    "EffectRef",
    "EffectResult",
    "FeedbackResponse",
    "Goal",
    "InstallStep",
    "Person",
    "Program",
    "Prompt",
    "Sponsor",
    "Survey",
    "Ticket",
    "TicketEvent",
    "TicketEventKind",
    "TicketFilter",
    "TrainingModule",
    "TrainingStatus",
    "Unit",
    "UnmarkedFeedback",
    "Wave",
    "WebhookRequest",
    "utcnow",
]

ADKAR_DIMENSIONS: tuple[str, ...] = (
    "awareness",
    "desire",
    "knowledge",
    "ability",
    "reinforcement",
)


def utcnow() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------------------------
# The program, as declared in a program file
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TicketFilter:
    """Which tickets a goal or prompt is about. Every non-empty field must match (AND);
    values within a field are alternatives (OR). Matching is case-insensitive.
    """

    platform: str | None = None
    kinds: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    priorities: tuple[str, ...] = ()

    def matches(self, ticket: Ticket) -> bool:
        if self.platform and ticket.platform != self.platform:
            return False
        checks = (
            (self.kinds, ticket.kind),
            (self.categories, ticket.category),
            (self.services, ticket.service),
            (self.groups, ticket.group),
            (self.channels, ticket.channel),
            (self.priorities, ticket.priority),
        )
        for wanted, actual in checks:
            if wanted and (actual or "").casefold() not in {w.casefold() for w in wanted}:
                return False
        return True

    def is_empty(self) -> bool:
        return not any(
            (self.kinds, self.categories, self.services, self.groups, self.channels,
             self.priorities)
        )


@dataclass(frozen=True)
class Goal:
    """An organisational goal and the KPI that shows it."""

    id: str
    title: str
    metric: str
    """A metric kind, e.g. ``channel_share`` or ``mean_time_to_resolve``."""
    baseline: float
    target: float
    filter: TicketFilter = field(default_factory=TicketFilter)
    params: Mapping[str, Any] = field(default_factory=dict)
    """Metric-specific settings, e.g. ``{"channel": "portal"}`` for ``channel_share``."""
    units: tuple[str, ...] = ()
    """Units the goal applies to; empty means every unit."""
    period: str = "week"

    @property
    def higher_is_better(self) -> bool:
        return self.target >= self.baseline


@dataclass(frozen=True)
class Wave:
    id: str
    title: str
    starts: date
    """Training is assigned and prompts switch on from this day."""
    go_live: date
    leaders_trained: bool = False
    """The gate also needs every member who signs this wave off to have completed the
    modules their units are asked to complete (``gate: {leaders_trained: true}``)."""


@dataclass(frozen=True)
class Unit:
    """A group of people rolled out together."""

    id: str
    title: str
    wave: str
    platform: str
    group: str | None = None
    """The platform's group (sys_id, group id or name) whose members form the unit."""
    members: tuple[str, ...] = ()
    """Explicit member ids, added to the group's members."""
    manager: str | None = None
    ticket_groups: tuple[str, ...] = ()
    """Assignment groups whose tickets count as this unit's (defaults to ``group``)."""

    def owns_ticket_group(self, group: str | None, group_id: str | None = None) -> bool:
        """Whether a ticket assigned to ``group`` (its name, or its id where the platform has
        one, as a unit may name its group either way) belongs to this unit."""
        names = {n.casefold() for n in self.ticket_groups or ((self.group,) if self.group
                                                              else ())}
        return any(g is not None and g.casefold() in names for g in (group, group_id))


@dataclass(frozen=True)
class AllianceMember:
    """A mid-level manager who speaks for a functional domain and signs waves off."""

    id: str
    name: str
    domain: str
    units: tuple[str, ...]
    signs_off: tuple[str, ...]
    """Wave ids this member must sign off before they start."""
    email: str | None = None


@dataclass(frozen=True)
class Sponsor:
    """A senior leader who sponsors the program: measured on what they do, like the
    alliance (their own training, acknowledgements), though they sign no wave off."""

    id: str
    name: str
    platform: str | None = None
    """Where their tasks (training) are delivered; by default the first unit's platform."""
    email: str | None = None


@dataclass(frozen=True)
class TrainingModule:
    id: str
    title: str
    objectives: tuple[str, ...]
    audience: tuple[str, ...]
    """Unit ids, and ``alliance`` or ``sponsors`` for the leaders themselves."""
    due_days: int
    """Days after the unit's wave starts by which the module is due."""
    completion: str = "attestation"
    """How completion is known: ``attestation`` (task closed), ``quiz`` or ``ticket_closed``."""
    link: str | None = None
    duration_minutes: int | None = None
    min_score: int | None = None


@dataclass(frozen=True)
class Cadence:
    """A repeating schedule: every ``every_days`` from ``start`` to ``until`` inclusive."""

    every_days: int
    start: datetime
    until: datetime

    def occurrences(self) -> list[datetime]:
        out = []
        current = self.start
        while current <= self.until:
            out.append(current)
            current += timedelta(days=self.every_days)
        return out


class Channel(StrEnum):
    """The names of the built-in channels, which every platform plugin delivers.

    Plugins register more through ``itsm_change_register_channels``; the planner and the
    runner know a channel only by its :class:`ChannelSpec`.
    """

    ANNOUNCEMENT = "announcement"
    """A platform announcement visible to the audience's groups."""
    TASK = "task"
    """A task per recipient (read and acknowledge)."""
    TICKET_NOTE = "ticket_note"
    """A note on the program's tracking record on the platform."""


class Addressing(StrEnum):
    """Whom one delivery on a channel is for; the planner makes its effects from this."""

    PERSON = "person"
    """One effect per person in the audience, delivered by their platform (a task to read
    and acknowledge). With a survey attached, each is a feedback request."""
    GROUPS = "groups"
    """One effect per platform, shown to the audience's groups for a while (an
    announcement); updated in place while visible, retired when the program drops it."""
    RECORD = "record"
    """One effect per platform, on the record the communication names there (``record``)."""
    AUDIENCE = "audience"
    """One effect for the whole audience, delivered by the channel's own plugin (a chat
    webhook) rather than by a platform."""


@dataclass(frozen=True)
class ChannelSpec:
    """A channel a communication can name, as registered by a plugin."""

    name: str
    addressing: Addressing
    description: str

    @property
    def delivered_by_platform(self) -> bool:
        return self.addressing is not Addressing.AUDIENCE


BUILTIN_CHANNELS: tuple[ChannelSpec, ...] = (
    ChannelSpec(Channel.ANNOUNCEMENT.value, Addressing.GROUPS,
                "a platform announcement visible to the audience's groups"),
    ChannelSpec(Channel.TASK.value, Addressing.PERSON,
                "a task per recipient, to read and acknowledge (or to answer a survey)"),
    ChannelSpec(Channel.TICKET_NOTE.value, Addressing.RECORD,
                "a staff-only note on the program's change record on each platform"),
)
"""The channels every platform plugin delivers (registered by ``itsm_change_sdk.channels``)."""


@dataclass(frozen=True)
class CommunicationEvent:
    id: str
    title: str
    channel: str
    """A registered channel's name (:class:`Channel` for the built-in ones)."""
    audience: tuple[str, ...]
    """Unit ids, or the word ``alliance`` for the management alliance."""
    template: str
    at: datetime | None = None
    cadence: Cadence | None = None
    survey: str | None = None
    record: Mapping[str, str] = field(default_factory=dict)
    """Per platform, the record a ``ticket_note`` goes on (e.g. ``{"sandbox": "CHG0001"}``)."""

    def occurrences(self) -> list[datetime]:
        if self.cadence is not None:
            return self.cadence.occurrences()
        return [self.at] if self.at is not None else []


@dataclass(frozen=True)
class CheckIn:
    """A recurring brief for each alliance member about their own units, built from the
    report's numbers: the rhythm that keeps functional managers carrying the change."""

    id: str
    title: str
    cadence: Cadence
    channel: str = "task"
    """A channel that addresses one person (a task): the brief names people overdue."""

    def occurrences(self) -> list[datetime]:
        return self.cadence.occurrences()


@dataclass(frozen=True)
class Survey:
    """An ADKAR pulse: each dimension scored 1-5, plus free text."""

    id: str
    title: str
    question: str
    dimensions: tuple[str, ...] = ADKAR_DIMENSIONS


@dataclass(frozen=True)
class Prompt:
    """Just-in-time guidance an agent sees on a matching ticket."""

    id: str
    title: str
    filter: TicketFilter
    text: str
    active_from: datetime
    active_until: datetime
    units: tuple[str, ...] = ()

    def active_at(self, when: datetime) -> bool:
        return self.active_from <= when <= self.active_until


@dataclass(frozen=True)
class UnmarkedFeedback:
    """The program's ``feedback:`` setting: find feedback in comments without the marker."""

    enabled: bool = False
    threshold: float = 0.5
    """Confidence from which an unmarked comment counts as feedback."""
    exclude_platforms: tuple[str, ...] = ()
    exclude_units: tuple[str, ...] = ()

    def covers(self, platform: str, unit: str | None) -> bool:
        """Whether comments on this platform and unit are read for unmarked feedback."""
        return (self.enabled and platform not in self.exclude_platforms
                and unit is not None and unit not in self.exclude_units)


@dataclass(frozen=True)
class Program:
    id: str
    title: str
    platforms: tuple[str, ...]
    goals: tuple[Goal, ...]
    waves: tuple[Wave, ...]
    units: tuple[Unit, ...]
    alliance: tuple[AllianceMember, ...]
    training: tuple[TrainingModule, ...]
    communications: tuple[CommunicationEvent, ...]
    surveys: tuple[Survey, ...]
    prompts: tuple[Prompt, ...]
    description: str = ""
    sponsor: str | None = None
    feedback_marker: str = "#feedback"
    unmarked_feedback: UnmarkedFeedback = field(default_factory=UnmarkedFeedback)
    training_threshold: float = 0.8
    """Share of assignments that must be complete before the next wave may start."""
    min_sample: int = 20
    """Tickets a unit needs since go-live before any goal can count as met for it."""
    gates: str = "advisory"
    """``advisory`` (gates only report) or ``enforce`` (``apply`` holds back closed waves)."""
    source: str | None = None
    """The file the program was loaded from."""
    checkins: tuple[CheckIn, ...] = ()
    sponsors: tuple[Sponsor, ...] = ()
    silence_days: int = 14
    """A live unit that has gone longer than this without a message is flagged."""

    def wave(self, wave_id: str) -> Wave:
        return next(w for w in self.waves if w.id == wave_id)

    def unit(self, unit_id: str) -> Unit:
        return next(u for u in self.units if u.id == unit_id)

    def survey(self, survey_id: str) -> Survey:
        return next(s for s in self.surveys if s.id == survey_id)

    def units_in_wave(self, wave_id: str) -> tuple[Unit, ...]:
        return tuple(u for u in self.units if u.wave == wave_id)

    def unit_for_ticket(self, ticket: Ticket) -> Unit | None:
        for unit in self.units:
            if unit.platform == ticket.platform and \
                    unit.owns_ticket_group(ticket.group, ticket.group_id):
                return unit
        return None

    def wave_started(self, unit: Unit, when: datetime) -> bool:
        return self.wave(unit.wave).starts <= when.date()


# --------------------------------------------------------------------------------------------
# What platforms hand back
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    id: str
    """The platform's id (sys_id, accountId, agent id ...)."""
    name: str
    platform: str
    email: str | None = None


@dataclass(frozen=True)
class Ticket:
    """A ticket as metrics and prompts need it; plugins fill what their platform knows."""

    platform: str
    id: str
    """The platform's stable id (sys_id, issue id, ticket id)."""
    number: str
    """What people call it (INC0012345, OPS-42, #1234)."""
    title: str
    kind: str
    state: str
    """``open``, ``resolved`` or ``closed``."""
    opened_at: datetime
    updated_at: datetime
    resolved_at: datetime | None = None
    category: str | None = None
    service: str | None = None
    group: str | None = None
    channel: str | None = None
    """How it was raised: ``portal``, ``email``, ``phone``, ``chat`` ..."""
    priority: str | None = None
    assignee: str | None = None
    requester: str | None = None
    reopen_count: int | None = None
    """None: the platform does not say (metrics that need it report "unknown")."""
    reassignment_count: int | None = None
    url: str | None = None
    group_id: str | None = None
    """The assignment group's id where the platform has one beside its name (ServiceNow's
    sys_id), so a unit that names its group by id owns its tickets."""

    @property
    def is_open(self) -> bool:
        return self.state == "open"


@dataclass(frozen=True)
class Comment:
    platform: str
    id: str
    ticket_id: str
    author: str
    created_at: datetime
    text: str
    internal: bool = False


class EffectKind(StrEnum):
    TRAINING = "training"
    MESSAGE = "message"
    FEEDBACK_REQUEST = "feedback_request"
    PROMPT = "prompt"


@dataclass(frozen=True)
class Effect:
    """One thing the program puts on a platform, named by its correlation key.

    The key is deterministic (``chg:<program>:<kind>:...``): a plugin stores it with the record
    so that it can find the record again after an uncertain failure, instead of writing twice.
    Bodies are plain text; plugins render them for their platform and never as markup.
    """

    key: str
    kind: EffectKind
    platform: str
    program: str
    title: str
    body: str
    channel: str
    """``task``, ``announcement``, ``ticket_note`` (internal), ``public_comment``."""
    recipient: Person | None = None
    ticket_id: str | None = None
    audience_groups: tuple[str, ...] = ()
    due: date | None = None
    visible_from: datetime | None = None
    visible_until: datetime | None = None
    meta: Mapping[str, str] = field(default_factory=dict)
    """Program context (unit, module, wave, occurrence) kept in the ledger for reporting."""

    @property
    def fingerprint(self) -> str:
        """A digest of what the platform shows; a change means the record needs an update."""
        payload = {
            "title": self.title,
            "body": self.body,
            "due": self.due.isoformat() if self.due else None,
            "visible_from": self.visible_from.isoformat() if self.visible_from else None,
            "visible_until": self.visible_until.isoformat() if self.visible_until else None,
            "audience": list(self.audience_groups),
            "recipient": self.recipient.id if self.recipient else None,
            "ticket": self.ticket_id,
        }
        raw = json.dumps(payload, sort_keys=True).encode()
        return hashlib.sha256(raw).hexdigest()[:16]



@dataclass(frozen=True)
class EffectRef:
    """Where an effect lives on its platform. ``remote_id`` is opaque to the core."""

    key: str
    platform: str
    remote_id: str
    url: str | None = None


@dataclass(frozen=True)
class EffectResult:
    """The outcome of one write.

    ``uncertain`` means the platform may or may not have acted (a timeout after sending):
    the runner looks the key up before it tries again.
    """

    key: str
    ok: bool
    ref: EffectRef | None = None
    error: str | None = None
    uncertain: bool = False
    retryable: bool = False


@dataclass(frozen=True)
class TrainingStatus:
    key: str
    completed: bool
    completed_at: datetime | None = None
    score: int | None = None


@dataclass(frozen=True)
class FeedbackResponse:
    """One person's answer, from a marked comment or the platform's own survey."""

    id: str
    """Unique per platform (e.g. ``comment:<id>``), so capture happens once."""
    platform: str
    program: str
    person: str
    submitted_at: datetime
    scores: Mapping[str, int]
    text: str
    source: str
    """``comment`` or ``survey``."""
    ticket_id: str | None = None
    unit: str | None = None
    survey: str | None = None
    inferred: bool = False
    """Found by the classifier in a comment without the marker, not given by its author."""
    confidence: float | None = None
    """For inferred feedback: how likely the comment is feedback about the change (0-1)."""
    dimension: str | None = None
    """For inferred feedback: the ADKAR dimension it speaks to."""
    sentiment: int | None = None
    """For inferred feedback: -1, 0 or 1."""


class TicketEventKind(StrEnum):
    TICKET_CREATED = "ticket_created"
    TICKET_UPDATED = "ticket_updated"
    COMMENT_ADDED = "comment_added"
    TASK_COMPLETED = "task_completed"
    TASK_REOPENED = "task_reopened"


@dataclass(frozen=True)
class TicketEvent:
    """Something that happened on a platform, from a webhook or a poll."""

    platform: str
    event_id: str
    """Stable across re-deliveries, so the event is processed once."""
    kind: TicketEventKind
    occurred_at: datetime
    ticket: Ticket | None = None
    ticket_id: str | None = None
    comment: Comment | None = None
    effect_key: str | None = None
    """For task events: the correlation key of the training task, where known."""
    needs_refresh: bool = False
    """True when the payload is only a hint and the ticket must be re-read via the API."""


@dataclass(frozen=True)
class WebhookRequest:
    """An incoming webhook, as the event service received it."""

    platform: str
    headers: Mapping[str, str]
    body: bytes
    query: Mapping[str, str] = field(default_factory=dict)
    secret: str | None = None
    """The shared secret configured for this platform, for the plugin to verify against."""

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return None


class CheckStatus(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class Check:
    """One line of ``itsm-change doctor``: what was checked and, if it failed, the fix."""

    platform: str
    name: str
    status: CheckStatus
    message: str
    fix: str | None = None


@dataclass(frozen=True)
class InstallStep:
    """One thing a platform needs (a field, a webhook, a business rule), and whether it is done.

    ``instructions`` is what an admin does by hand where the account cannot do it for us.
    """

    platform: str
    name: str
    done: bool
    message: str
    instructions: str | None = None
