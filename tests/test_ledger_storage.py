"""Storage faults under the command line: a damaged ledger, a file that is not a ledger, a
read-only ledger, a full disk, an unreachable database. Each is one plain message naming
the ledger and what to do, no traceback, and nothing recorded is damaged. A ledger that
cannot be used at all exits 2 (fix --db); a fault while working exits 1."""

from __future__ import annotations

import hashlib
import sqlite3
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from itsm_change_sdk import ledger as ledger_module
from itsm_change_sdk import load_program
from itsm_change_sdk.cli import cli
from itsm_change_sdk.config import sandbox_url
from itsm_change_sdk.sandbox.store import SandboxStore

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "portal-rollout" / "program.yaml"
AS_OF = ("--as-of", "2027-03-02T08:00")


def run(*args: object):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_one_plain_message(result, code: int, *words: str) -> str:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    for word in words:
        assert word in errors[0], errors[0]
    return errors[0]


@pytest.fixture(autouse=True)
def sandbox() -> None:
    """The sandbox the example runs on: its change ticket, alliance and unit groups."""
    program = load_program(EXAMPLE)
    store = SandboxStore(sandbox_url(None))
    try:
        store.add_ticket(title="Portal rollout", kind="change", channel=None)
        for member in program.alliance:
            store.add_person(member.name, member.email or f"{member.id}@example.com",
                             member.id)
        for unit in program.units:
            store.add_group(unit.group, [store.add_person(f"{unit.id} {i}",
                                                          f"{unit.id}.{i}@example.com")
                                         for i in range(4)])
    finally:
        store.close()


@pytest.fixture
def applied(tmp_path) -> Path:
    """A ledger holding a real apply of the example on the sandbox."""
    path = tmp_path / "ledger.db"
    result = run(*AS_OF, "apply", EXAMPLE, "--db", path)
    assert result.exit_code == 0, result.output
    with sqlite3.connect(path) as conn:  # fold the log into the file, as a backup would
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


def test_a_damaged_ledger_is_named_and_left_as_it_was(applied):
    data = bytearray(applied.read_bytes())
    data[:100] = b"\x00" * 100  # the header gone: what a bad disk block or a stray write leaves
    applied.write_bytes(bytes(data))
    before = digest(applied)
    result = run("status", EXAMPLE, "--db", applied)
    message = assert_one_plain_message(result, 2, str(applied), "restore it from your backup")
    assert "not a readable ledger" in message
    assert digest(applied) == before


def test_a_file_that_is_not_a_ledger_is_refused_untouched():
    passwd = Path("/etc/passwd")
    if not passwd.exists():
        pytest.skip("no /etc/passwd on this system")
    before = digest(passwd)
    result = run("status", EXAMPLE, "--db", passwd)
    assert_one_plain_message(result, 2, "/etc/passwd", "not a readable ledger", "--db")
    assert digest(passwd) == before
    assert not Path("/etc/passwd-wal").exists() and not Path("/etc/passwd-shm").exists()


def test_a_read_only_ledger_says_so_and_stays_unchanged(applied):
    before = digest(applied)
    read_only = f"sqlite:///file:{applied}?mode=ro&uri=true"
    # A week later there is something to write.
    result = run("--as-of", "2027-03-09T08:00", "apply", EXAMPLE, "--db", read_only)
    assert_one_plain_message(result, 1, str(applied), "read-only", "writable")
    assert digest(applied) == before


def test_a_full_disk_stops_apply_with_one_message_and_a_rerun_finishes_exactly_once(
        tmp_path, monkeypatch):
    path = tmp_path / "ledger.db"
    assert run("status", EXAMPLE, "--db", path).exit_code == 0  # an empty, current ledger
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
    pragmas = ledger_module._sqlite_pragmas

    def full_disk(dbapi_connection, record):
        pragmas(dbapi_connection, record)
        # The file may not grow past a few pages more: SQLite answers as on a full disk.
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages + 2}")

    monkeypatch.setattr(ledger_module, "_sqlite_pragmas", full_disk)
    result = run(*AS_OF, "apply", EXAMPLE, "--db", path)
    assert_one_plain_message(result, 1, str(path), "disk is full", "Free some space")

    monkeypatch.setattr(ledger_module, "_sqlite_pragmas", pragmas)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    again = run(*AS_OF, "apply", EXAMPLE, "--db", path)
    assert again.exit_code == 0, again.output
    assert "0 created" in run(*AS_OF, "apply", EXAMPLE, "--db", path).output
    store = SandboxStore(sandbox_url(None))
    try:
        tasks = Counter(t["key"] for t in store.all_tasks())
        announcements = Counter(a["key"] for a in store.announcements())
    finally:
        store.close()
    assert tasks and max(tasks.values()) == 1
    assert max(announcements.values(), default=1) == 1


def test_an_unreachable_database_is_named_without_its_password():
    url = "postgresql+psycopg://bot:s3cret@127.0.0.1:1/ledger"
    result = run("status", EXAMPLE, "--db", url)
    message = assert_one_plain_message(result, 2, "127.0.0.1:1/ledger", "cannot be reached",
                                       "server is running")
    assert "s3cret" not in result.output and "s3cret" not in message
