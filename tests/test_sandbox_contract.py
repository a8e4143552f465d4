"""The sandbox passes the contract suite every platform plugin passes."""

from __future__ import annotations

from datetime import datetime

import pytest

from itsm_change_sdk.model import EffectKind, EffectRef, Person, Ticket
from itsm_change_sdk.sandbox.platform import SandboxPlatform
from itsm_change_sdk.sandbox.store import SandboxStore
from itsm_change_sdk.testing import Capabilities, RemoteRecord
from itsm_change_sdk.testing.contract import PlatformContract


class SandboxDouble:
    name = "sandbox"
    capabilities = Capabilities(survey_answers=True, forwards_events=True, webhooks=False,
                                http=False)

    def __init__(self, platform: SandboxPlatform) -> None:
        self.platform = platform
        self.store = platform.store
        self.writes = 0
        original = self.store.engine

        from sqlalchemy import event

        @event.listens_for(original, "before_cursor_execute")
        def count(conn, cursor, statement, *args):
            if statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
                self.writes += 1

    def add_person(self, name: str, email: str) -> Person:
        return self.store.add_person(name, email)

    def add_group(self, name: str, members: list[Person]) -> str:
        return self.store.add_group(name, members)

    def add_ticket(self, *, title, opened_at, kind="incident", category=None, group=None,
                   channel="portal", requester=None) -> Ticket:
        return self.store.add_ticket(title=title, opened_at=opened_at, kind=kind,
                                     category=category, group=group, channel=channel,
                                     requester=requester.id if requester else None)

    def add_comment(self, ticket_id: str, author: Person, text: str, at: datetime,
                    internal: bool = False) -> None:
        self.store.add_note(ticket_id, author.id, text, internal=internal, at=at)

    def complete_task(self, ref: EffectRef, at: datetime) -> None:
        self.store.set_task_state(ref.remote_id, "closed", at)

    def reopen_task(self, ref: EffectRef, at: datetime) -> None:
        self.store.set_task_state(ref.remote_id, "open", at)

    def records(self, kind: EffectKind) -> list[RemoteRecord]:
        out = []
        task_kind = {EffectKind.TRAINING: "training", EffectKind.FEEDBACK_REQUEST: "feedback",
                     EffectKind.MESSAGE: "ack"}.get(kind)
        if task_kind:
            for task in self.store.all_tasks(kind=task_kind):
                out.append(RemoteRecord(task["key"], kind, task["number"], task["title"],
                                        task["body"], task["state"] == "open",
                                        task["assignee"], task["due"]))
        if kind is EffectKind.MESSAGE:
            for ann in self.store.announcements():
                out.append(RemoteRecord(ann["key"], kind, ann["number"], ann["title"],
                                        ann["body"], ann["state"] == "active",
                                        audience_groups=tuple(ann["groups"])))
        if kind in (EffectKind.MESSAGE, EffectKind.PROMPT):
            wanted = ":prompt:" if kind is EffectKind.PROMPT else ":comm:"
            for ticket in self.store.tickets():
                for note in self.store.notes(ticket.number):
                    key = self._note_key(note.id)
                    if key and wanted in key:
                        out.append(RemoteRecord(key, kind, note.id, "", note.text, True,
                                                ticket_id=ticket.number))
        return out

    def _note_key(self, note_id: str) -> str | None:
        import sqlalchemy as sa

        from itsm_change_sdk.sandbox.store import notes

        with self.store.engine.connect() as conn:
            return conn.execute(sa.select(notes.c.key)
                                .where(notes.c.seq == int(note_id[1:]))).scalar_one_or_none()

    def answer_survey(self, ref: EffectRef, person: Person, scores, text: str,
                      at: datetime) -> None:
        self.store.answer_survey(ref.remote_id, scores, text, at)

    def fail_next_write(self, after_apply: bool) -> None:
        self.platform.faults.append("after" if after_apply else "before")

    def write_calls(self) -> int:
        return self.writes

    def set_page_size(self, size: int) -> None:
        self.store.page_size = size

    def settings(self) -> dict[str, str]:
        return {"db": self.store.url}


@pytest.fixture
def platform(tmp_path) -> SandboxPlatform:
    return SandboxPlatform(SandboxStore(f"sqlite:///{tmp_path / 'sandbox.db'}"))


@pytest.fixture
def double(platform: SandboxPlatform) -> SandboxDouble:
    return SandboxDouble(platform)


class TestSandboxContract(PlatformContract):
    pass
