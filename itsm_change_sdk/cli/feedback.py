"""``feedback``: what people say about the change in comments nobody marked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any

import click

from ..errors import ConfigurationError
from .common import db_option, load, open_workspace, program_argument


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


@feedback.command()
@program_argument
@db_option
@click.option("--confirm", multiple=True, metavar="ID",
              help="Confirm this item is feedback about the change (repeatable).")
@click.option("--dismiss", multiple=True, metavar="ID",
              help="Dismiss this item: it leaves the report and is kept as a label (repeatable).")
@click.option("--all", "show_all", is_flag=True, help="List items already reviewed too.")
def review(program_file: Path, db: str | None, confirm: tuple[str, ...],
           dismiss: tuple[str, ...], show_all: bool) -> None:
    """List the feedback found in unmarked comments, to confirm or dismiss."""
    from ..ledger import CONFIRMED, DISMISSED

    with open_workspace(db) as ws:
        program = load(program_file, None)
        unknown = [ident for verdict, idents in ((CONFIRMED, confirm), (DISMISSED, dismiss))
                   for ident in idents
                   if not ws.ledger.review_feedback(program.id, ident, verdict)]
        if unknown:
            raise ConfigurationError(
                f"{program.id} has no inferred feedback {', '.join(unknown)}; "
                f"'itsm-change feedback review {program_file} --all' lists the ids")
        if confirm or dismiss:
            click.echo(f"{len(confirm)} confirmed, {len(dismiss)} dismissed.")
        items = list(ws.ledger.feedback_to_review(program.id, reviewed=show_all))
        if not items:
            click.echo("Nothing to review." if not show_all else "No inferred feedback yet.")
            return
        for ident, verdict, response in items:
            sentiment = {-1: "negative", 0: "neutral", 1: "positive"}.get(
                response.sentiment if response.sentiment is not None else 2, "-")
            state = f" [{verdict}]" if verdict else ""
            click.echo(f"{ident}{state}  {response.submitted_at:%Y-%m-%d}  "
                       f"unit {response.unit or '-'}  confidence {response.confidence:.2f}  "
                       f"{response.dimension}, {sentiment}")
            click.echo(f"    {_shorten(response.text)}")


def _shorten(text: str, width: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."


def register(cli: click.Group) -> None:
    cli.add_command(feedback)
