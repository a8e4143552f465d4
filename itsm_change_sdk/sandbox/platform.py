"""The sandbox platform: every platform hook, implemented on :class:`SandboxStore`.

It is the embedded default (the demo and rehearsals run on it) and the reference
implementation a plugin author can read next to the hook docs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from ..config import sandbox_url
from ..errors import NotFound, TimeoutException, UnsupportedOperation, WebhookRejected
from ..hookspecs import hookimpl
from ..http.retry import RetryPolicy, create_once
from ..model import (
    Check,
    CheckStatus,
    Comment,
    Effect,
    EffectKind,
    EffectRef,
    EffectResult,
    FeedbackResponse,
    InstallStep,
    Person,
    Program,
    Ticket,
    TicketEvent,
    TicketEventKind,
    TicketFilter,
    TrainingStatus,
    Unit,
    WebhookRequest,
    utcnow,
)
from ..webhooks import verify_hmac_sha256
from .events import Forwarder
from .store import SandboxStore

__all__ = ["SandboxPlatform"]

NAME = "sandbox"
SIGNATURE_HEADER = "X-Sandbox-Signature"


class SandboxPlatform:
    """The sandbox's platform instance.

    :ivar faults: test hook: ``"before"`` makes the next create time out before applying,
        ``"after"`` applies it and then times out (the caller never hears back).
    """

    def __init__(self, store: SandboxStore) -> None:
        self.store = store
        self.faults: list[str] = []
        self.policy = RetryPolicy(attempts=3, sleep=lambda _s: None)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any],
                      clock: Callable[[], datetime] = utcnow) -> SandboxPlatform:
        return cls(SandboxStore(sandbox_url(settings.get("db")), clock=clock))

    def close(self) -> None:
        self.store.close()

    # -- writes --------------------------------------------------------------------------

    def _write(self, effect: Effect, apply: Callable[[], str]) -> EffectResult:
        """Apply one create through the same create-once path a REST plugin uses."""

        def send() -> EffectRef:
            fault = self.faults.pop(0) if self.faults else None
            if fault == "before":
                raise TimeoutException("simulated timeout", platform=NAME, method="POST")
            number = apply()
            if fault == "after":
                raise TimeoutException("simulated timeout", platform=NAME, method="POST")
            return EffectRef(effect.key, NAME, number)

        def lookup() -> EffectRef | None:
            found = self.store.find_keys([effect.key])
            return EffectRef(effect.key, NAME, found[effect.key]) if effect.key in found else None

        try:
            return EffectResult(effect.key, True, create_once(send, lookup, self.policy))
        except NotFound as exc:
            return EffectResult(effect.key, False, error=str(exc))
        except TimeoutException as exc:
            return EffectResult(effect.key, False, error=str(exc), uncertain=True)

    def _task(self, effect: Effect, kind: str) -> EffectResult:
        if effect.recipient is None:
            return EffectResult(effect.key, False, error="a task needs a recipient")
        recipient = effect.recipient
        return self._write(effect, lambda: self.store.upsert_task(
            key=effect.key, kind=kind, title=effect.title, body=effect.body,
            assignee=recipient.id, due=effect.due))

    def _note(self, effect: Effect, internal: bool) -> EffectResult:
        if effect.ticket_id is None:
            return EffectResult(effect.key, False, error="a note needs a ticket")
        ticket_id = effect.ticket_id
        return self._write(effect, lambda: self.store.add_note(
            ticket_id, "itsm-change", effect.body, internal=internal, key=effect.key))

    def _announce(self, effect: Effect) -> EffectResult:
        return self._write(effect, lambda: self.store.upsert_announcement(
            key=effect.key, title=effect.title, body=effect.body,
            audience=list(effect.audience_groups), visible_from=effect.visible_from,
            visible_until=effect.visible_until))

    @hookimpl
    def itsm_change_publish_training(
        self, effects: Sequence[Effect], known: Mapping[str, EffectRef]
    ) -> list[EffectResult]:
        return [self._task(effect, "training") for effect in effects]

    @hookimpl
    def itsm_change_deliver_communication(
        self, effects: Sequence[Effect], known: Mapping[str, EffectRef]
    ) -> list[EffectResult]:
        results = []
        for effect in effects:
            if effect.channel == "announcement":
                results.append(self._announce(effect))
            elif effect.channel == "task":
                results.append(self._task(effect, "ack"))
            elif effect.channel in ("ticket_note", "public_comment"):
                results.append(self._note(effect, internal=effect.channel == "ticket_note"))
            else:
                raise UnsupportedOperation(f"sandbox has no channel {effect.channel!r}")
        return results

    @hookimpl
    def itsm_change_request_feedback(
        self, effects: Sequence[Effect], known: Mapping[str, EffectRef]
    ) -> list[EffectResult]:
        return [self._task(effect, "feedback") for effect in effects]

    @hookimpl
    def itsm_change_post_prompts(
        self, effects: Sequence[Effect], known: Mapping[str, EffectRef]
    ) -> list[EffectResult]:
        return [
            EffectResult(e.key, True, known[e.key]) if e.key in known else self._note(e, True)
            for e in effects
        ]

    @hookimpl
    def itsm_change_retire_effects(self, refs: Sequence[EffectRef]) -> list[EffectResult]:
        results = []
        for ref in refs:
            if ref.remote_id.startswith("ANN"):
                self.store.retire_announcement(ref.remote_id)
            elif self.store.task(ref.remote_id) is not None:
                self.store.set_task_state(ref.remote_id, "cancelled")
            results.append(EffectResult(ref.key, True, ref))
        return results

    # -- reads ---------------------------------------------------------------------------

    @hookimpl
    def itsm_change_find_effects(self, kind: EffectKind, keys: Sequence[str]) -> list[EffectRef]:
        found = self.store.find_keys(list(keys))
        return [EffectRef(key, NAME, number) for key, number in found.items()]

    @hookimpl
    def itsm_change_training_status(self, refs: Sequence[EffectRef]) -> list[TrainingStatus]:
        by_number = {t["number"]: t for t in self.store.tasks_by_numbers(
            [r.remote_id for r in refs])}
        statuses = []
        for ref in refs:
            task = by_number.get(ref.remote_id)
            if task is not None:
                done = task["state"] == "closed"
                statuses.append(TrainingStatus(ref.key, done, task["closed_at"] if done else None))
        return statuses

    @hookimpl
    def itsm_change_find_comments(self, marker: str, since: datetime | None) -> Iterable[Comment]:
        return self.store.notes_containing(marker, since)

    @hookimpl
    def itsm_change_collect_survey_answers(
        self, program: Program, since: datetime | None
    ) -> Iterable[FeedbackResponse]:
        prefix = f"chg:{program.id}:"
        for row in self.store.survey_answers(since):
            if not row["key"].startswith(prefix):
                continue
            yield FeedbackResponse(
                id=f"survey:{row['task']}", platform=NAME, program=program.id,
                person=row["person"], submitted_at=row["answered_at"],
                scores=json.loads(row["scores"]), text=row["text"], source="survey",
            )

    @hookimpl
    def itsm_change_find_tickets(
        self, filter: TicketFilter, since: datetime | None, open_only: bool
    ) -> Iterable[Ticket]:
        return self.store.tickets(filter, since, open_only)

    @hookimpl
    def itsm_change_stream_tickets(self, since: datetime | None) -> Iterable[Ticket]:
        return self.store.tickets(None, since)

    @hookimpl
    def itsm_change_get_ticket(self, ticket_id: str) -> Ticket | None:
        return self.store.ticket(ticket_id)

    @hookimpl
    def itsm_change_unit_members(self, unit: Unit) -> list[Person]:
        members: dict[str, Person] = {}
        if unit.group:
            found = self.store.group_members(unit.group)
            if found is None:
                raise NotFound(f"sandbox has no group named {unit.group!r} (unit {unit.id})",
                               platform=NAME)
            members.update((p.id, p) for p in found)
        for member in unit.members:
            person = self.store.person(member)
            if person is None:
                raise NotFound(f"sandbox has no person {member!r} (unit {unit.id})",
                               platform=NAME)
            members[person.id] = person
        return list(members.values())

    # -- admin and events ----------------------------------------------------------------

    @hookimpl
    def itsm_change_doctor(self) -> list[Check]:
        people = len(self.store.people())
        status = CheckStatus.OK if people else CheckStatus.WARN
        return [
            Check(NAME, "database", CheckStatus.OK, f"sandbox database at {self.store.url}"),
            Check(NAME, "directory", status, f"{people} people in the sandbox",
                  None if people else "run 'itsm-change demo' or 'itsm-change sandbox seed'"),
        ]

    @hookimpl
    def itsm_change_install(
        self, webhook_url: str | None, apply: bool, remove: bool
    ) -> list[InstallStep]:
        return [InstallStep(NAME, "nothing to install", True,
                            "the sandbox needs no fields, rules or webhooks")]

    @hookimpl
    def itsm_change_event_forwarder(self, webhook_url: str, secret: str) -> Forwarder:
        """Staff actions are outbox rows in the sandbox database; post them, signed."""
        return Forwarder(self.store.engine, webhook_url, secret)

    @hookimpl
    def itsm_change_parse_webhook(self, request: WebhookRequest) -> list[TicketEvent]:
        """Sandbox events: JSON signed with HMAC-SHA256 of the body in ``X-Sandbox-Signature``."""
        verify_hmac_sha256(request, SIGNATURE_HEADER)
        try:
            data = json.loads(request.body)
            kind = TicketEventKind(data["event"])
            occurred = datetime.fromisoformat(data["occurred_at"])
            event_id = str(data["id"])
        except (ValueError, KeyError, TypeError) as exc:
            raise WebhookRejected(400, f"malformed sandbox event: {exc}") from exc
        comment = None
        if kind is TicketEventKind.COMMENT_ADDED:
            comment = Comment(NAME, str(data["comment_id"]), str(data["ticket"]),
                              str(data.get("author", "")), occurred, str(data.get("text", "")),
                              bool(data.get("internal", False)))
        return [TicketEvent(NAME, event_id, kind, occurred, ticket_id=data.get("ticket"),
                            comment=comment, effect_key=data.get("effect_key"),
                            needs_refresh=kind in (TicketEventKind.TICKET_CREATED,
                                                   TicketEventKind.TICKET_UPDATED))]

