"""The ledger's first schema: effects, events, feedback, sign-offs and sync cursors.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from itsm_change_sdk.ledger_tables import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "effects",
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
        sa.Column("meta", sa.Text, nullable=False),
        sa.Column("due", sa.Date),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("lease_until", UTCDateTime),
        sa.Column("completed", sa.Boolean, nullable=False),
        sa.Column("completed_at", UTCDateTime),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("platform", sa.String(50), nullable=False),
        sa.Column("event_id", sa.String(300), nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("received_at", UTCDateTime, nullable=False),
        sa.Column("processed_at", UTCDateTime),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("lease_until", UTCDateTime),
        sa.Column("error", sa.Text),
        sa.UniqueConstraint("platform", "event_id", name="uq_events_platform_event"),
    )
    op.create_table(
        "feedback",
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
    )
    op.create_table(
        "signoffs",
        sa.Column("program", sa.String(100), primary_key=True),
        sa.Column("wave", sa.String(100), primary_key=True),
        sa.Column("member", sa.String(200), primary_key=True),
        sa.Column("signed_at", UTCDateTime, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
    )
    op.create_table(
        "cursors",
        sa.Column("name", sa.String(300), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("the ledger is upgraded only; restore a backup to go back")
