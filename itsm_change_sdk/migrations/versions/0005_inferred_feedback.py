"""Feedback found in unmarked comments: marked as inferred, with the classifier's confidence,
dimension and sentiment, and a person's review (confirmed or dismissed). Feedback recorded
before is marked feedback, as it was.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("feedback") as batch:
        batch.add_column(sa.Column("inferred", sa.Boolean, nullable=False,
                                   server_default=sa.false()))
        batch.add_column(sa.Column("confidence", sa.Float))
        batch.add_column(sa.Column("dimension", sa.String(20)))
        batch.add_column(sa.Column("sentiment", sa.Integer))
        batch.add_column(sa.Column("review", sa.String(20)))


def downgrade() -> None:
    raise NotImplementedError("the ledger is upgraded only; restore a backup to go back")
