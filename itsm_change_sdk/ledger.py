"""The ledger: every effect the program has on a platform, recorded so nothing is lost or
done twice.

Intent is recorded before a platform call and the result after. A row left ``pending`` by a
process that died is *uncertain*: the runner looks its key up on the platform before it
sends again. Rows are claimed with an insert on the primary key, so two processes sharing a
PostgreSQL ledger never both act on the same key; a claim carries a lease so a dead
process's claim can be taken over.

SQLite (a per-user file) by default; any SQLAlchemy URL works (PostgreSQL for several
replicas). Nothing secret is ever stored here.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError

from . import migrations
from .errors import ConfigurationError
from .ledger_tables import UTCDateTime, cursors, effects, events, feedback, signoffs
from .migrations import SchemaState, ensure_current
from .model import Effect, EffectRef, EffectResult, FeedbackResponse, TicketEvent, utcnow

__all__ = [
    "CONFIRMED", "DISMISSED", "EffectRow", "EventRow", "Ledger", "SignOff", "UTCDateTime",
    "open_engine", "safe_url", "schema_version", "upgrade_schema",
]

LEASE = timedelta(minutes=5)
CONFIRMED = "confirmed"
DISMISSED = "dismissed"
"""A person's review of inferred feedback; a dismissed item leaves the report and stays as a
label."""


def _owner() -> str:
    # Re-read per call: a forked worker has its own pid.
    return f"{socket.gethostname()}:{os.getpid()}"


def _dead_local_owner(owner: str | None) -> bool:
    """True for a claim held by a process on this host that no longer runs."""
    if not owner:
        return False
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@dataclass(frozen=True)
class EffectRow:
    key: str
    program: str
    platform: str
    kind: str
    channel: str
    state: str
    """``pending`` (intent recorded), ``done``, ``failed``, ``retired`` or ``skipped``."""
    fingerprint: str | None
    remote_id: str | None
    url: str | None
    recipient: str | None
    ticket_id: str | None
    title: str | None
    meta: Mapping[str, str]
    attempts: int
    last_error: str | None
    lease_until: datetime | None
    completed: bool
    completed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    due: Any = None

    @property
    def ref(self) -> EffectRef | None:
        if self.remote_id is None:
            return None
        return EffectRef(self.key, self.platform, self.remote_id, self.url)


@dataclass(frozen=True)
class EventRow:
    id: int
    program: str
    platform: str
    event_id: str
    kind: str
    payload: str
    received_at: datetime
    processed_at: datetime | None
    attempts: int
    error: str | None


@dataclass(frozen=True)
class SignOff:
    program: str
    wave: str
    member: str
    signed_at: datetime
    note: str


def _effect_row(row: sa.Row[Any]) -> EffectRow:
    data = dict(row._mapping)
    data["meta"] = json.loads(data["meta"] or "{}")
    data.pop("intent_fingerprint", None)
    data.pop("owner", None)
    return EffectRow(**data)


def _feedback_response(row: sa.Row[Any]) -> FeedbackResponse:
    return FeedbackResponse(
        id=row.id.split(":", 1)[1], platform=row.platform, program=row.program,
        person=row.person, submitted_at=row.submitted_at, scores=json.loads(row.scores),
        text=row.text, source=row.source, ticket_id=row.ticket_id, unit=row.unit,
        survey=row.survey, inferred=row.inferred, confidence=row.confidence,
        dimension=row.dimension, sentiment=row.sentiment,
    )


class Ledger:
    """The SDK's record of effects, events, feedback, sign-offs and sync cursors.

    :param url: an SQLAlchemy URL (``sqlite:///path`` or ``postgresql+psycopg://...``).
    """

    def __init__(self, url: str, *, create: bool = True) -> None:
        self.url = url
        self.where = safe_url(url)
        with _opening(self.where):
            self.engine: Engine = open_engine(url)
            ensure_current(self.engine, self.where, create=create)

    def close(self) -> None:
        self.engine.dispose()

    # -- effects ------------------------------------------------------------------------

    def effects(
        self,
        program: str | None = None,
        *,
        kind: str | None = None,
        platform: str | None = None,
        states: Iterable[str] | None = None,
    ) -> list[EffectRow]:
        query = sa.select(effects).order_by(effects.c.key)
        if program is not None:
            query = query.where(effects.c.program == program)
        if kind is not None:
            query = query.where(effects.c.kind == kind)
        if platform is not None:
            query = query.where(effects.c.platform == platform)
        if states is not None:
            query = query.where(effects.c.state.in_(list(states)))
        with self.engine.connect() as conn:
            return [_effect_row(r) for r in conn.execute(query)]

    def get(self, key: str) -> EffectRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(effects).where(effects.c.key == key)).first()
        return _effect_row(row) if row is not None else None

    def claim(self, effect: Effect, now: datetime | None = None,
              seen: EffectRow | None = None) -> bool:
        """Record the intent to write ``effect``; False when another process got there first.

        ``seen`` is the row the caller planned from. With none, the key is new and only an
        insert claims it. Otherwise the row is taken over only while it is still as it was
        seen (a failed write, an update of the same version, a pending write whose lease has
        run out), so two processes that planned the same write never both send it.
        """
        now = now or utcnow()
        values = _effect_values(effect, now)
        if seen is None:
            try:
                with self.engine.begin() as conn:
                    conn.execute(effects.insert().values(
                        **values, state="pending", attempts=1, created_at=now,
                        completed=False, lease_until=now + LEASE, owner=_owner(),
                    ))
                return True
            except IntegrityError:
                return False
        still = [effects.c.key == effect.key, effects.c.state == seen.state]
        if seen.state == "pending":
            still.append(sa.or_(effects.c.lease_until.is_(None), effects.c.lease_until < now))
        elif seen.state == "done":
            still.append(effects.c.fingerprint == seen.fingerprint if seen.fingerprint
                         else effects.c.fingerprint.is_(None))
        elif seen.state != "failed":
            return False
        with self.engine.begin() as conn:
            updated = conn.execute(
                effects.update().where(*still)
                .values(**values, state="pending", attempts=effects.c.attempts + 1,
                        lease_until=now + LEASE, owner=_owner())
            )
            return updated.rowcount == 1

    def record_result(
        self, effect: Effect, result: EffectResult, now: datetime | None = None
    ) -> None:
        """Record a write's outcome. An uncertain outcome stays ``pending`` (lease released)
        so the next run looks the key up before writing."""
        now = now or utcnow()
        values: dict[str, Any] = {"updated_at": now, "lease_until": None}
        if result.ok:
            values.update(state="done", fingerprint=effect.fingerprint, last_error=None)
            if result.ref is not None:
                values.update(remote_id=result.ref.remote_id, url=result.ref.url)
        elif result.uncertain:
            values.update(state="pending", last_error=result.error)
        else:
            existing = self.get(effect.key)
            was_done = existing is not None and existing.remote_id is not None
            values.update(state="done" if was_done else "failed", last_error=result.error)
        with self.engine.begin() as conn:
            conn.execute(effects.update().where(effects.c.key == effect.key).values(**values))

    def record_found(self, ref: EffectRef, now: datetime | None = None) -> None:
        """A pending key was found on the platform: the write happened."""
        now = now or utcnow()
        with self.engine.begin() as conn:
            conn.execute(
                effects.update().where(effects.c.key == ref.key).values(
                    state="done", remote_id=ref.remote_id, url=ref.url, updated_at=now,
                    lease_until=None, last_error=None,
                    fingerprint=effects.c.intent_fingerprint,
                )
            )

    def release(self, keys: Sequence[str], now: datetime | None = None) -> None:
        """Give up claims without a result (the call never went out)."""
        now = now or utcnow()
        with self.engine.begin() as conn:
            conn.execute(effects.update().where(effects.c.key.in_(list(keys)))
                         .values(lease_until=None, updated_at=now))

    def mark(self, key: str, state: str, now: datetime | None = None,
             error: str | None = None) -> None:
        now = now or utcnow()
        with self.engine.begin() as conn:
            conn.execute(effects.update().where(effects.c.key == key)
                         .values(state=state, updated_at=now, lease_until=None,
                                 last_error=error))

    def record_skipped(self, effect: Effect, reason: str, now: datetime | None = None) -> bool:
        """Record an occurrence deliberately not sent (superseded by a later one)."""
        now = now or utcnow()
        try:
            with self.engine.begin() as conn:
                conn.execute(effects.insert().values(
                    **_effect_values(effect, now), state="skipped", attempts=0,
                    created_at=now, completed=False, last_error=reason,
                ))
            return True
        except IntegrityError:
            return False

    def set_completed(self, key: str, completed: bool, at: datetime | None) -> bool:
        """Record a training completion (or a reopening); True when it changed."""
        with self.engine.begin() as conn:
            result = conn.execute(
                effects.update()
                .where(effects.c.key == key, effects.c.completed != completed)
                .values(completed=completed, completed_at=at if completed else None)
            )
            return result.rowcount == 1

    def release_dead_owners(self, now: datetime | None = None) -> int:
        """Free the claims of processes on this host that died holding them (killed mid-run),
        so a re-run need not wait for their leases to expire. Claims of live processes, and
        of other hosts, are left to their leases."""
        now = now or utcnow()
        released = 0
        with self.engine.begin() as conn:
            for table in (effects, events):
                owners = conn.execute(
                    sa.select(table.c.owner).distinct()
                    .where(table.c.lease_until.is_not(None), table.c.lease_until >= now)
                ).scalars().all()
                dead = [o for o in owners if _dead_local_owner(o)]
                if dead:
                    result = conn.execute(table.update().where(table.c.owner.in_(dead))
                                          .values(lease_until=None))
                    released += result.rowcount
        return released

    # -- events -------------------------------------------------------------------------

    def add_event(self, event: TicketEvent, payload: str, now: datetime | None = None,
                  program: str = "") -> int | None:
        """Record an event durably for ``program``; None when it was recorded before (a
        re-delivery)."""
        now = now or utcnow()
        try:
            with self.engine.begin() as conn:
                result = conn.execute(events.insert().values(
                    program=program, platform=event.platform, event_id=event.event_id,
                    kind=str(event.kind), payload=payload, received_at=now, attempts=0,
                ))
            key = result.inserted_primary_key
            return int(key[0]) if key else None
        except IntegrityError:
            return None

    def add_events(self, items: Sequence[tuple[TicketEvent, str]],
                   now: datetime | None = None, program: str = "") -> list[bool]:
        """Record several events in one transaction (one disk flush for many webhook
        requests); per event, True when new and False for a re-delivery."""
        now = now or utcnow()
        dialect = self.engine.dialect.name
        if dialect not in ("sqlite", "postgresql"):
            return [self.add_event(event, payload, now, program) is not None
                    for event, payload in items]
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        fresh: list[bool] = []
        with self.engine.begin() as conn:
            for event, payload in items:
                statement = insert(events).values(
                    program=program, platform=event.platform, event_id=event.event_id,
                    kind=str(event.kind), payload=payload, received_at=now, attempts=0,
                ).on_conflict_do_nothing(index_elements=["program", "platform", "event_id"]
                                         ).returning(events.c.id)
                fresh.append(conn.execute(statement).first() is not None)
        return fresh

    def claim_events(self, limit: int = 100, now: datetime | None = None,
                     program: str = "") -> list[EventRow]:
        """``program``'s unprocessed events whose lease is free, claimed for this process."""
        now = now or utcnow()
        self.release_dead_owners(now)
        claimed: list[EventRow] = []
        with self.engine.begin() as conn:
            rows = conn.execute(
                sa.select(events)
                .where(events.c.program == program, events.c.processed_at.is_(None),
                       sa.or_(events.c.lease_until.is_(None), events.c.lease_until < now))
                .order_by(events.c.id).limit(limit)
            ).all()
            for row in rows:
                got = conn.execute(
                    events.update()
                    .where(events.c.id == row.id,
                           sa.or_(events.c.lease_until.is_(None), events.c.lease_until < now))
                    .values(lease_until=now + LEASE, attempts=events.c.attempts + 1,
                            owner=_owner())
                )
                if got.rowcount == 1:
                    data = dict(row._mapping)
                    data.pop("lease_until")
                    data.pop("owner")
                    data["attempts"] += 1  # this claim is an attempt
                    claimed.append(EventRow(**data))
        return claimed

    def finish_events(self, event_ids: Sequence[int], now: datetime | None = None) -> None:
        """These events were processed (one commit for a batch: processing is idempotent, so
        a crash before it only means the batch is processed again)."""
        if not event_ids:
            return
        now = now or utcnow()
        with self.engine.begin() as conn:
            conn.execute(events.update().where(events.c.id.in_(list(event_ids)))
                         .values(processed_at=now, lease_until=None, error=None))

    def fail_event(self, event_id: int, error: str, retry_at: datetime) -> None:
        """Processing failed: keep the error (redacted by the caller) and try again no
        sooner than ``retry_at``, so a poison event does not spin."""
        with self.engine.begin() as conn:
            conn.execute(events.update().where(events.c.id == event_id)
                         .values(error=error[:2000], lease_until=retry_at))

    def event_counts(self, program: str | None = None) -> dict[str, int]:
        """Events received and processed (for one program, or all)."""
        scope = [] if program is None else [events.c.program == program]
        with self.engine.connect() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(events)
                                 .where(*scope)).scalar_one()
            done = conn.execute(sa.select(sa.func.count()).select_from(events)
                                .where(events.c.processed_at.is_not(None), *scope)).scalar_one()
        return {"received": int(total), "processed": int(done)}

    def last_event(self, platform: str) -> datetime | None:
        """When the last webhook event from ``platform`` arrived (doctor shows it)."""
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.max(events.c.received_at))
                                .where(events.c.platform == platform)).scalar_one_or_none()

    # -- feedback -----------------------------------------------------------------------

    def add_feedback(self, response: FeedbackResponse) -> bool:
        """Record a response once; False when it was captured before."""
        try:
            with self.engine.begin() as conn:
                conn.execute(feedback.insert().values(
                    id=f"{response.platform}:{response.id}", program=response.program,
                    platform=response.platform, person=response.person, unit=response.unit,
                    survey=response.survey, ticket_id=response.ticket_id,
                    submitted_at=response.submitted_at,
                    scores=json.dumps(dict(response.scores), sort_keys=True),
                    text=response.text, source=response.source, inferred=response.inferred,
                    confidence=response.confidence, dimension=response.dimension,
                    sentiment=response.sentiment,
                ))
            return True
        except IntegrityError:
            return False

    def feedback(self, program: str, inferred: bool = False) -> Iterator[FeedbackResponse]:
        """The program's feedback in time order: what people marked or answered, or with
        ``inferred`` what the classifier found in unmarked comments (dismissed items left
        out)."""
        query = (sa.select(feedback)
                 .where(feedback.c.program == program, feedback.c.inferred == inferred,
                        sa.or_(feedback.c.review.is_(None), feedback.c.review != DISMISSED))
                 .order_by(feedback.c.submitted_at, feedback.c.id))
        with self.engine.connect() as conn:
            for row in conn.execute(query):
                yield _feedback_response(row)

    def feedback_to_review(self, program: str, *, reviewed: bool = False,
                           ) -> Iterator[tuple[str, str | None, FeedbackResponse]]:
        """``(id, review, response)`` for inferred feedback not yet reviewed (or all)."""
        query = sa.select(feedback).where(feedback.c.program == program,
                                          feedback.c.inferred.is_(True))
        if not reviewed:
            query = query.where(feedback.c.review.is_(None))
        with self.engine.connect() as conn:
            for row in conn.execute(query.order_by(feedback.c.submitted_at, feedback.c.id)):
                yield row.id, row.review, _feedback_response(row)

    def review_feedback(self, program: str, feedback_id: str, verdict: str) -> bool:
        """Confirm or dismiss one inferred item; False when the program has no such item."""
        if verdict not in (CONFIRMED, DISMISSED):
            raise ValueError(f"unknown verdict {verdict!r}")
        with self.engine.begin() as conn:
            done = conn.execute(feedback.update().where(
                feedback.c.program == program, feedback.c.id == feedback_id,
                feedback.c.inferred.is_(True)).values(review=verdict))
        return done.rowcount == 1

    # -- sign-offs ----------------------------------------------------------------------

    def sign_off(self, program: str, wave: str, member: str, note: str = "",
                 now: datetime | None = None) -> bool:
        """Record a sign-off; False when that member had signed the wave off already."""
        try:
            with self.engine.begin() as conn:
                conn.execute(signoffs.insert().values(
                    program=program, wave=wave, member=member,
                    signed_at=now or utcnow(), note=note,
                ))
            return True
        except IntegrityError:
            return False

    def signoffs(self, program: str) -> list[SignOff]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(signoffs).where(signoffs.c.program == program)
                                .order_by(signoffs.c.wave, signoffs.c.member))
            return [SignOff(**dict(r._mapping)) for r in rows]

    # -- cursors ------------------------------------------------------------------------

    def cursor(self, name: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(cursors.c.value).where(cursors.c.name == name)
                                ).scalar_one_or_none()

    def set_cursor(self, name: str, value: str, now: datetime | None = None) -> None:
        now = now or utcnow()
        with self.engine.begin() as conn:
            updated = conn.execute(cursors.update().where(cursors.c.name == name)
                                   .values(value=value, updated_at=now))
            if updated.rowcount == 0:
                conn.execute(cursors.insert().values(name=name, value=value, updated_at=now))

    # -- maintenance --------------------------------------------------------------------

    def forget_platform(self, platform: str) -> None:
        """Drop every record about one platform (the demo resets the sandbox this way)."""
        with self.engine.begin() as conn:
            conn.execute(effects.delete().where(effects.c.platform == platform))
            conn.execute(events.delete().where(events.c.platform == platform))
            conn.execute(feedback.delete().where(feedback.c.platform == platform))
            conn.execute(cursors.delete().where(cursors.c.name.like(f"%:{platform}:%")))

    def forget_program(self, program: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(signoffs.delete().where(signoffs.c.program == program))
            conn.execute(cursors.delete().where(cursors.c.name.like(f"{program}:%")))


def _effect_values(effect: Effect, now: datetime) -> dict[str, Any]:
    return dict(
        key=effect.key, program=effect.program, platform=effect.platform,
        kind=str(effect.kind), channel=effect.channel,
        intent_fingerprint=effect.fingerprint,
        recipient=effect.recipient.id if effect.recipient else None,
        ticket_id=effect.ticket_id, title=effect.title,
        meta=json.dumps(dict(effect.meta), sort_keys=True), due=effect.due, updated_at=now,
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers work while one process writes; synchronous=FULL keeps a committed
    # row on disk before we acknowledge anything that depends on it.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


@contextmanager
def _opening(where: str) -> Iterator[None]:
    """Turns a ledger that cannot be opened into one message that says what to check."""
    try:
        yield
    except (OperationalError, sa.exc.ArgumentError, ModuleNotFoundError) as exc:
        raise ConfigurationError(
            f"cannot open the ledger at {where}: {str(exc).splitlines()[0]}; check "
            "--db or ITSM_CHANGE_DB (for PostgreSQL: pip install 'itsm-change-sdk[postgres]')"
        ) from exc


def schema_version(url: str) -> SchemaState:
    """The ledger's schema version (``itsm-change db current``), changing nothing."""
    where = safe_url(url)
    with _opening(where):
        engine = open_engine(url)
        try:
            return migrations.current(engine)
        finally:
            engine.dispose()


def upgrade_schema(url: str) -> tuple[str | None, str]:
    """Migrate the ledger to this release's schema (``itsm-change db upgrade``); returns the
    versions before and after."""
    where = safe_url(url)
    with _opening(where):
        engine = open_engine(url)
        try:
            return migrations.upgrade(engine, where)
        finally:
            engine.dispose()


def safe_url(url: str) -> str:
    """The ledger's URL as messages may show it (no password)."""
    if "://" not in url:
        return url
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return url.split("://", 1)[0] + "://..."


def open_engine(url: str) -> Engine:
    """An engine for the ledger or the sandbox: SQLite files are shared by threads and
    processes (the event service), so they wait for locks and run in WAL mode."""
    if not url.startswith("sqlite"):
        return sa.create_engine(url, pool_pre_ping=True)
    engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
    sa.event.listen(engine, "connect", _sqlite_pragmas)
    return engine
