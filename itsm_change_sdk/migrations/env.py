"""Alembic's entry point for the ledger: migrations run on the connection the ledger passes in
(already holding the migration lock), never on one Alembic opens itself."""

from __future__ import annotations

from alembic import context

from itsm_change_sdk.ledger_tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
