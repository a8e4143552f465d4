"""The ledger reads and claims a task needs for one event or one batch.

The ledger's own queue claims a program's oldest events; a task names its event, so it
claims that one row, under the same lease and owner rules (see :mod:`itsm_change_sdk.ledger`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa

from ..ledger import LEASE, EffectRow, EventRow, Ledger, _effect_row, _owner
from ..ledger_tables import effects, events

__all__ = ["claim_event", "current_rows", "waiting_events"]


def _claim(ledger: Ledger, where: list[sa.ColumnElement[bool]], now: datetime
           ) -> EventRow | None:
    free = sa.or_(events.c.lease_until.is_(None), events.c.lease_until < now)
    with ledger.writing() as conn:
        got = conn.execute(
            events.update().where(*where, events.c.processed_at.is_(None),
                                  events.c.dead_at.is_(None), free)
            .values(lease_until=now + LEASE, attempts=events.c.attempts + 1, owner=_owner()))
        if got.rowcount != 1:
            return None
        row = conn.execute(sa.select(events).where(*where)).one()
    data = dict(row._mapping)
    data.pop("lease_until")
    data.pop("owner")
    return EventRow(**data)


def claim_event(ledger: Ledger, program: str, platform: str, event_id: str,
                now: datetime) -> EventRow | None:
    """Claim one recorded event for this process; None when it is processed already, or
    another live process holds it (a claim left by a process on this host that died is
    released first, so a redelivered task takes its event over at once)."""
    where = [events.c.program == program, events.c.platform == platform,
             events.c.event_id == event_id]
    row = _claim(ledger, where, now)
    if row is None and ledger.release_dead_owners(now):
        row = _claim(ledger, where, now)
    return row


def waiting_events(ledger: Ledger, program: str, now: datetime, older_than: timedelta,
                   limit: int = 1000) -> list[tuple[str, str]]:
    """``(platform, event_id)`` of unprocessed, unclaimed live events received before
    ``now - older_than``: their task was lost (a broker restart) or their retry is due."""
    free = sa.or_(events.c.lease_until.is_(None), events.c.lease_until < now)
    query = (sa.select(events.c.platform, events.c.event_id)
             .where(events.c.program == program, events.c.processed_at.is_(None),
                    events.c.dead_at.is_(None), free,
                    events.c.received_at < now - older_than)
             .order_by(events.c.id).limit(limit))
    with ledger.engine.connect() as conn:
        return [(r.platform, r.event_id) for r in conn.execute(query)]


def current_rows(ledger: Ledger, keys: Sequence[str]) -> dict[str, EffectRow]:
    """The ledger's rows for ``keys`` now (one query)."""
    if not keys:
        return {}
    with ledger.engine.connect() as conn:
        rows = conn.execute(sa.select(effects).where(effects.c.key.in_(list(keys))))
        return {row.key: _effect_row(row) for row in rows}
