"""``itsm-change new-platform NAME`` writes a plugin that passes the contract suite as is."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from itsm_change_sdk.cli import cli

MODULES = {"__init__.py", "settings.py", "api.py", "client.py", "reads.py", "writes.py",
           "mapping.py", "query.py", "admin.py", "webhook.py", "hooks.py", "py.typed"}


def _run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env={**os.environ, **env})


@pytest.fixture(scope="module")
def skeleton(tmp_path_factory) -> Path:
    where = tmp_path_factory.mktemp("new-platform")
    result = CliRunner().invoke(cli, ["new-platform", "acme_desk", "--dir", str(where)])
    assert result.exit_code == 0, result.output
    assert "Wrote " in result.output and "pytest" in result.output
    return where / "itsm-change-acme-desk"


def test_the_skeleton_is_a_distribution_with_the_guides_modules(skeleton):
    package = skeleton / "itsm_change_acme_desk"
    assert {p.name for p in package.iterdir()} == MODULES
    pyproject = (skeleton / "pyproject.toml").read_text()
    assert 'name = "itsm-change-acme-desk"' in pyproject
    assert 'build-backend = "hatchling.build"' in pyproject
    assert '[project.entry-points.itsm_change]\nacme_desk = "itsm_change_acme_desk.hooks"' \
        in pyproject
    assert (skeleton / "LICENSE").read_text().strip()
    assert "class TestAcmeDeskContract(PlatformContract)" in \
        (skeleton / "tests" / "test_contract.py").read_text()
    assert not [p for p in skeleton.rglob("*") if "{{" in p.name or p.suffix == ".tmpl"]
    assert not [p for p in skeleton.rglob("*.py") if "{{" in p.read_text()]


def test_the_readme_lists_the_declared_settings_without_values(skeleton):
    readme = (skeleton / "README.md").read_text()
    assert "`ITSM_CHANGE_ACME_DESK_API_TOKEN`" in readme
    assert "| `page_size` | integer | `100` |" in readme


def test_no_module_imports_the_entry_point_module(skeleton):
    for module in (skeleton / "itsm_change_acme_desk").glob("*.py"):
        text = module.read_text()
        assert "from .hooks" not in text and ".hooks import" not in text, module.name


def test_the_skeleton_passes_ruff_and_strict_mypy(skeleton, tmp_path):
    ruff = _run(["ruff", "check", "--no-cache", "."], skeleton)
    assert ruff.returncode == 0, ruff.stdout + ruff.stderr
    mypy = _run(["mypy", "--strict", "--cache-dir", str(tmp_path / "mypy"),
                 "itsm_change_acme_desk"], skeleton)
    assert mypy.returncode == 0, mypy.stdout + mypy.stderr


def test_the_skeleton_passes_the_contract_suite(skeleton, tmp_path):
    """Installed (its entry point registers the platform), then its own tests: the contract
    suite against its fake API."""
    site = tmp_path / "site"
    install = _run(["pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(site), str(skeleton)], tmp_path)
    assert install.returncode == 0, install.stdout + install.stderr
    tests = _run(["pytest", "-q", "-p", "no:cacheprovider"], skeleton,
                 PYTHONPATH=str(site))
    assert tests.returncode == 0, tests.stdout[-4000:] + tests.stderr[-2000:]
    passed = re.search(r"(\d+) passed", tests.stdout)
    assert passed and int(passed.group(1)) >= 30, tests.stdout[-2000:]


@pytest.mark.parametrize("name", ["Acme", "1acme", "acme-desk", "acme__desk", "jira", "class",
                                  "a" * 31, ""])
def test_a_bad_name_is_refused_in_one_message(name, tmp_path):
    result = CliRunner().invoke(cli, ["new-platform", name, "--dir", str(tmp_path)])
    assert result.exit_code == 2
    assert f"{name!r} is not a usable platform name" in result.output
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_an_existing_folder_is_not_overwritten(tmp_path):
    (tmp_path / "itsm-change-acme").mkdir()
    (tmp_path / "itsm-change-acme" / "keep.txt").write_text("mine")
    result = CliRunner().invoke(cli, ["new-platform", "acme", "--dir", str(tmp_path)])
    assert result.exit_code == 2 and "already exists" in result.output
    assert (tmp_path / "itsm-change-acme" / "keep.txt").read_text() == "mine"
