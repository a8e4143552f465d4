"""The ledger's schema versions, kept with Alembic: every change to ``ledger_tables`` is a
migration under ``versions/``, recorded in the ledger's ``alembic_version`` table.

A new (empty) ledger is created at the newest version in one step. A ledger at an older
version is refused until ``itsm-change db upgrade`` brings it up (a new ledger would mean
every effect created again on the platforms); one written by a newer release is refused
too. Creation and upgrades hold a lock (PostgreSQL advisory lock, SQLite write lock), so
replicas starting together on one database migrate it once.

Ledgers made before migrations existed carry no version: their tables tell which schema
they have, and the upgrade stamps that version before moving on.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

from ..errors import ConfigurationError
from ..ledger_tables import metadata

__all__ = ["SchemaState", "alembic_config", "current", "ensure_current", "head", "upgrade"]

# pg_advisory_xact_lock key: any constant no other tool on the database is likely to use.
_LOCK_KEY = 0x17C4A46E


def alembic_config() -> Config:
    """Alembic's settings for the ledger's migrations, shipped inside the package (no
    alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent))
    return config


def head() -> str:
    """The version this release of the SDK reads and writes."""
    revision = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert revision is not None
    return revision


@dataclass(frozen=True)
class SchemaState:
    revision: str | None
    """The ledger's schema version; None for an empty database."""
    head: str
    versioned: bool
    """False for a ledger made before migrations existed (its version read off its tables)."""

    @property
    def known(self) -> bool:
        return self.revision is None or _is_known(self.revision)

    @property
    def up_to_date(self) -> bool:
        return self.revision == self.head


def _is_known(revision: str) -> bool:
    try:
        return ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
    except Exception:  # alembic raises several kinds for an id it has never heard of
        return False


def _legacy_revision(conn: Connection) -> str | None:
    """The schema of a ledger made before it carried a version, read off its columns."""
    inspector = sa.inspect(conn)
    if not inspector.has_table("effects"):
        return None
    effect_columns = {c["name"] for c in inspector.get_columns("effects")}
    event_columns = {c["name"] for c in inspector.get_columns("events")}
    if "owner" not in effect_columns:
        return "0001"
    if "program" not in event_columns:
        return "0002"
    return "0003"


def _state(conn: Connection) -> SchemaState:
    revision = MigrationContext.configure(conn).get_current_revision()
    if revision is not None:
        return SchemaState(revision, head(), versioned=True)
    return SchemaState(_legacy_revision(conn), head(), versioned=False)


def current(engine: Engine) -> SchemaState:
    """The ledger's schema version, read without changing anything."""
    with engine.connect() as conn:
        return _state(conn)


def sqlite_begin(conn: Connection) -> None:
    """Starts an SQLite transaction the way the connection asks (``BEGIN IMMEDIATE`` for the
    ledger's writes, so writers queue for the file rather than fail when a read turns into a
    write); the driver's own transaction handling is off for ledger engines."""
    conn.exec_driver_sql(conn.get_execution_options().get("sqlite_begin", "BEGIN"))


@contextmanager
def _locked(engine: Engine) -> Iterator[Connection]:
    """A connection holding the database's migration lock until it commits."""
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite" and sa.event.contains(engine, "begin", sqlite_begin):
            conn.execution_options(sqlite_begin="BEGIN IMMEDIATE")
            conn.begin()
        elif conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        elif conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
        yield conn
        conn.commit()


def _stamp_and_upgrade(conn: Connection, state: SchemaState) -> None:
    config = alembic_config()
    config.attributes["connection"] = conn
    if state.revision is None:
        # An empty database: the tables as they are now, in one step.
        metadata.create_all(conn)
        command.stamp(config, "head")
        return
    if not state.versioned:
        command.stamp(config, state.revision)
    command.upgrade(config, "head")


def ensure_current(engine: Engine, where: str, create: bool = True) -> None:
    """Create an empty ledger at the newest version; refuse one at any other version with a
    message that says what to run."""
    if current(engine).up_to_date:
        return
    # Read again under the lock: another replica may be creating the ledger right now, and
    # outside the lock its tables can be seen before its version is.
    with _locked(engine) as conn:
        state = _state(conn)
        if state.revision is None and create:
            _stamp_and_upgrade(conn, state)
            return
    _refuse_unless_current(state, where)


def _refuse_unless_current(state: SchemaState, where: str) -> None:
    if state.up_to_date or state.revision is None:
        return
    if not state.known:
        raise ConfigurationError(
            f"the ledger at {where} has schema version {state.revision}, newer than this "
            f"release of itsm-change-sdk knows ({state.head}): upgrade itsm-change-sdk "
            "(pip install -U itsm-change-sdk) on every machine that uses this ledger")
    raise ConfigurationError(
        f"the ledger at {where} has schema version {state.revision}, older than this "
        f"release needs ({state.head}): back it up, then run 'itsm-change db upgrade' "
        "(with the same --db)")


def upgrade(engine: Engine, where: str) -> tuple[str | None, str]:
    """Bring the ledger to the newest version under the migration lock; returns (version
    before, version after). An empty database is created."""
    with _locked(engine) as conn:
        state = _state(conn)
        if not state.known:
            _refuse_unless_current(state, where)
        if not state.up_to_date:
            _stamp_and_upgrade(conn, state)
    return state.revision, state.head
