"""Webhook events belong to the program whose service received them; events recorded before
belong to no program (``""``), as they did.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("program", sa.String(100), nullable=False,
                                   server_default=""))
        batch.drop_constraint("uq_events_platform_event", type_="unique")
        batch.create_unique_constraint("uq_events_program_event",
                                       ["program", "platform", "event_id"])


def downgrade() -> None:
    raise NotImplementedError("the ledger is upgraded only; restore a backup to go back")
