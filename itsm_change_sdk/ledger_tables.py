"""The ledger's tables: one definition, used to create a new ledger and checked against the
migrations (``itsm_change_sdk/migrations``) that bring an older ledger up to it.

A change here needs a migration in the same commit; ``tests/test_migrations.py`` fails
otherwise.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

__all__ = ["UTCDateTime", "cursors", "effects", "events", "feedback", "metadata", "signoffs"]


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Stores aware datetimes as naive UTC (SQLite has no time zones) and reads them back
    aware."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the ledger")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None else None


metadata = sa.MetaData()

effects = sa.Table(
    "effects",
    metadata,
    sa.Column("key", sa.String(300), primary_key=True),
    sa.Column("program", sa.String(100), nullable=False, index=True),
    sa.Column("platform", sa.String(50), nullable=False),
    sa.Column("kind", sa.String(30), nullable=False),
    sa.Column("channel", sa.String(30), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("fingerprint", sa.String(32)),
    sa.Column("intent_fingerprint", sa.String(32)),
    sa.Column("remote_id", sa.String(200)),
    sa.Column("url", sa.String(500)),
    sa.Column("recipient", sa.String(200)),
    sa.Column("ticket_id", sa.String(200)),
    sa.Column("title", sa.Text),
    sa.Column("meta", sa.Text, nullable=False, default="{}"),
    sa.Column("due", sa.Date),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("last_error", sa.Text),
    sa.Column("lease_until", UTCDateTime),
    sa.Column("owner", sa.String(200)),
    sa.Column("completed", sa.Boolean, nullable=False, default=False),
    sa.Column("completed_at", UTCDateTime),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    # Live claims, scanned for dead owners before every claim, apply and sync.
    sa.Index("ix_effects_lease_until", "lease_until"),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("program", sa.String(100), nullable=False, default=""),
    sa.Column("platform", sa.String(50), nullable=False),
    sa.Column("event_id", sa.String(300), nullable=False),
    sa.Column("kind", sa.String(30), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Column("processed_at", UTCDateTime),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("lease_until", UTCDateTime),
    sa.Column("owner", sa.String(200)),
    sa.Column("error", sa.Text),
    # Set when the event failed too many times: out of the queue until retried or dropped.
    sa.Column("dead_at", UTCDateTime),
    # Each program's service records its own copy of a platform event, so two programs
    # sharing a ledger never take each other's events.
    sa.UniqueConstraint("program", "platform", "event_id", name="uq_events_program_event"),
    # The queue: a program's unprocessed events in arrival order, and the retention sweep.
    sa.Index("ix_events_queue", "program", "processed_at", "id"),
    sa.Index("ix_events_processed_at", "processed_at"),
    sa.Index("ix_events_lease_until", "lease_until"),
)

feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("id", sa.String(300), primary_key=True),
    sa.Column("program", sa.String(100), nullable=False, index=True),
    sa.Column("platform", sa.String(50), nullable=False),
    sa.Column("person", sa.String(200), nullable=False),
    sa.Column("unit", sa.String(100)),
    sa.Column("survey", sa.String(100)),
    sa.Column("ticket_id", sa.String(200)),
    sa.Column("submitted_at", UTCDateTime, nullable=False),
    sa.Column("scores", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("source", sa.String(20), nullable=False),
    # Found by the classifier in an unmarked comment, with what it judged; a person's review.
    sa.Column("inferred", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("confidence", sa.Float),
    sa.Column("dimension", sa.String(20)),
    sa.Column("sentiment", sa.Integer),
    sa.Column("review", sa.String(20)),
)

signoffs = sa.Table(
    "signoffs",
    metadata,
    sa.Column("program", sa.String(100), primary_key=True),
    sa.Column("wave", sa.String(100), primary_key=True),
    sa.Column("member", sa.String(200), primary_key=True),
    sa.Column("signed_at", UTCDateTime, nullable=False),
    sa.Column("note", sa.Text, nullable=False, default=""),
)

cursors = sa.Table(
    "cursors",
    metadata,
    sa.Column("name", sa.String(300), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)
