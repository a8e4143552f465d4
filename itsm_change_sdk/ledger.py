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
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from . import migrations
from .errors import ConfigurationError, ITSMError
from .ledger_tables import UTCDateTime, cursors, effects, events, feedback, signoffs
from .migrations import SchemaState, ensure_current, sqlite_begin
from .model import Effect, EffectRef, EffectResult, FeedbackResponse, TicketEvent, utcnow

__all__ = [
    "CONFIRMED", "DISMISSED", "EffectCounts", "EffectRow", "EventRow", "Ledger", "LedgerError",
    "PlanRow", "SignOff", "UTCDateTime",
    "open_engine", "safe_url", "schema_version", "upgrade_schema",
]

LEASE = timedelta(minutes=5)
CONFIRMED = "confirmed"
DISMISSED = "dismissed"
"""A person's review of inferred feedback; a dismissed item leaves the report and stays as a
label."""


class LedgerError(ITSMError):
    """The ledger's storage failed (a damaged file, a full disk, a read-only file, a database
    that cannot be reached). The message names the ledger and what to do; what was recorded
    before is intact."""


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


@dataclass(frozen=True, slots=True)
class PlanRow:
    """What planning needs to know of one effect row (:meth:`Ledger.plan_rows`): enough to
    diff, take a row over and retire it, and no more, so a long history stays small."""

    key: str
    platform: str
    kind: str
    channel: str
    state: str
    """``pending`` (intent recorded), ``done``, ``failed``, ``retired`` or ``skipped``."""
    fingerprint: str | None
    remote_id: str | None
    url: str | None
    recipient: str | None
    meta: Mapping[str, str]
    completed: bool
    due: Any

    @property
    def ref(self) -> EffectRef | None:
        if self.remote_id is None:
            return None
        return EffectRef(self.key, self.platform, self.remote_id, self.url)


@dataclass(frozen=True, slots=True)
class EffectRow(PlanRow):
    """One effect row with everything the ledger keeps about it."""

    program: str
    ticket_id: str | None
    title: str | None
    attempts: int
    last_error: str | None
    lease_until: datetime | None
    completed_at: datetime | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class EffectCounts:
    """A program's effects counted in the database (``itsm-change status``)."""

    by_state: Mapping[tuple[str, str], int]
    """(kind, state) -> rows."""
    training_assigned: int
    training_completed: int
    prompts: Mapping[str, tuple[int, int]]
    """prompt id -> (tickets matched, tickets prompted)."""
    failed: Sequence[tuple[str, str | None]]
    """(key, error) of every failed effect."""


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
    dead_at: datetime | None = None
    """Set when the event failed too many times; ``error`` is why."""


@dataclass(frozen=True)
class SignOff:
    program: str
    wave: str
    member: str
    signed_at: datetime
    note: str


_PLAN_COLUMNS = ("key", "platform", "kind", "channel", "state", "fingerprint", "remote_id",
                 "url", "recipient", "meta", "completed", "due")


class _Shared:
    """Repeated values of many rows (kinds, states, platforms, the same meta) held once:
    a program's history is mostly the same few strings."""

    def __init__(self) -> None:
        self.values: dict[Any, Any] = {}
        self.metas: dict[str | None, Mapping[str, str]] = {}

    def __call__(self, value: Any) -> Any:
        return self.values.setdefault(value, value)

    def meta(self, text: str | None) -> Mapping[str, str]:
        parsed = self.metas.get(text)
        if parsed is None:
            parsed = self.metas[text] = MappingProxyType(json.loads(text or "{}"))
        return parsed


_REPEATED = ("program", "platform", "kind", "channel", "state", "recipient", "due")


def _effect_row(row: sa.Row[Any], shared: _Shared | None = None) -> EffectRow:
    shared = shared or _Shared()
    data = dict(row._mapping)
    data["meta"] = shared.meta(data["meta"])
    for name in _REPEATED:
        data[name] = shared(data[name])
    data.pop("intent_fingerprint", None)
    data.pop("owner", None)
    return EffectRow(**data)


def _event_row(row: sa.Row[Any]) -> EventRow:
    data = dict(row._mapping)
    data.pop("lease_until", None)
    data.pop("owner", None)
    return EventRow(**data)


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
            self.engine: Engine = open_engine(url, ledger=True)
            ensure_current(self.engine, self.where, create=create)
        self._write_lock = threading.Lock()
        self._immediate = self.engine.execution_options(sqlite_begin="BEGIN IMMEDIATE")

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def writing(self) -> Iterator[sa.Connection]:
        """One write transaction. On SQLite the threads of this process take turns (a lock)
        and each transaction starts with ``BEGIN IMMEDIATE``, so writers queue for the file
        instead of failing with ``database is locked`` when a read turns into a write."""
        if self.engine.dialect.name != "sqlite":
            with self.engine.begin() as conn:
                yield conn
            return
        with self._write_lock, self._immediate.begin() as conn:
            yield conn

    def _insert_ignore(self, table: sa.Table, keys: list[str]) -> Any:
        """An insert that does nothing when the key exists (it then returns no row)."""
        dialect = self.engine.dialect.name
        if dialect == "postgresql":
            return postgresql.insert(table).on_conflict_do_nothing(index_elements=keys)
        if dialect == "sqlite":
            return sqlite.insert(table).on_conflict_do_nothing(index_elements=keys)
        raise ConfigurationError(
            f"the ledger at {self.where} uses {dialect}; use SQLite or PostgreSQL")

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
        shared = _Shared()
        with self.engine.connect() as conn:
            result = conn.execution_options(yield_per=2000).execute(query)
            return [_effect_row(r, shared) for r in result]

    def plan_rows(self, program: str) -> dict[str, PlanRow]:
        """``program``'s rows as planning diffs them, read column by column (no titles,
        errors or timestamps) and sharing repeated values, so memory stays small as history
        grows. Prompt rows are left out: ``sync`` writes and reads those, never a plan."""
        columns = [effects.c[name] for name in _PLAN_COLUMNS]
        query = (sa.select(*columns)
                 .where(effects.c.program == program, effects.c.kind != "prompt"))
        same = _Shared()
        out: dict[str, PlanRow] = {}
        with self.engine.connect() as conn:
            result = conn.execution_options(yield_per=2000).execute(query)
            for (key, platform, kind, channel, state, fingerprint, remote_id, url, recipient,
                 meta, completed, due) in result:
                out[key] = PlanRow(key, same(platform), same(kind), same(channel), same(state),
                                   fingerprint, remote_id, url, same(recipient),
                                   same.meta(meta), bool(completed), same(due))
        return out

    def effect_counts(self, program: str) -> EffectCounts:
        """What ``status`` shows, counted by the database: effects by kind and state,
        training assigned and completed, tickets matched and prompted per prompt."""
        scope = effects.c.program == program
        with self.engine.connect() as conn:
            by_state = {(kind, state): int(n) for kind, state, n in conn.execute(
                sa.select(effects.c.kind, effects.c.state, sa.func.count())
                .where(scope).group_by(effects.c.kind, effects.c.state))}
            completed = conn.execute(
                sa.select(sa.func.count()).where(
                    scope, effects.c.kind == "training", effects.c.state == "done",
                    effects.c.completed.is_(True))).scalar_one()
            prompt = self._meta_field("prompt")
            prompts = {str(name or ""): (int(matched), int(prompted or 0))
                       for name, matched, prompted in conn.execute(
                           sa.select(prompt, sa.func.count(),
                                     sa.func.sum(sa.case((effects.c.state == "done", 1),
                                                         else_=0)))
                           .where(scope, effects.c.kind == "prompt").group_by(prompt))}
            failed = [(key, error) for key, error in conn.execute(
                sa.select(effects.c.key, effects.c.last_error)
                .where(scope, effects.c.state == "failed").order_by(effects.c.key))]
        return EffectCounts(by_state, by_state.get(("training", "done"), 0), int(completed),
                            prompts, failed)

    def _meta_field(self, name: str) -> Any:
        """One field of the JSON ``meta`` column, read by the database."""
        if self.engine.dialect.name == "postgresql":
            return sa.cast(effects.c.meta, postgresql.JSONB)[name].astext
        return sa.func.json_extract(effects.c.meta, f"$.{name}")

    def get(self, key: str) -> EffectRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(effects).where(effects.c.key == key)).first()
        return _effect_row(row) if row is not None else None

    def claim(self, effect: Effect, now: datetime | None = None,
              seen: PlanRow | None = None) -> bool:
        """Record the intent to write ``effect``; False when another process got there first.

        ``seen`` is the row the caller planned from. With none, the key is new and only an
        insert claims it. Otherwise the row is taken over only while it is still as it was
        seen (a failed write, an update of the same version, a pending write whose lease has
        run out), so two processes that planned the same write never both send it.
        """
        return bool(self.claim_many([(effect, seen)], now))

    def record_result(
        self, effect: Effect, result: EffectResult, now: datetime | None = None
    ) -> None:
        """Record a write's outcome. An uncertain outcome stays ``pending`` (lease released)
        so the next run looks the key up before writing."""
        self.record_results([(effect, result)], now)

    def claim_many(self, items: Sequence[tuple[Effect, PlanRow | None]],
                   now: datetime | None = None) -> list[Effect]:
        """Claim a batch in one transaction (see :meth:`claim`); returns the effects this
        process now holds. Committed before the batch's platform call, so nothing is sent
        that was not durably claimed, at the cost of one commit per batch."""
        now = now or utcnow()
        owner = _owner()
        won: set[str] = set()
        fresh = [{**_effect_values(effect, now), "state": "pending", "attempts": 1,
                  "created_at": now, "completed": False, "lease_until": now + LEASE,
                  "owner": owner} for effect, seen in items if seen is None]
        with self.writing() as conn:
            if fresh:
                # One statement for the batch; a key someone else inserted first returns no
                # row, so it is not ours.
                won.update(conn.execute(
                    self._insert_ignore(effects, ["key"]).returning(effects.c.key), fresh,
                ).scalars())
            for effect, seen in items:
                if seen is None:
                    continue
                still = _still_as_seen(effect.key, seen, now)
                if still is None:
                    continue
                got = conn.execute(
                    effects.update().where(*still)
                    .values(**_effect_values(effect, now), state="pending",
                            attempts=effects.c.attempts + 1, lease_until=now + LEASE,
                            owner=owner))
                if got.rowcount == 1:
                    won.add(effect.key)
        return [effect for effect, _seen in items if effect.key in won]

    def record_results(self, pairs: Sequence[tuple[Effect, EffectResult]],
                       now: datetime | None = None) -> None:
        """Record a batch's outcomes in one transaction (see :meth:`record_result`). A kill
        before it commits leaves the batch ``pending``: the next run looks it up first.

        An uncertain outcome stays ``pending`` (lease released) so the next run looks the key
        up before writing; a failed update of something that exists stays ``done``."""
        if not pairs:
            return
        now = now or utcnow()
        by_key = effects.c.key == sa.bindparam("k")
        common = {"updated_at": now, "lease_until": None}
        shapes: dict[str, tuple[Any, list[dict[str, Any]]]] = {
            "sent": (effects.update().where(by_key).values(
                **common, state="done", fingerprint=sa.bindparam("fp"), last_error=None,
                remote_id=sa.bindparam("rid"), url=sa.bindparam("u")), []),
            "ok": (effects.update().where(by_key).values(
                **common, state="done", fingerprint=sa.bindparam("fp"), last_error=None), []),
            "uncertain": (effects.update().where(by_key).values(
                **common, state="pending", last_error=sa.bindparam("err")), []),
            "failed": (effects.update().where(by_key).values(
                **common, last_error=sa.bindparam("err"),
                state=sa.case((effects.c.remote_id.is_not(None), "done"), else_="failed")),
                []),
        }
        for effect, result in pairs:
            if result.ok and result.ref is not None:
                shapes["sent"][1].append({"k": effect.key, "fp": effect.fingerprint,
                                          "rid": result.ref.remote_id, "u": result.ref.url})
            elif result.ok:
                shapes["ok"][1].append({"k": effect.key, "fp": effect.fingerprint})
            else:
                shape = "uncertain" if result.uncertain else "failed"
                shapes[shape][1].append({"k": effect.key, "err": result.error})
        with self.writing() as conn:
            for statement, params in shapes.values():
                if params:
                    conn.execute(statement, params)

    def record_found(self, refs: EffectRef | Sequence[EffectRef],
                     now: datetime | None = None) -> None:
        """Pending keys found on the platform: the writes happened (one transaction)."""
        now = now or utcnow()
        params = [{"k": ref.key, "rid": ref.remote_id, "u": ref.url}
                  for ref in ([refs] if isinstance(refs, EffectRef) else refs)]
        if not params:
            return
        with self.writing() as conn:
            conn.execute(
                effects.update().where(effects.c.key == sa.bindparam("k")).values(
                    state="done", remote_id=sa.bindparam("rid"), url=sa.bindparam("u"),
                    updated_at=now, lease_until=None, last_error=None,
                    fingerprint=effects.c.intent_fingerprint,
                ), params)

    def release(self, keys: Sequence[str], now: datetime | None = None) -> None:
        """Give up claims without a result (the call never went out)."""
        now = now or utcnow()
        with self.writing() as conn:
            conn.execute(effects.update().where(effects.c.key.in_(list(keys)))
                         .values(lease_until=None, updated_at=now))

    def mark(self, key: str | Sequence[str], state: str, now: datetime | None = None,
             error: str | None = None) -> None:
        """Set the state of one key or of several (one transaction)."""
        now = now or utcnow()
        keys = [key] if isinstance(key, str) else list(key)
        if not keys:
            return
        with self.writing() as conn:
            conn.execute(effects.update().where(effects.c.key.in_(keys))
                         .values(state=state, updated_at=now, lease_until=None,
                                 last_error=error))

    def record_skipped(self, effect: Effect, reason: str, now: datetime | None = None) -> bool:
        """Record an occurrence deliberately not sent (superseded by a later one)."""
        return bool(self.record_skipped_many([(effect, reason)], now))

    def record_skipped_many(self, items: Sequence[tuple[Effect, str]],
                            now: datetime | None = None) -> int:
        """Record several skipped occurrences in one transaction; how many were new."""
        now = now or utcnow()
        new = 0
        with self.writing() as conn:
            for effect, reason in items:
                got = conn.execute(self._insert_ignore(effects, ["key"]).values(
                    **_effect_values(effect, now), state="skipped", attempts=0,
                    created_at=now, completed=False, last_error=reason,
                ).returning(effects.c.key))
                new += got.first() is not None
        return new

    def set_completed(self, key: str, completed: bool, at: datetime | None) -> bool:
        """Record a training completion (or a reopening); True when it changed."""
        with self.writing() as conn:
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
        with self.writing() as conn:
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
            with self.writing() as conn:
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
        with self.writing() as conn:
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
        with self.writing() as conn:
            rows = conn.execute(
                sa.select(events)
                .where(events.c.program == program, events.c.processed_at.is_(None),
                       events.c.dead_at.is_(None),
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
        with self.writing() as conn:
            conn.execute(events.update().where(events.c.id.in_(list(event_ids)))
                         .values(processed_at=now, lease_until=None, error=None))

    def fail_event(self, event_id: int, error: str, retry_at: datetime) -> None:
        """Processing failed: keep the error (redacted by the caller) and try again no
        sooner than ``retry_at``, so a poison event does not spin."""
        with self.writing() as conn:
            conn.execute(events.update().where(events.c.id == event_id)
                         .values(error=error[:2000], lease_until=retry_at))

    def bury_event(self, event_id: int, error: str, now: datetime | None = None) -> None:
        """Set an event aside after too many failures (a dead letter): it leaves the queue,
        keeps ``error`` as the reason, and waits for ``itsm-change events retry`` or
        ``drop``."""
        with self.writing() as conn:
            conn.execute(events.update().where(events.c.id == event_id)
                         .values(error=error[:2000], lease_until=None,
                                 dead_at=now or utcnow()))

    def dead_events(self, program: str, limit: int | None = None) -> list[EventRow]:
        """``program``'s dead letters, oldest first."""
        query = (sa.select(events).where(events.c.program == program,
                                         events.c.dead_at.is_not(None),
                                         events.c.processed_at.is_(None))
                 .order_by(events.c.id).limit(limit))
        with self.engine.connect() as conn:
            return [_event_row(r) for r in conn.execute(query)]

    def retry_events(self, program: str, ids: Sequence[int] | None = None) -> int:
        """Put dead letters back in the queue with a fresh count of attempts (all of the
        program's, or those ``ids``); how many."""
        with self.writing() as conn:
            done = conn.execute(events.update().where(*self._dead(program, ids))
                                .values(dead_at=None, attempts=0, lease_until=None))
        return int(done.rowcount)

    def drop_events(self, program: str, ids: Sequence[int] | None = None,
                    now: datetime | None = None) -> int:
        """Give dead letters up: recorded as processed (so a re-delivery is still known and
        ignored) with the reason kept; the retention sweep deletes them later."""
        with self.writing() as conn:
            done = conn.execute(events.update().where(*self._dead(program, ids))
                                .values(processed_at=now or utcnow(), lease_until=None))
        return int(done.rowcount)

    @staticmethod
    def _dead(program: str, ids: Sequence[int] | None) -> list[Any]:
        where = [events.c.program == program, events.c.dead_at.is_not(None),
                 events.c.processed_at.is_(None)]
        if ids is not None:
            where.append(events.c.id.in_(list(ids)))
        return where

    def purge_events(self, before: datetime) -> int:
        """Delete events processed before ``before`` (the retention sweep); how many. Every
        action an event asks for is idempotent, so one re-delivered after this is harmless."""
        with self.writing() as conn:
            done = conn.execute(events.delete().where(events.c.processed_at < before))
        return int(done.rowcount)

    def event_counts(self, program: str | None = None) -> dict[str, int]:
        """Events received, processed and dead (for one program, or all)."""
        scope = [] if program is None else [events.c.program == program]
        processed = events.c.processed_at.is_not(None)
        dead = sa.and_(events.c.dead_at.is_not(None), events.c.processed_at.is_(None))
        with self.engine.connect() as conn:
            total, done, buried = conn.execute(
                sa.select(sa.func.count(), sa.func.count().filter(processed),
                          sa.func.count().filter(dead))
                .select_from(events).where(*scope)).one()
        return {"received": int(total), "processed": int(done), "dead": int(buried)}

    def last_event(self, platform: str) -> datetime | None:
        """When the last webhook event from ``platform`` arrived (doctor shows it)."""
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.max(events.c.received_at))
                                .where(events.c.platform == platform)).scalar_one_or_none()

    # -- feedback -----------------------------------------------------------------------

    def add_feedback(self, response: FeedbackResponse) -> bool:
        """Record a response once; False when it was captured before."""
        try:
            with self.writing() as conn:
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
        with self.writing() as conn:
            done = conn.execute(feedback.update().where(
                feedback.c.program == program, feedback.c.id == feedback_id,
                feedback.c.inferred.is_(True)).values(review=verdict))
        return done.rowcount == 1

    # -- sign-offs ----------------------------------------------------------------------

    def sign_off(self, program: str, wave: str, member: str, note: str = "",
                 now: datetime | None = None) -> bool:
        """Record a sign-off; False when that member had signed the wave off already."""
        try:
            with self.writing() as conn:
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
        with self.writing() as conn:
            updated = conn.execute(cursors.update().where(cursors.c.name == name)
                                   .values(value=value, updated_at=now))
            if updated.rowcount == 0:
                conn.execute(cursors.insert().values(name=name, value=value, updated_at=now))

    # -- maintenance --------------------------------------------------------------------

    def forget_platform(self, platform: str) -> None:
        """Drop every record about one platform (the demo resets the sandbox this way)."""
        with self.writing() as conn:
            conn.execute(effects.delete().where(effects.c.platform == platform))
            conn.execute(events.delete().where(events.c.platform == platform))
            conn.execute(feedback.delete().where(feedback.c.platform == platform))
            conn.execute(cursors.delete().where(cursors.c.name.like(f"%:{platform}:%")))

    def forget_program(self, program: str) -> None:
        with self.writing() as conn:
            conn.execute(signoffs.delete().where(signoffs.c.program == program))
            conn.execute(cursors.delete().where(cursors.c.name.like(f"{program}:%")))


def _still_as_seen(key: str, seen: PlanRow, now: datetime) -> list[Any] | None:
    """The conditions under which a row is still as the planner saw it; None when it may
    not be taken over at all."""
    still = [effects.c.key == key, effects.c.state == seen.state]
    if seen.state == "pending":
        still.append(sa.or_(effects.c.lease_until.is_(None), effects.c.lease_until < now))
    elif seen.state == "done":
        still.append(effects.c.fingerprint == seen.fingerprint if seen.fingerprint
                     else effects.c.fingerprint.is_(None))
    elif seen.state != "failed":
        return None
    return still


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
    # WAL lets readers work while one process writes. synchronous=NORMAL in WAL mode: a
    # commit is in the log file (the operating system's cache) before it returns, so a
    # killed process loses nothing it committed; only a power cut or an operating-system
    # crash could lose the last commits.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


_FAULTS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("file is not a database", "malformed", "not a database"),
     "is not a readable ledger ({detail}): if it is your ledger, it is damaged: restore it "
     "from your backup; if --db or ITSM_CHANGE_DB points at another file, point it at the "
     "ledger. Nothing was written to it"),
    (("readonly database", "read-only", "readonly"),
     "is read-only ({detail}): make the file and its folder writable for this user, or point "
     "--db at a writable copy. Nothing was written"),
    (("disk is full", "database or disk is full", "no space left"),
     "cannot be written: the disk is full ({detail}). Free some space and run the command "
     "again: what was recorded is intact, and writes whose outcome was not recorded are "
     "looked up before anything is sent again"),
    (("database is locked", "database table is locked"),
     "stayed locked by another process for 30 s ({detail}): wait for the other command to "
     "finish, or stop the process holding it, then run again"),
    (("unable to open database file",),
     "cannot be opened ({detail}): check that its folder exists and this user may write "
     "there, or point --db at another path"),
    (("connection refused", "could not connect", "connection failed", "timeout expired",
      "could not translate host name", "name or service not known", "server closed"),
     "cannot be reached ({detail}): check that the database server is running and that "
     "--db or ITSM_CHANGE_DB names it correctly"),
    (("password authentication failed", "role", "does not exist", "permission denied"),
     "refused this connection ({detail}): check the user, password and database name in "
     "--db or ITSM_CHANGE_DB, and that the user may create tables"),
)


def storage_fault(where: str, exc: BaseException) -> LedgerError:
    """One plain message for a storage failure: which ledger, what is wrong, what to do."""
    detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    first = detail[0] if detail else type(exc).__name__
    lower = first.lower()
    for needles, text in _FAULTS:
        if any(needle in lower for needle in needles):
            return LedgerError(f"the ledger at {where} " + text.format(detail=first))
    return LedgerError(f"the ledger at {where} failed: {first}; check the disk or the "
                       "database server, then run the command again")


def _translate_faults(where: str) -> Any:
    def handle(context: sa.engine.ExceptionContext) -> None:
        error = context.sqlalchemy_exception
        # Integrity errors are how claims lose a race: the ledger handles them itself.
        if isinstance(error, sa.exc.IntegrityError | sa.exc.ProgrammingError):
            return
        if isinstance(error, sa.exc.DatabaseError):
            raise storage_fault(where, context.original_exception) from \
                context.original_exception
    return handle


def _driver_transactions_off(dbapi_connection: Any, _record: Any) -> None:
    # sqlite_begin decides how a ledger transaction starts (BEGIN IMMEDIATE for writes).
    dbapi_connection.isolation_level = None


@contextmanager
def _opening(where: str) -> Iterator[None]:
    """Turns a ledger that cannot be opened into one message that says what to check."""
    try:
        yield
    except sa.exc.DBAPIError as exc:
        raise ConfigurationError(str(storage_fault(where, exc))) from exc
    except LedgerError as exc:
        # Found on opening: the ledger named is the wrong one or cannot be used (exit 2).
        raise ConfigurationError(str(exc)) from exc
    except (sa.exc.ArgumentError, ModuleNotFoundError) as exc:
        raise ConfigurationError(
            f"cannot open the ledger at {where}: {str(exc).splitlines()[0]}; check "
            "--db or ITSM_CHANGE_DB (for PostgreSQL: pip install 'itsm-change-sdk[postgres]')"
        ) from exc


def schema_version(url: str) -> SchemaState:
    """The ledger's schema version (``itsm-change db current``), changing nothing."""
    where = safe_url(url)
    with _opening(where):
        engine = open_engine(url, ledger=True)
        try:
            return migrations.current(engine)
        finally:
            engine.dispose()


def upgrade_schema(url: str) -> tuple[str | None, str]:
    """Migrate the ledger to this release's schema (``itsm-change db upgrade``); returns the
    versions before and after."""
    where = safe_url(url)
    with _opening(where):
        engine = open_engine(url, ledger=True)
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


def open_engine(url: str, *, ledger: bool = False) -> Engine:
    """An engine for the ledger or the sandbox: SQLite files are shared by threads and
    processes (the event service), so they wait for locks and run in WAL mode. The ledger's
    own engine starts its transactions itself (:meth:`Ledger.writing`)."""
    if not url.startswith("sqlite"):
        engine = sa.create_engine(url, pool_pre_ping=True)
        if ledger:
            sa.event.listen(engine, "handle_error", _translate_faults(safe_url(url)))
        return engine
    engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
    sa.event.listen(engine, "connect", _sqlite_pragmas)
    if ledger:
        sa.event.listen(engine, "handle_error", _translate_faults(safe_url(url)))
        sa.event.listen(engine, "connect", _driver_transactions_off)
        sa.event.listen(engine, "begin", sqlite_begin)
    return engine
