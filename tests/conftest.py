"""Shared fixtures: an isolated data directory, a clock, and the PostgreSQL server."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

POSTGRES_URL = os.environ.get(
    "ITSM_CHANGE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own data directory and config file; nothing touches ~/."""
    home = tmp_path / "home"
    monkeypatch.setenv("ITSM_CHANGE_HOME", str(home))
    monkeypatch.setenv("ITSM_CHANGE_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.delenv("ITSM_CHANGE_DB", raising=False)
    monkeypatch.delenv("ITSM_CHANGE_SANDBOX_DB", raising=False)
    # The example exporter plugin, when installed, writes here rather than into the checkout.
    monkeypatch.setenv("ITSM_CHANGE_FEEDBACK_EXPORT", str(tmp_path / "feedback.jsonl"))
    return home


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL with a fresh schema, or a skip that says why."""
    try:
        import psycopg
        import sqlalchemy as sa
    except ImportError:
        pytest.skip("psycopg is not installed (pip install 'itsm-change-sdk[postgres]')")
    try:
        engine = sa.create_engine(POSTGRES_URL)
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
    except (sa.exc.OperationalError, psycopg.OperationalError) as exc:
        pytest.skip(f"no PostgreSQL server at {POSTGRES_URL} ({str(exc).splitlines()[0]}); "
                    "set ITSM_CHANGE_TEST_POSTGRES_URL to run this test")
    schema = f"t_{uuid.uuid4().hex[:10]}"
    with engine.begin() as conn:
        conn.execute(sa.text(f'create schema "{schema}"'))
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'drop schema "{schema}" cascade'))
        engine.dispose()


@pytest.fixture
def at() -> datetime:
    return datetime(2027, 1, 12, 9, 0, tzinfo=UTC)
