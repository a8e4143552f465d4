"""Ledger schema versions: old ledgers upgrade with their records, and a re-apply after the
upgrade creates nothing twice; other versions are refused with what to run."""

from __future__ import annotations

import importlib.util
import multiprocessing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner

from itsm_change_sdk import Workspace, load_program
from itsm_change_sdk.cli import cli
from itsm_change_sdk.demo import SimClock
from itsm_change_sdk.errors import ConfigurationError
from itsm_change_sdk.ledger import Ledger, schema_version
from itsm_change_sdk.ledger_tables import metadata
from itsm_change_sdk.migrations import alembic_config, head
from itsm_change_sdk.sandbox.platform import SandboxPlatform
from itsm_change_sdk.sandbox.store import SandboxStore

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "portal-rollout" / "program.yaml"
SCHEMAS = Path(__file__).parent / "fixtures" / "ledger_schemas"
PILOT_DAY = datetime(2027, 1, 12, 8, 0, tzinfo=UTC)
# Every schema a released ledger was made with before it carried a version.
HISTORY = ["0aae2e8", "e0f2c6b", "c3120ed"]


def historical_metadata(commit: str) -> sa.MetaData:
    spec = importlib.util.spec_from_file_location(f"schema_{commit}",
                                                  SCHEMAS / f"schema_{commit}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.metadata


@pytest.fixture(params=["sqlite", "postgres"])
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def sandbox(tmp_path):
    clock = SimClock(PILOT_DAY)
    store = SandboxStore(f"sqlite:///{tmp_path / 'sandbox.db'}", clock=clock)
    program = load_program(EXAMPLE)
    store.add_ticket(title="Portal rollout", kind="change", channel=None,
                     opened_at=PILOT_DAY - timedelta(days=30))
    for member in program.alliance:
        store.add_person(member.name, member.email or f"{member.id}@example.com", member.id)
    for unit in program.units:
        members = [store.add_person(f"{unit.id} agent {i}", f"{unit.id}.{i}@example.com")
                   for i in range(3)]
        store.add_group(unit.group, members)
    return program, store, clock


def apply(url, sandbox):
    program, store, clock = sandbox
    ws = Workspace(url, clock=clock)
    ws.platforms.add("sandbox", SandboxPlatform(store))
    try:
        return ws.apply(program)
    finally:
        ws.close()


def tasks(store):
    return len(store.all_tasks())


def copy_rows(source_url: str, target_url: str, old: sa.MetaData) -> None:
    """What a ledger made by ``old``'s schema would hold after the same apply."""
    source = sa.create_engine(source_url)
    target = sa.create_engine(target_url)
    with source.connect() as read, target.begin() as write:
        for table in old.sorted_tables:
            columns = [c.name for c in table.columns]
            rows = read.execute(sa.select(*(metadata.tables[table.name].c[name]
                                            for name in columns))).mappings().all()
            if rows:
                write.execute(table.insert(), [dict(r) for r in rows])
    source.dispose()
    target.dispose()


class TestUpgrade:
    @pytest.mark.parametrize("commit", HISTORY)
    def test_an_old_ledger_upgrades_and_a_reapply_creates_nothing_twice(
            self, commit, url, sandbox, tmp_path):
        program, store, _clock = sandbox
        first = apply(f"sqlite:///{tmp_path / 'first.db'}", sandbox)
        assert first.created > 0 and first.ok
        created = tasks(store)
        old = historical_metadata(commit)
        engine = sa.create_engine(url)
        old.create_all(engine)
        engine.dispose()
        copy_rows(f"sqlite:///{tmp_path / 'first.db'}", url, old)
        with sa.create_engine(url).begin() as conn:
            conn.execute(old.tables["events"].insert().values(
                platform="sandbox", event_id="ev-1", kind="ticket", payload="{}",
                received_at=PILOT_DAY, attempts=0))

        with pytest.raises(ConfigurationError, match="itsm-change db upgrade"):
            Ledger(url)

        result = CliRunner().invoke(cli, ["db", "upgrade", "--db", url])
        assert result.exit_code == 0, result.output
        assert f"to {head()}" in result.output
        again = apply(url, sandbox)
        assert (again.created, again.updated, again.failed) == (0, 0, [])
        assert again.unchanged == first.created
        assert tasks(store) == created, "no effect sent twice after the upgrade"
        ledger = Ledger(url)
        try:
            assert len(ledger.effects(program.id)) == first.created
            assert ledger.event_counts("") == {"received": 1, "processed": 0, "dead": 0}
        finally:
            ledger.close()
        rerun = CliRunner().invoke(cli, ["db", "upgrade", "--db", url])
        assert "already at version" in rerun.output

    @pytest.mark.parametrize("commit", HISTORY)
    def test_upgraded_tables_match_a_new_ledgers(self, commit, url):
        engine = sa.create_engine(url)
        historical_metadata(commit).create_all(engine)
        CliRunner().invoke(cli, ["db", "upgrade", "--db", url], catch_exceptions=False)
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
        engine.dispose()
        assert diff == []

    def test_the_migrations_alone_build_a_new_ledgers_tables(self, url):
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            config = alembic_config()
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
        engine.dispose()
        assert diff == [], "a change to ledger_tables needs a migration"


class TestVersionChecks:
    def test_a_new_ledger_is_created_at_the_newest_version(self, url):
        Ledger(url).close()
        state = schema_version(url)
        assert state.up_to_date and state.versioned
        result = CliRunner().invoke(cli, ["db", "current", "--db", url])
        assert result.exit_code == 0 and "(current)" in result.output

    def test_a_ledger_from_a_newer_release_is_refused(self, url):
        Ledger(url).close()
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
        engine.dispose()
        result = CliRunner().invoke(cli, ["status", str(EXAMPLE), "--db", url])
        assert result.exit_code == 2
        assert "newer than this release" in result.output
        assert "upgrade itsm-change-sdk" in result.output
        assert "Traceback" not in result.output
        refused = CliRunner().invoke(cli, ["db", "upgrade", "--db", url])
        assert refused.exit_code == 2 and "newer" in refused.output

    def test_an_old_ledger_is_refused_by_commands_with_what_to_run(self, url):
        engine = sa.create_engine(url)
        historical_metadata("e0f2c6b").create_all(engine)
        engine.dispose()
        result = CliRunner().invoke(cli, ["status", str(EXAMPLE), "--db", url])
        assert result.exit_code == 2
        lines = [line for line in result.output.splitlines() if line]
        assert len(lines) == 1 and "run 'itsm-change db upgrade'" in lines[0]
        current = CliRunner().invoke(cli, ["db", "current", "--db", url])
        assert "0002" in current.output and "db upgrade" in current.output


def _open(url, start):
    start.wait()
    Ledger(url).close()


def test_replicas_starting_together_create_the_ledger_once(url):
    ctx = multiprocessing.get_context("fork")
    start = ctx.Event()
    replicas = [ctx.Process(target=_open, args=(url, start)) for _ in range(3)]
    for replica in replicas:
        replica.start()
    start.set()
    for replica in replicas:
        replica.join(60)
    assert [r.exitcode for r in replicas] == [0, 0, 0]
    assert schema_version(url).up_to_date
