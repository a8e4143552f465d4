"""Every platform plugin has the modules the plugin author's guide lists, for the same roles,
and none imports its entry-point module (so no import cycle runs through ``hooks.py``)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "plugin_hooks.md"
TEMPLATE = ROOT / "itsm_change_sdk" / "templates" / "platform" / "package"
PLUGINS = {p.parent.parent.name: p.parent
           for p in sorted(ROOT.glob("plugins/*/itsm_change_*/hooks.py"))}


def guide_modules() -> dict[str, bool]:
    """Module name -> required, from the guide's table."""
    rows = re.findall(r"^\| `([a-z_]+\.py|py\.typed)` \| .+ \| (required|optional) \|$",
                      GUIDE.read_text(), flags=re.MULTILINE)
    return {name: need == "required" for name, need in rows}


def modules(package: Path) -> set[str]:
    return {p.name.removesuffix(".tmpl") for p in package.iterdir()
            if p.is_file() and p.name.removesuffix(".tmpl").endswith((".py", "py.typed"))}


SHAPES = {**PLUGINS, "template": TEMPLATE}


def test_the_guide_lists_the_roles():
    listed = guide_modules()
    assert {"hooks.py", "settings.py", "api.py", "client.py", "mapping.py", "query.py",
            "admin.py", "webhook.py"} <= {m for m, required in listed.items() if required}
    assert {"reads.py", "writes.py", "surveys.py"} <= set(listed)
    assert set(PLUGINS) == {"servicenow", "jira", "freshservice"}


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_the_modules_match_the_guide(name):
    listed = guide_modules()
    found = modules(SHAPES[name])
    missing = {m for m, required in listed.items() if required} - found
    unknown = found - set(listed)
    assert not missing, f"{name} lacks the guide's {sorted(missing)}"
    assert not unknown, (f"{name} has {sorted(unknown)}, which the guide does not list: "
                         "give the code one of the guide's roles, or document the new one")


def _imports_hooks(path: Path, package: str) -> bool:
    source = path.read_text()
    if path.suffix == ".tmpl":
        source = source.replace("{{package}}", package).replace("{{name}}", "x") \
            .replace("{{Title}}", "X")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if (node.level == 1 and module == "hooks") or module == f"{package}.hooks":
                return True
            if node.level == 1 and not module and any(a.name == "hooks" for a in node.names):
                return True
        if isinstance(node, ast.Import) and any(a.name == f"{package}.hooks"
                                                for a in node.names):
            return True
    return False


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_no_module_imports_the_entry_point(name):
    package = SHAPES[name]
    package_name = "itsm_change_x" if name == "template" else package.name
    offenders = [p.name for p in sorted(package.iterdir())
                 if p.name.removesuffix(".tmpl").endswith(".py")
                 and p.name.removesuffix(".tmpl") != "hooks.py"
                 and _imports_hooks(p, package_name)]
    assert offenders == [], f"{name}: {offenders} import hooks.py; import .settings instead"


def test_the_import_check_catches_a_cycle(tmp_path):
    """The check above can fail: a module that imports the entry point is caught."""
    module = tmp_path / "client.py"
    for line in ("from .hooks import PLATFORM_NAME", "from . import hooks",
                 "from itsm_change_acme.hooks import X", "import itsm_change_acme.hooks"):
        module.write_text(f"{line}\n")
        assert _imports_hooks(module, "itsm_change_acme"), line
    module.write_text("from .settings import PLATFORM_NAME\n")
    assert not _imports_hooks(module, "itsm_change_acme")
