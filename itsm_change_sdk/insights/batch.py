"""Classify a batch of comments and file the feedback among them into themes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..feedback import parse_feedback
from .classifier import DEFAULT_THRESHOLD, Classification, shipped_classifier
from .themes import Theme, ThemeBook

__all__ = ["ClassifiedComment", "classify_batch"]


@dataclass(frozen=True)
class ClassifiedComment:
    classification: Classification
    theme: Theme | None
    """None when the comment is not feedback."""

    def as_json(self, comment_id: str | None) -> dict[str, object]:
        """The line ``itsm-change feedback classify`` writes for this comment."""
        found = self.classification
        return {
            "id": comment_id,
            "is_feedback": found.is_feedback,
            "dimension": found.dimension,
            "sentiment": found.sentiment,
            "theme": self.theme.label if self.theme else None,
            "theme_id": self.theme.id if self.theme else None,
            "confidence": found.confidence,
            "inferred": found.inferred,
        }


def classify_batch(texts: Sequence[str], marker: str = "#feedback",
                   threshold: float = DEFAULT_THRESHOLD,
                   book: ThemeBook | None = None) -> list[ClassifiedComment]:
    """Each text classified; the feedback among them filed in ``book`` (a new one if None)."""
    classifier = shipped_classifier()
    found, hints = classifier.classify_with_hints(texts, marker=marker, threshold=threshold)
    feedback = [i for i, c in enumerate(found) if c.is_feedback]
    # A marked comment's scores are not words about the change: theme its free text alone.
    feedback_texts = [_free_text(texts[i], marker) if found[i].marked else texts[i]
                      for i in feedback]
    themes = (book or ThemeBook()).assign(feedback_texts, [hints[i] for i in feedback])
    theme_of = dict(zip(feedback, themes, strict=True))
    return [ClassifiedComment(c, theme_of.get(i)) for i, c in enumerate(found)]


def _free_text(text: str, marker: str) -> str:
    parsed = parse_feedback(text, marker)
    return parsed.text if parsed is not None else text
