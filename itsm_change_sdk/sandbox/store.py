"""The sandbox's ticket queue on the embedded database, and the staff actions on it.

This is the platform side of the sandbox: people, groups, tickets, tasks, notes,
announcements and survey answers. Staff actions (complete a task, answer a survey, comment)
are methods here so the CLI, the demo and tests can act as service-desk staff would.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from ..errors import ConfigurationError, NotFound
from ..ledger import UTCDateTime, open_engine
from ..model import Comment, Person, Ticket, TicketFilter, utcnow
from . import events as outbox

__all__ = ["SandboxStore"]

metadata = sa.MetaData()

people = sa.Table(
    "people", metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("email", sa.String(200), nullable=False, unique=True),
)
groups = sa.Table(
    "groups", metadata,
    sa.Column("name", sa.String(200), primary_key=True),
)
memberships = sa.Table(
    "memberships", metadata,
    sa.Column("group", sa.String(200), sa.ForeignKey("groups.name"), primary_key=True),
    sa.Column("person", sa.String(40), sa.ForeignKey("people.id"), primary_key=True),
)
tickets = sa.Table(
    "tickets", metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("number", sa.String(20), nullable=False, unique=True),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("kind", sa.String(30), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("category", sa.String(100)),
    sa.Column("service", sa.String(100)),
    sa.Column("group_name", sa.String(200)),
    sa.Column("channel", sa.String(30)),
    sa.Column("priority", sa.String(10)),
    sa.Column("requester", sa.String(40)),
    sa.Column("assignee", sa.String(40)),
    sa.Column("opened_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False, index=True),
    sa.Column("resolved_at", UTCDateTime),
    sa.Column("reopen_count", sa.Integer, nullable=False, default=0),
    sa.Column("reassignment_count", sa.Integer, nullable=False, default=0),
    sa.Index("ix_tickets_updated_seq", "updated_at", "seq"),
)
tasks = sa.Table(
    "tasks", metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("number", sa.String(20), nullable=False, unique=True),
    sa.Column("key", sa.String(300), nullable=False, unique=True),
    sa.Column("kind", sa.String(30), nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("assignee", sa.String(40), nullable=False),
    sa.Column("due", sa.Date),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("closed_at", UTCDateTime),
)
notes = sa.Table(
    "notes", metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ticket", sa.String(20), nullable=False, index=True),
    sa.Column("key", sa.String(300), unique=True),
    sa.Column("author", sa.String(200), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("internal", sa.Boolean, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False, index=True),
)
announcements = sa.Table(
    "announcements", metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(300), nullable=False, unique=True),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("groups", sa.Text, nullable=False),
    sa.Column("visible_from", UTCDateTime),
    sa.Column("visible_until", UTCDateTime),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)
survey_answers = sa.Table(
    "survey_answers", metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("task", sa.String(20), nullable=False, unique=True),
    sa.Column("person", sa.String(40), nullable=False),
    sa.Column("scores", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("answered_at", UTCDateTime, nullable=False),
)

TASK_PREFIX = {"training": "TRN", "ack": "ACK", "feedback": "SRV"}
_PAGE = 5000


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class SandboxStore:
    """The sandbox's database. ``clock`` gives "now" so a rehearsal can run on a simulated
    calendar."""

    def __init__(self, url: str, clock: Callable[[], datetime] = utcnow) -> None:
        self.url = url
        self.clock = clock
        self.page_size = _PAGE
        try:
            self.engine: Engine = open_engine(url)
            metadata.create_all(self.engine)
            outbox.create(self.engine)
        except (sa.exc.OperationalError, sa.exc.ArgumentError) as exc:
            raise ConfigurationError(
                f"cannot open the sandbox database {url}: {str(exc).splitlines()[0]}; "
                "check ITSM_CHANGE_SANDBOX_DB"
            ) from exc

    def latest_activity(self) -> datetime | None:
        """The latest moment anything in the sandbox happened at (None when it is empty).

        A rehearsal on a simulated calendar (the demo) can leave this ahead of the real clock.
        """
        columns = (tickets.c.updated_at, tasks.c.updated_at, notes.c.created_at,
                   announcements.c.updated_at, survey_answers.c.answered_at)
        with self.engine.connect() as conn:
            found = [conn.execute(sa.select(sa.func.max(column))).scalar() for column in columns]
        moments = [moment for moment in found if moment is not None]
        return max(moments) if moments else None

    def reset(self) -> None:
        metadata.drop_all(self.engine)
        outbox.drop(self.engine)
        metadata.create_all(self.engine)
        outbox.create(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    # -- directory ---------------------------------------------------------------------

    def add_person(self, name: str, email: str, person_id: str | None = None) -> Person:
        with self.engine.begin() as conn:
            if person_id is None:
                count = conn.execute(sa.select(sa.func.count()).select_from(people)).scalar_one()
                person_id = f"u-{count + 1:04d}"
            conn.execute(people.insert().values(id=person_id, name=name, email=email))
        return Person(person_id, name, "sandbox", email)

    def add_group(self, name: str, members: list[Person]) -> str:
        with self.engine.begin() as conn:
            conn.execute(groups.insert().values(name=name))
            for person in members:
                conn.execute(memberships.insert().values(group=name, person=person.id))
        return name

    def person(self, person_id: str) -> Person | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(people).where(
                sa.or_(people.c.id == person_id, people.c.email == person_id))).first()
        return Person(row.id, row.name, "sandbox", row.email) if row else None

    def people(self) -> list[Person]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(people).order_by(people.c.id)).all()
        return [Person(r.id, r.name, "sandbox", r.email) for r in rows]

    def groups_of(self, person_id: str) -> list[str]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(memberships.c.group)
                                .where(memberships.c.person == person_id)
                                .order_by(memberships.c.group)).all()
        return [r.group for r in rows]

    def group_members(self, name: str) -> list[Person] | None:
        with self.engine.connect() as conn:
            if conn.execute(sa.select(groups).where(groups.c.name == name)).first() is None:
                return None
            rows = conn.execute(
                sa.select(people).join(memberships, memberships.c.person == people.c.id)
                .where(memberships.c.group == name).order_by(people.c.id)
            ).all()
        return [Person(r.id, r.name, "sandbox", r.email) for r in rows]

    # -- tickets -----------------------------------------------------------------------

    def add_ticket(self, *, title: str, opened_at: datetime | None = None,
                   kind: str = "incident", category: str | None = None,
                   service: str | None = None, group: str | None = None,
                   channel: str | None = "portal", priority: str | None = "3",
                   requester: str | None = None, assignee: str | None = None) -> Ticket:
        opened_at = opened_at or self.clock()
        prefix = {"incident": "INC", "request": "REQ", "change": "CHG"}.get(kind, "TKT")
        with self.engine.begin() as conn:
            result = conn.execute(tickets.insert().values(
                number="pending", title=title, kind=kind, state="open", category=category,
                service=service, group_name=group, channel=channel, priority=priority,
                requester=requester, assignee=assignee, opened_at=opened_at,
                updated_at=opened_at, reopen_count=0, reassignment_count=0,
            ))
            seq = result.inserted_primary_key[0] if result.inserted_primary_key else 0
            number = f"{prefix}{1000 + int(seq):07d}"
            conn.execute(tickets.update().where(tickets.c.seq == seq).values(number=number))
            outbox.record_event(conn, "ticket_created", opened_at, ticket=number)
        ticket = self.ticket(number)
        assert ticket is not None
        return ticket

    def update_ticket(self, number: str, at: datetime | None = None, **changes: Any) -> Ticket:
        at = at or self.clock()
        current = self.ticket(number)
        if current is None:
            raise NotFound(f"no ticket {number}", platform="sandbox")
        values = dict(changes)
        if "group" in values:
            group = values.pop("group")
            if group != current.group:
                values["group_name"] = group
                values["reassignment_count"] = (current.reassignment_count or 0) + 1
        state = values.get("state")
        if state in ("resolved", "closed") and current.state == "open":
            values.setdefault("resolved_at", at)
        if state == "open" and current.state != "open":
            values["resolved_at"] = None
            values["reopen_count"] = (current.reopen_count or 0) + 1
        with self.engine.begin() as conn:
            conn.execute(tickets.update().where(tickets.c.number == number)
                         .values(**values, updated_at=at))
            outbox.record_event(conn, "ticket_updated", at, ticket=number)
        ticket = self.ticket(number)
        assert ticket is not None
        return ticket

    def ticket(self, number: str) -> Ticket | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(tickets).where(tickets.c.number == number)).first()
        return _ticket(row) if row else None

    def tickets(self, filter: TicketFilter | None = None, since: datetime | None = None,
                open_only: bool = False) -> Iterator[Ticket]:
        """Tickets updated after ``since``, oldest update first, read a page at a time."""
        conditions: list[Any] = []
        if filter is not None:
            for values, column in (
                (filter.kinds, tickets.c.kind), (filter.categories, tickets.c.category),
                (filter.services, tickets.c.service), (filter.groups, tickets.c.group_name),
                (filter.channels, tickets.c.channel), (filter.priorities, tickets.c.priority),
            ):
                if values:
                    conditions.append(sa.func.lower(column).in_([v.lower() for v in values]))
        if open_only:
            conditions.append(tickets.c.state == "open")
        last: tuple[datetime, int] | None = None
        while True:
            query = sa.select(tickets).where(*conditions)
            if since is not None:
                query = query.where(tickets.c.updated_at > since)
            if last is not None:
                # A row-value comparison walks the (updated_at, seq) index from the cursor.
                query = query.where(sa.tuple_(tickets.c.updated_at, tickets.c.seq)
                                    > sa.tuple_(sa.literal(last[0], UTCDateTime()),
                                                sa.literal(last[1])))
            query = query.order_by(tickets.c.updated_at, tickets.c.seq).limit(self.page_size)
            with self.engine.connect() as conn:
                rows = conn.execute(query).all()
            for row in rows:
                yield _ticket(row)
            if len(rows) < self.page_size:
                return
            last = (rows[-1].updated_at, rows[-1].seq)

    # -- notes -------------------------------------------------------------------------

    def add_note(self, ticket: str, author: str, text: str, *, internal: bool,
                 key: str | None = None, at: datetime | None = None) -> str:
        at = at or self.clock()
        if self.ticket(ticket) is None:
            raise NotFound(f"no ticket {ticket}", platform="sandbox")
        with self.engine.begin() as conn:
            result = conn.execute(notes.insert().values(
                ticket=ticket, key=key, author=author, text=text, internal=internal,
                created_at=at,
            ))
            conn.execute(tickets.update().where(tickets.c.number == ticket)
                         .values(updated_at=at))
            number = f"N{int(result.inserted_primary_key[0]):07d}"  # type: ignore[index]
            if key is None:  # staff comments only; our own notes are no event
                outbox.record_event(conn, "comment_added", at, ticket=ticket,
                                    comment_id=number, author=author, text=text,
                                    internal=internal)
        return number

    def notes(self, ticket: str) -> list[Comment]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(notes).where(notes.c.ticket == ticket)
                                .order_by(notes.c.seq)).all()
        return [_comment(r) for r in rows]

    def notes_containing(self, marker: str, since: datetime | None) -> Iterator[Comment]:
        query = sa.select(notes).where(
            notes.c.text.like(f"%{_like_escape(marker)}%", escape="\\"),
            notes.c.key.is_(None),
        )
        if since is not None:
            query = query.where(notes.c.created_at > since)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(notes.c.created_at, notes.c.seq)).all()
        return (_comment(r) for r in rows)

    # -- tasks -------------------------------------------------------------------------

    def upsert_task(self, *, key: str, kind: str, title: str, body: str, assignee: str,
                    due: date | None) -> str:
        """Create the task for ``key``, or update it in place; returns its number."""
        now = self.clock()
        existing = self.task_by_key(key)
        with self.engine.begin() as conn:
            if existing is not None:
                conn.execute(tasks.update().where(tasks.c.key == key).values(
                    title=title, body=body, assignee=assignee, due=due, updated_at=now))
                return str(existing["number"])
            result = conn.execute(tasks.insert().values(
                number=f"pending-{key}", key=key, kind=kind, title=title, body=body,
                assignee=assignee, due=due, state="open", created_at=now, updated_at=now,
            ))
            seq = int(result.inserted_primary_key[0])  # type: ignore[index]
            number = f"{TASK_PREFIX.get(kind, 'TSK')}{1000 + seq:07d}"
            conn.execute(tasks.update().where(tasks.c.seq == seq).values(number=number))
        return number

    def task_by_key(self, key: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(tasks).where(tasks.c.key == key)).first()
        return dict(row._mapping) if row else None

    def task(self, number: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(tasks).where(tasks.c.number == number)).first()
        return dict(row._mapping) if row else None

    def tasks_by_numbers(self, numbers: list[str]) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(tasks).where(tasks.c.number.in_(numbers))).all()
        return [dict(r._mapping) for r in rows]

    def all_tasks(self, kind: str | None = None, assignee: str | None = None
                  ) -> list[dict[str, Any]]:
        query = sa.select(tasks).order_by(tasks.c.seq)
        if kind:
            query = query.where(tasks.c.kind == kind)
        if assignee:
            query = query.where(tasks.c.assignee == assignee)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def set_task_state(self, number: str, state: str, at: datetime | None = None) -> None:
        """``open``, ``closed`` (done by the assignee) or ``cancelled`` (retired)."""
        at = at or self.clock()
        task = self.task(number)
        if task is None:
            raise NotFound(f"no task {number}", platform="sandbox")
        closed_at = at if state == "closed" else None
        with self.engine.begin() as conn:
            conn.execute(tasks.update().where(tasks.c.number == number)
                         .values(state=state, updated_at=at, closed_at=closed_at))
            if state != task["state"] and "closed" in (state, task["state"]):
                event = "task_completed" if state == "closed" else "task_reopened"
                outbox.record_event(conn, event, at, ticket=number, effect_key=task["key"])

    def answer_survey(self, task_number: str, scores: Mapping[str, int], text: str,
                      at: datetime | None = None) -> None:
        """Answer a feedback task's survey, as its assignee, and close the task."""
        at = at or self.clock()
        task = self.task(task_number)
        if task is None or task["kind"] != "feedback":
            raise NotFound(f"no survey task {task_number}", platform="sandbox")
        try:
            with self.engine.begin() as conn:
                conn.execute(survey_answers.insert().values(
                    task=task_number, person=task["assignee"],
                    scores=json.dumps(dict(scores), sort_keys=True), text=text, answered_at=at,
                ))
        except IntegrityError as exc:
            raise NotFound(f"survey task {task_number} was answered already",
                           platform="sandbox") from exc
        self.set_task_state(task_number, "closed", at)

    def survey_answers(self, since: datetime | None) -> list[dict[str, Any]]:
        query = (sa.select(survey_answers, tasks.c.key)
                 .join(tasks, tasks.c.number == survey_answers.c.task)
                 .order_by(survey_answers.c.answered_at))
        if since is not None:
            query = query.where(survey_answers.c.answered_at > since)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    # -- announcements -----------------------------------------------------------------

    def upsert_announcement(self, *, key: str, title: str, body: str, audience: list[str],
                            visible_from: datetime | None, visible_until: datetime | None
                            ) -> str:
        now = self.clock()
        values = dict(title=title, body=body, groups=json.dumps(audience),
                      visible_from=visible_from, visible_until=visible_until, updated_at=now)
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(announcements.c.seq)
                               .where(announcements.c.key == key)).first()
            if row is not None:
                conn.execute(announcements.update().where(announcements.c.key == key)
                             .values(**values))
                return f"ANN{1000 + row.seq:07d}"
            result = conn.execute(announcements.insert().values(
                key=key, state="active", created_at=now, **values))
            return f"ANN{1000 + int(result.inserted_primary_key[0]):07d}"  # type: ignore[index]

    def announcements(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(announcements).order_by(announcements.c.seq)).all()
        return [dict(r._mapping) | {"number": f"ANN{1000 + r.seq:07d}",
                                    "groups": json.loads(r.groups)} for r in rows]

    def retire_announcement(self, number: str) -> bool:
        seq = int(number.removeprefix("ANN")) - 1000
        with self.engine.begin() as conn:
            result = conn.execute(announcements.update().where(announcements.c.seq == seq)
                                  .values(state="retired", updated_at=self.clock()))
        return result.rowcount == 1

    def find_keys(self, keys: list[str]) -> dict[str, str]:
        """Correlation key -> record number, across tasks, notes and announcements."""
        found: dict[str, str] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(sa.select(tasks.c.key, tasks.c.number)
                                    .where(tasks.c.key.in_(keys))):
                found[row.key] = row.number
            for row in conn.execute(sa.select(notes.c.key, notes.c.seq)
                                    .where(notes.c.key.in_(keys))):
                found[row.key] = f"N{row.seq:07d}"
            for row in conn.execute(sa.select(announcements.c.key, announcements.c.seq)
                                    .where(announcements.c.key.in_(keys))):
                found[row.key] = f"ANN{1000 + row.seq:07d}"
        return found


def _ticket(row: Any) -> Ticket:
    return Ticket(
        platform="sandbox", id=row.number, number=row.number, title=row.title, kind=row.kind,
        state=row.state, opened_at=row.opened_at, updated_at=row.updated_at,
        resolved_at=row.resolved_at, category=row.category, service=row.service,
        group=row.group_name, channel=row.channel, priority=row.priority,
        assignee=row.assignee, requester=row.requester, reopen_count=row.reopen_count,
        reassignment_count=row.reassignment_count,
    )


def _comment(row: Any) -> Comment:
    return Comment(platform="sandbox", id=f"N{row.seq:07d}", ticket_id=row.ticket,
                   author=row.author, created_at=row.created_at, text=row.text,
                   internal=row.internal)

