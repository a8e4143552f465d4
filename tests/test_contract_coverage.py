"""Every installed platform plugin is held to the contract suite."""

from __future__ import annotations

import ast
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from itsm_change_sdk.plugins import DEFAULT_PLUGINS, ENTRY_POINT_GROUP, PlatformRegistry

ROOT = Path(__file__).resolve().parents[1]


def _contract_classes(folder: Path) -> list[str]:
    """``Test...`` classes under ``folder`` that inherit ``PlatformContract``."""
    found = []
    for path in sorted(folder.glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and node.name.startswith("Test") and any(
                    getattr(base, "id", getattr(base, "attr", None)) == "PlatformContract"
                    for base in node.bases):
                found.append(f"{path.name}::{node.name}")
    return found


def _platform_plugins() -> list[tuple[str, object, Path]]:
    """(entry point or built-in name, plugin module, its tests folder) for each plugin that
    registers a platform."""
    import importlib

    plugins: list[tuple[str, object, Path]] = [
        (name, importlib.import_module(name), ROOT / "tests") for name in DEFAULT_PLUGINS]
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        module = ep.load()
        package = Path(module.__file__).resolve().parent
        plugins.append((ep.name, module, package.parent / "tests"))
    out = []
    for name, module, tests in plugins:
        register = getattr(module, "itsm_change_register_platforms", None)
        if register is None:
            continue
        registry = PlatformRegistry()
        register(register=registry)
        if registry.specs:
            out.append((name, module, tests))
    return out


PLATFORM_PLUGINS = _platform_plugins()


def test_the_shipped_platforms_are_installed():
    names = {name for name, _, _ in PLATFORM_PLUGINS}
    assert {"itsm_change_sdk.sandbox.hooks", "servicenow", "jira", "freshservice"} <= names


@pytest.mark.parametrize("name, tests", [(n, t) for n, _, t in PLATFORM_PLUGINS],
                         ids=[n for n, _, _ in PLATFORM_PLUGINS])
def test_every_installed_platform_has_a_contract_test_class(name, tests):
    assert tests.is_dir(), f"platform plugin {name!r} has no tests folder at {tests}"
    assert _contract_classes(tests), (
        f"platform plugin {name!r} has no test class inheriting PlatformContract in {tests}; "
        "add `class TestXContract(PlatformContract): pass` next to its platform and double "
        "fixtures")


def test_a_plugin_without_a_contract_class_is_noticed(tmp_path):
    (tmp_path / "test_other.py").write_text(
        "class TestClient:\n    pass\n\nclass Contract(PlatformContract):\n    pass\n")
    assert _contract_classes(tmp_path) == []
    (tmp_path / "test_contract.py").write_text(
        "from x import testing\n\nclass TestAcme(testing.PlatformContract):\n    pass\n")
    assert _contract_classes(tmp_path) == ["test_contract.py::TestAcme"]
