"""What a platform plugin's tests hand to the contract suite.

A :class:`PlatformDouble` is the test-side control of a platform: for the sandbox it is the
sandbox database; for a REST plugin it is a stateful fake of the platform's API built on
``responses`` callbacks, answering with the payload shapes the platform documents. The
contract suite drives the plugin through its hooks and checks the outcome through the double.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol, runtime_checkable

from ..model import EffectKind, EffectRef, Person, Ticket, WebhookRequest

__all__ = ["Capabilities", "PlatformDouble", "RemoteRecord"]


@dataclass(frozen=True)
class Capabilities:
    """What the platform can do; contract tests for the rest are skipped, not passed."""

    channels: frozenset[str] = frozenset({"task", "announcement", "ticket_note"})
    survey_answers: bool = False
    """The platform's own survey answers can be collected."""
    forwards_events: bool = False
    """The platform cannot call webhooks; its events are forwarded
    (``itsm_change_event_forwarder``)."""
    webhooks: bool = True
    """The platform calls ``itsm-change serve``'s webhook itself."""
    http: bool = True
    """The plugin talks HTTP (the error-matrix and fault tests apply)."""
    filter_checks: bool = False
    """The plugin checks filter values against the platform (``itsm_change_check_filters``)."""


@dataclass(frozen=True)
class RemoteRecord:
    """A record the plugin wrote, as the double sees it on the platform."""

    key: str
    kind: EffectKind
    remote_id: str
    title: str
    body: str
    open: bool
    assignee: str | None = None
    due: date | None = None
    ticket_id: str | None = None
    audience_groups: tuple[str, ...] = ()


@runtime_checkable
class PlatformDouble(Protocol):
    """Test-side control of one platform."""

    name: str
    capabilities: Capabilities

    def add_person(self, name: str, email: str) -> Person:
        """A person who can be assigned tasks and write comments."""
        ...

    def add_group(self, name: str, members: list[Person]) -> str:
        """A group; returns the reference a :class:`~itsm_change_sdk.model.Unit` names."""
        ...

    def add_ticket(
        self,
        *,
        title: str,
        opened_at: datetime,
        kind: str = "incident",
        category: str | None = None,
        group: str | None = None,
        channel: str | None = "portal",
        requester: Person | None = None,
    ) -> Ticket:
        """A ticket, as if raised by a user at ``opened_at`` (also its update time)."""
        ...

    def add_comment(
        self, ticket_id: str, author: Person, text: str, at: datetime, internal: bool = False
    ) -> None:
        ...

    def complete_task(self, ref: EffectRef, at: datetime) -> None:
        """Close a training task as its assignee would."""
        ...

    def reopen_task(self, ref: EffectRef, at: datetime) -> None:
        ...

    def records(self, kind: EffectKind) -> list[RemoteRecord]:
        """Every record of ``kind`` the plugin has written (notes, tasks, announcements)."""
        ...

    def fail_next_write(self, after_apply: bool) -> None:
        """Make the next create time out; with ``after_apply`` the platform applies it first
        (the worst case: the write happened but the caller never heard)."""
        ...

    def write_calls(self) -> int:
        """Write requests received so far (POST, PUT, PATCH, DELETE, batch items counted once
        per HTTP call)."""
        ...

    def answer_survey(self, ref: EffectRef, person: Person, scores: Mapping[str, int],
                      text: str, at: datetime) -> None:
        """Answer the survey a feedback request (``ref``) asked for, as ``person`` would on
        the platform's own survey feature. Only called when ``capabilities.survey_answers``."""
        ...

    def webhook_request(self, ticket: Ticket, *, forged: bool = False) -> WebhookRequest:
        """The webhook the platform sends when ``ticket`` is updated (as ``install`` sets it
        up), carrying the configured secret or signature (a wrong one when ``forged``), with
        ``secret`` set to the configured secret as the event service passes it. Only called
        when ``capabilities.webhooks``."""
        ...

    def refuse_next_request(self, status: int) -> str:
        """Answer the plugin's next API request with ``status`` and the error body the
        platform documents for it; return the message that body carries. Only called when
        ``capabilities.http``."""
        ...

    def set_page_size(self, size: int) -> None:
        """Make list endpoints answer in pages of ``size`` (to test pagination)."""
        ...

    def settings(self) -> Mapping[str, str]:
        """Settings that point the plugin at this double."""
        ...
