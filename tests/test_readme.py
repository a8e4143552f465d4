"""Every command and snippet in the README runs, and the output it shows is what it prints.

The README's fenced blocks are run in order, in one fresh data directory, as a reader would
type them after cloning: ``sh`` blocks line by line (``itsm-change`` in process, the same
entry point as the installed command; ``./scripts/demo`` as the ``itsm-change demo`` it ends
in), ``python`` blocks as scripts, ``yaml`` blocks through ``itsm-change validate``, ``toml``
blocks through the TOML parser. An HTML comment just above a block says what else to do:

- ``<!-- readme-test: skip REASON -->``: not run here (it needs a real platform, say), with why;
- ``<!-- readme-test: output of PREFIX -->``: the block is what the last command starting with
  PREFIX printed. A line ``...`` stands for any number of lines, ``...`` inside a line for any
  text; otherwise every shown line is printed as shown, in order, with nothing between;
- ``<!-- readme-test: feedback -->``: a comment carrying feedback, parsed with the marker.

A block with no way to check it fails, so a new snippet cannot slip in untested.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import shutil
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from itsm_change_sdk.cli import cli
from itsm_change_sdk.feedback import parse_feedback

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FENCE = re.compile(r"^(\s*)```(\w*)\s*$")
NOTE = re.compile(r"^\s*<!--\s*readme-test:\s*(.*?)\s*-->\s*$")


@dataclass
class Block:
    line: int
    lang: str
    text: str
    note: str = ""

    @property
    def id(self) -> str:
        return f"line{self.line}-{self.lang or 'text'}"


def blocks(text: str) -> list[Block]:
    """The fenced blocks of ``text``, each with the ``readme-test`` note just above it."""
    found: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, lang = opening.group(1), opening.group(2)
        body: list[str] = []
        j = i + 1
        while j < len(lines) and lines[j].strip() != "```":
            body.append(lines[j][len(indent):] if lines[j].startswith(indent) else lines[j])
            j += 1
        above = next((line for line in reversed(lines[:i]) if line.strip()), "")
        note = NOTE.match(above)
        found.append(Block(i + 1, lang, "\n".join(body), note.group(1) if note else ""))
        i = j + 1
    return found


BLOCKS = blocks(README.read_text(encoding="utf-8"))


def shown_matches(shown: str, printed: str) -> bool:
    """Whether ``shown`` is an excerpt of ``printed``, ``...`` standing for what was left out."""
    want = [line.rstrip() for line in shown.strip("\n").splitlines()]
    have = [line.rstrip() for line in printed.splitlines()]

    def line_ok(pattern: str, line: str) -> bool:
        parts = [re.escape(p) for p in pattern.strip().split("...")]
        indent = pattern[: len(pattern) - len(pattern.lstrip())]
        return re.fullmatch(re.escape(indent) + ".*?".join(parts), line) is not None

    def match(w: int, h: int) -> bool:
        if w == len(want):
            return True
        if want[w].strip() == "...":
            return any(match(w + 1, k) for k in range(h, len(have) + 1))
        return h < len(have) and line_ok(want[w], have[h]) and match(w + 1, h + 1)

    return any(match(0, start) for start in range(len(have)))


def commands(text: str) -> list[str]:
    """The commands of a shell block: continuation lines joined, blank lines left out."""
    joined = re.sub(r"\\\n\s*", " ", text)
    return [line.strip() for line in joined.splitlines() if line.strip()]


@dataclass
class Ran:
    command: str
    exit_code: int
    output: str


@dataclass
class Session:
    home: Path
    cwd: Path
    ran: list[Ran] = field(default_factory=list)
    problems: dict[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        return {"ITSM_CHANGE_HOME": str(self.home),
                "ITSM_CHANGE_CONFIG": str(self.home / "config.toml"),
                "ITSM_CHANGE_AS_OF": "", "NO_COLOR": "1"}

    def itsm_change(self, args: list[str], env: dict[str, str] | None = None) -> Ran:
        with contextlib.chdir(self.cwd):
            result = CliRunner().invoke(cli, args, prog_name="itsm-change",
                                        env={**self.env(), **(env or {})},
                                        catch_exceptions=False)
        return Ran(shlex.join(["itsm-change", *args]), result.exit_code, result.output)

    def shell_line(self, line: str) -> Ran | None:
        completion = re.search(r"(_ITSM_CHANGE_COMPLETE)=(\w+)", line)
        if completion:
            ran = self.itsm_change([], env={completion.group(1): completion.group(2)})
            ran.command = line
            assert "_itsm_change_completion" in ran.output, f"{line} printed no completion"
            return ran
        words = shlex.split(line, comments=True)
        if not words:
            return None
        if words[0] == "source":
            assert (ROOT / words[1]).exists() or "VIRTUAL_ENV" in os.environ, line
            return None
        if words[0] == "./scripts/demo":
            words = ["itsm-change", "demo", *words[1:]]
        if words[0] != "itsm-change":
            raise AssertionError(f"{line!r} is not a command this test runs; add "
                                 "'<!-- readme-test: skip REASON -->' above the block")
        ran = self.itsm_change(words[1:])
        ran.command = shlex.join(words)
        return ran

    def python(self, code: str) -> Ran:
        out = io.StringIO()
        saved = {k: os.environ.get(k) for k in self.env()}
        os.environ.update(self.env())
        try:
            with contextlib.chdir(self.cwd), contextlib.redirect_stdout(out):
                exec(compile(code, f"{README}:python", "exec"), {"__name__": "__readme__"})
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        return Ran("python", 0, out.getvalue())


def expected_exit(ran: Ran) -> bool:
    """Every command succeeds, except ``gate`` on a closed gate, whose exit code is 1."""
    if " gate " in f" {ran.command} " and "CLOSED" in ran.output:
        return ran.exit_code == 1
    return ran.exit_code == 0


def run_block(session: Session, block: Block) -> None:
    if block.lang == "sh":
        for line in commands(block.text):
            ran = session.shell_line(line)
            if ran is None:
                continue
            session.ran.append(ran)
            assert expected_exit(ran), (f"{ran.command} exited {ran.exit_code}:\n"
                                        f"{ran.output}")
            assert "Traceback" not in ran.output, ran.output
    elif block.lang == "python":
        session.ran.append(session.python(block.text))
    elif block.lang == "yaml":
        path = session.cwd / f"snippet-{block.line}.yaml"
        path.write_text(block.text, encoding="utf-8")
        ran = session.itsm_change(["validate", str(path)])
        assert ran.exit_code == 0, ran.output
    elif block.lang == "toml":
        assert tomllib.loads(block.text)
    elif block.note.startswith("output of "):
        prefix = block.note.removeprefix("output of ").strip()
        earlier = [r for r in session.ran if r.command.startswith(prefix)]
        assert earlier, f"no command starting with {prefix!r} ran before line {block.line}"
        assert shown_matches(block.text, earlier[-1].output), (
            f"the README shows (line {block.line}):\n{block.text}\n\n"
            f"{earlier[-1].command} printed:\n{earlier[-1].output}")
    elif block.note == "feedback":
        parsed = parse_feedback(block.text, "#feedback")
        assert parsed is not None and parsed.scores and parsed.text, block.text
    else:
        raise AssertionError(f"README line {block.line}: a ```{block.lang} block with no "
                             "'<!-- readme-test: ... -->' note saying how to check it")


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Session:
    """Every block run once, in README order; what went wrong is kept per block."""
    base = tmp_path_factory.mktemp("readme")
    found = Session(home=base / "home", cwd=base / "work")
    found.cwd.mkdir()
    (found.cwd / "examples").symlink_to(ROOT / "examples")
    shutil.copy(ROOT / "examples" / "portal-rollout" / "program.yaml",
                found.cwd / "program.yaml")
    for block in BLOCKS:
        if block.note.startswith("skip"):
            continue
        try:
            run_block(found, block)
        except AssertionError as exc:
            found.problems[block.id] = str(exc)
    return found


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_readme_block(session: Session, block: Block) -> None:
    if block.note.startswith("skip"):
        pytest.skip(block.note.removeprefix("skip").strip() or "marked skip in the README")
    assert block.id not in session.problems, session.problems[block.id]


def ran(session: Session, prefix: str) -> Ran:
    return [r for r in session.ran if r.command.startswith(prefix)][-1]


def test_the_agent_queue_shown_after_the_demo_has_tickets_and_training(session: Session):
    queue = ran(session, "itsm-change queue ")
    assert "INC" in queue.output.split("Open tickets:")[1].split("Training:")[0]
    training = queue.output.split("Training:")[1].split("Feedback requests:")[0]
    assert "TRN" in training


def test_the_python_snippet_creates_what_it_says(session: Session):
    printed = ran(session, "python").output
    created = re.search(r"^(\d+) created", printed, flags=re.MULTILINE)
    assert created and int(created.group(1)) > 0, printed


def test_the_matcher_needs_every_shown_line() -> None:
    printed = "a\nb\nc\nd"
    assert shown_matches("a\n...\nd", printed)
    assert shown_matches("b\nc", printed)
    assert shown_matches("a...\n...", printed)
    assert not shown_matches("a\nc", printed)
    assert not shown_matches("a\n...\nx", printed)


def test_every_block_has_a_check(session: Any) -> None:
    """A block that is neither run, compared, parsed nor skipped with a reason fails."""
    unchecked = [b.id for b in BLOCKS
                 if b.lang not in ("sh", "python", "yaml", "toml") and not b.note]
    assert unchecked == []
