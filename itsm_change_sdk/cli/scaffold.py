"""``itsm-change new-platform NAME``: start a platform plugin from the shipped template.

The template (``itsm_change_sdk/templates/platform``) is a complete plugin for a small
generic REST ticketing API, with a fake of that API and the contract suite, so a fourth
platform starts from code that passes the contract and only its API layer needs changing.
"""

from __future__ import annotations

import keyword
import re
from importlib import resources
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import click

from ..errors import ConfigurationError

__all__ = ["generate", "new_platform", "register"]

NAME = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
RESERVED = frozenset({"sandbox", "servicenow", "jira", "freshservice", "sdk", "platform"})
"""Names taken by the built-in and shipped platforms, or by the core's own distribution."""
SUFFIX = ".tmpl"


def check_name(name: str) -> None:
    """Refuse a name that cannot be an entry point, a Python package and an environment
    variable prefix all at once, in one message that says what would do."""
    problem = None
    if not NAME.match(name):
        problem = ("use lower-case letters and digits, starting with a letter, with single "
                   "underscores between words (e.g. acme or acme_desk)")
    elif len(name) > 30:
        problem = "use at most 30 characters"
    elif keyword.iskeyword(name) or name in RESERVED:
        problem = "that name is taken; choose your platform's own name"
    if problem:
        raise ConfigurationError(f"new-platform: {name!r} is not a usable platform name: "
                                 f"{problem}")


def _values(name: str) -> dict[str, str]:
    try:
        sdk = version("itsm-change-sdk")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        sdk = "0.1.0"
    major, minor = (int(part) for part in sdk.split(".")[:2])
    return {
        "name": name,
        "package": f"itsm_change_{name}",
        "dist": f"itsm-change-{name.replace('_', '-')}",
        "Title": "".join(part.capitalize() for part in name.split("_")),
        "sdk_minor": f"{major}.{minor}",
        "sdk_next_major": str(major + 1),
    }


def _render(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    return text


def generate(name: str, directory: Path) -> Path:
    """Write the skeleton distribution ``itsm-change-NAME`` into ``directory``/its name.

    :raises ConfigurationError: a bad name, or a target that already exists.
    """
    check_name(name)
    values = _values(name)
    target = directory / values["dist"]
    if target.exists():
        raise ConfigurationError(f"new-platform: {target} already exists; remove it or pass "
                                 "--dir to write somewhere else")
    values["settings_table"] = "(run `itsm-change plugins --settings` for the table)"
    template = resources.files("itsm_change_sdk") / "templates" / "platform"
    files: dict[Path, str] = {}

    def walk(node: resources.abc.Traversable, relative: Path) -> None:
        for child in node.iterdir():
            if child.is_dir():
                part = values["package"] if child.name == "package" else child.name
                walk(child, relative / part)
            elif child.name.endswith(SUFFIX):
                files[relative / child.name.removesuffix(SUFFIX)] = _render(
                    child.read_text(encoding="utf-8"), values)

    walk(template, Path())
    files[Path("README.md")] = files[Path("README.md")].replace(
        values["settings_table"], _settings_table(files, values))
    for relative, text in sorted(files.items()):
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return target


def _settings_table(files: dict[Path, str], values: dict[str, str]) -> str:
    """The README's settings table, from the rendered ``settings.py`` itself."""
    namespace: dict[str, object] = {}
    exec(files[Path(values["package"]) / "settings.py"], namespace)  # our own template
    from ..settings import PluginSettings

    declared = namespace["SETTINGS"]
    assert isinstance(declared, PluginSettings)
    return declared.markdown()


@click.command("new-platform")
@click.argument("name")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              default=Path("."), show_default=True,
              help="Where to write the itsm-change-NAME folder.")
def new_platform(name: str, directory: Path) -> None:
    """Start a platform plugin: a skeleton distribution itsm-change-NAME that passes the
    contract suite against a fake REST API, ready to point at a real platform."""
    try:
        target = generate(name, directory)
    except ConfigurationError as exc:
        raise click.UsageError(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"new-platform: cannot write to {directory}: "
                                   f"{exc.strerror or exc}") from None
    click.echo(f"Wrote {target}")
    click.echo(f"Next: cd {target} && pip install -e '.[testing]' && pytest")


def register(cli: click.Group) -> None:
    cli.add_command(new_platform)
