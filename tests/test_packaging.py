"""What a user installs: every distribution carries the licence, and the core installs what
its commands need."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from importlib.metadata import requires
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The core, every platform plugin and every example plugin: each is a distribution of its own.
DISTRIBUTIONS = [ROOT, *sorted(p.parent for p in (*ROOT.glob("plugins/*/pyproject.toml"),
                                                  *ROOT.glob("examples/*/pyproject.toml")))]


def test_every_distribution_is_found():
    names = {p.name for p in DISTRIBUTIONS}
    assert {"servicenow", "jira", "freshservice", "feedback-exporter"} <= names


def test_the_licence_is_the_apache_2_text_everywhere():
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
    for folder in DISTRIBUTIONS[1:]:
        assert (folder / "LICENSE").read_text() == text, folder


@pytest.mark.slow
@pytest.mark.parametrize("folder", DISTRIBUTIONS, ids=lambda p: p.name)
def test_every_built_distribution_contains_the_licence(folder, tmp_path):
    subprocess.run([sys.executable, "-m", "hatchling", "build", "-d", str(tmp_path)],
                   cwd=folder, check=True, capture_output=True)
    (wheel,) = tmp_path.glob("*.whl")
    (sdist,) = tmp_path.glob("*.tar.gz")
    with zipfile.ZipFile(wheel) as archive:
        assert any(n.endswith(".dist-info/licenses/LICENSE") for n in archive.namelist())
        metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        assert "License-Expression: Apache-2.0" in archive.read(metadata).decode()
    with tarfile.open(sdist) as archive:
        assert any(n.endswith("/LICENSE") for n in archive.getnames())


def test_the_event_service_needs_no_extra():
    unconditional = [r for r in requires("itsm-change-sdk") or [] if "extra ==" not in r]
    assert any(r.lower().startswith("waitress") for r in unconditional)


def test_setup_is_skipped_when_nothing_changed(tmp_path):
    """A second ./scripts/demo or ./scripts/test starts at once: pip runs only when the
    constraints or package metadata changed."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    calls = tmp_path / "calls"
    fake_python = venv / "bin" / "python"
    fake_python.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    fake_python.chmod(0o755)
    script = 'source scripts/_venv.sh && install_once demo -e .'

    def setup() -> list[str]:
        subprocess.run(["bash", "-c", script], cwd=ROOT, check=True, capture_output=True,
                       env={"PATH": "/usr/bin:/bin:" + str(Path(sys.executable).parent),
                            "VENV": str(venv)})
        return calls.read_text().splitlines() if calls.exists() else []

    first = setup()
    assert any("--constraint constraints.txt" in c and c.endswith("-e .") for c in first)
    assert setup() == first  # nothing more was installed
