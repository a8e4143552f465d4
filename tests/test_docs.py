"""Docs that must not drift from the code."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import itsm_change_sdk
from itsm_change_sdk import hookspecs

ROOT = Path(__file__).resolve().parents[1]


def hookspec_signatures() -> dict[str, str]:
    return {
        name: f"{name}({', '.join(inspect.signature(fn).parameters)})"
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if name.startswith("itsm_change_")
    }


def test_every_hook_is_documented_with_its_exact_arguments():
    text = (ROOT / "docs" / "plugin_hooks.md").read_text()
    headings = set(re.findall(r"^### `([^`]+)`", text, flags=re.MULTILINE))
    expected = set(hookspec_signatures().values())
    assert expected - headings == set(), "hooks missing from docs/plugin_hooks.md"
    documented = {h for h in headings if h.startswith("itsm_change_")}
    assert documented - expected == set(), "docs name hooks (or arguments) that do not exist"


def test_every_hook_has_a_docstring_with_versionadded():
    for name, fn in inspect.getmembers(hookspecs, inspect.isfunction):
        if name.startswith("itsm_change_"):
            assert fn.__doc__ and "versionadded" in fn.__doc__, name


def test_public_api_is_exported():
    for name in itsm_change_sdk.__all__:
        assert hasattr(itsm_change_sdk, name), name


def test_readme_opens_with_the_two_commands():
    lines = [line for line in (ROOT / "README.md").read_text().splitlines() if line.strip()]
    commands = [line for line in lines[:12] if line.startswith("./scripts/")]
    assert commands[:2] == ["./scripts/demo", "./scripts/test"], \
        "the README must start with the demo and test commands"
    for command in commands[:2]:
        assert (ROOT / command).stat().st_mode & 0o111, f"{command} must be executable"
    ci = (ROOT / ".ci" / "run").read_text()
    assert "scripts/test" in ci, ".ci/run must call the README's test command"


def test_every_hook_documents_each_argument_and_what_it_may_raise():
    for name, fn in inspect.getmembers(hookspecs, inspect.isfunction):
        if not name.startswith("itsm_change_"):
            continue
        for argument in inspect.signature(fn).parameters:
            assert f":param {argument}:" in fn.__doc__, f"{name}: {argument} is not documented"
        assert ":raises" in fn.__doc__, f"{name} does not say what it may raise"
