"""Claims name the process holding them, so a re-run frees the claims of a killed one.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("effects", sa.Column("owner", sa.String(200)))
    op.add_column("events", sa.Column("owner", sa.String(200)))


def downgrade() -> None:
    raise NotImplementedError("the ledger is upgraded only; restore a backup to go back")
