"""Indexes for the event queue's claim query, the lease scans run before every claim, apply
and sync, and the health check's counts: without them each of these reads whole tables.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_events_queue", "events", ["program", "processed_at", "id"])
    op.create_index("ix_events_processed_at", "events", ["processed_at"])
    op.create_index("ix_events_lease_until", "events", ["lease_until"])
    op.create_index("ix_effects_lease_until", "effects", ["lease_until"])


def downgrade() -> None:
    raise NotImplementedError("the ledger is upgraded only; restore a backup to go back")
