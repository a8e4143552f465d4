"""The labelled comments the classifier learns from and is measured on.

``corpus.tsv`` ships inside the package. The project wrote every comment itself (no text was
copied from a platform or a public data set) and publishes it under the project's licence,
Apache-2.0. Each row is labelled by hand: is it feedback about the change, and if so the ADKAR
dimension, the sentiment and the theme a person would file it under. ``split`` is fixed in the
file from a hash of the text: ``train`` rows teach the models, ``eval`` rows are kept apart and
only ever measured on (``benchmarks/bench_insights.py``).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from importlib.resources import files
from typing import Literal

__all__ = ["LabelledComment", "load_corpus"]

Split = Literal["train", "eval"]


@dataclass(frozen=True)
class LabelledComment:
    id: str
    split: Split
    change: str
    """The kind of change it was written about: portal, knowledge, approvals, migration."""
    text: str
    is_feedback: bool
    dimension: str | None
    sentiment: int | None
    theme: str | None


def load_corpus(split: Split | None = None) -> list[LabelledComment]:
    """The shipped corpus, or only its ``train`` or ``eval`` part."""
    source = files(__package__).joinpath("corpus.tsv").read_text(encoding="utf-8")
    rows = csv.DictReader(source.splitlines(), delimiter="\t", quoting=csv.QUOTE_NONE)
    found = [
        LabelledComment(
            id=row["id"], split=row["split"],  # type: ignore[arg-type]
            change=row["change"], text=row["text"], is_feedback=row["is_feedback"] == "1",
            dimension=row["dimension"] or None,
            sentiment=int(row["sentiment"]) if row["sentiment"] else None,
            theme=row["theme"] or None,
        )
        for row in rows
    ]
    return [c for c in found if split is None or c.split == split]
