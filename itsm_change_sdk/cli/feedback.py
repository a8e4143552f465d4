"""``feedback``: what people say about the change in comments nobody marked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any

import click

from ..errors import ConfigurationError
from .common import load


@click.group()
def feedback() -> None:
    """Feedback found in ordinary ticket comments (needs the insights extra)."""


@feedback.command()
@click.option("--program", "program_file", default=None, metavar="FILE",
              type=click.Path(dir_okay=True, path_type=Path),
              help="Use this program's feedback marker and confidence threshold.")
@click.argument("comments", metavar="COMMENTS.jsonl", type=click.File("r", encoding="utf-8"))
@click.option("-o", "--output", default="-", metavar="FILE", type=click.File("w", encoding="utf-8"),
              help="Write the results here instead of to standard output.")
def classify(program_file: Path | None, comments: IO[str], output: IO[str]) -> None:
    """Classify each comment in COMMENTS.jsonl (one JSON object with a text per line).

    Writes one JSON line per comment: id, is_feedback, dimension, sentiment, theme and
    confidence (how likely the comment is feedback about the change).
    """
    from ..insights import DEFAULT_THRESHOLD, require_insights

    require_insights()
    marker, threshold = "#feedback", DEFAULT_THRESHOLD
    if program_file is not None:
        program = load(program_file, None)
        marker, threshold = program.feedback_marker, program.unmarked_feedback.threshold
    ids, texts = _read_comments(comments)
    from ..insights.batch import classify_batch

    for comment_id, result in zip(
            ids, classify_batch(texts, marker=marker, threshold=threshold), strict=True):
        output.write(json.dumps(result.as_json(comment_id), ensure_ascii=False) + "\n")


def _read_comments(source: IO[str]) -> tuple[list[Any], list[str]]:
    """The ids and texts of the JSON lines; blank lines are skipped."""
    name = getattr(source, "name", "<stdin>")
    ids: list[Any] = []
    texts: list[str] = []
    for number, line in enumerate(source, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigurationError(
                f"{name} line {number}: not valid JSON ({exc.msg}); write one JSON object "
                'per line, such as {"id": "c1", "text": "..."}') from None
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            raise ConfigurationError(
                f"{name} line {number}: expected a JSON object with a \"text\" string, "
                'such as {"id": "c1", "text": "..."}')
        comment_id = item.get("id")
        if comment_id is not None and not isinstance(comment_id, str | int):
            raise ConfigurationError(
                f"{name} line {number}: \"id\" must be a string or a number")
        ids.append(comment_id)
        texts.append(item["text"])
    return ids, texts


def register(cli: click.Group) -> None:
    cli.add_command(feedback)
