"""Dead letters: an event that failed too many times is set aside (``dead_at``, with its
error as the reason) instead of being retried for ever, until someone retries or drops it.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from itsm_change_sdk.ledger_tables import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("dead_at", UTCDateTime))


def downgrade() -> None:
    raise NotImplementedError("the ledger is upgraded only; restore a backup to go back")
