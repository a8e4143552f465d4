"""Is a comment feedback about the change, and if so which ADKAR dimension and which sentiment.

Three linear models (logistic regression) over the same TF-IDF features: words and word pairs
for meaning, and character n-grams within words so that typos ("pasword", "noone") and
other languages' inflections still match. They are trained on the ``train`` part of the
shipped corpus the first time a process asks for them; training is deterministic and takes
well under a second, so there are no weight files to ship, trust or download.

A comment that carries the program's marker is always feedback: the marker is the author's
own word and no model overrules it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from ..feedback import parse_feedback
from ..model import ADKAR_DIMENSIONS
from .corpus import LabelledComment, load_corpus
from .cues import dimension_cues, sentiment_cues

__all__ = ["DEFAULT_THRESHOLD", "Classification", "FeedbackClassifier", "shipped_classifier"]

DEFAULT_THRESHOLD = 0.5
"""Probability of being feedback from which a comment counts as feedback."""
CHUNK = 2000
"""Comments turned into features at a time: memory stays flat however many there are."""


@dataclass(frozen=True)
class Classification:
    is_feedback: bool
    confidence: float
    """How likely the comment is feedback about the change, 0 to 1 (1.0 for a marked one)."""
    dimension: str | None
    """The ADKAR dimension it speaks to; None when it is not feedback."""
    sentiment: int | None
    """-1, 0 or 1; None when it is not feedback."""
    marked: bool = False
    """It carried the program's feedback marker (so it is not inferred)."""

    @property
    def inferred(self) -> bool:
        return self.is_feedback and not self.marked


def _features() -> Any:
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
    from sklearn.pipeline import FeatureUnion

    return FeatureUnion([
        ("words", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1,
                                  lowercase=True, dtype=_float32())),
        ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True,
                                  min_df=2, lowercase=True, dtype=_float32())),
        # A few hundred labelled comments cannot teach every way to complain or praise:
        # the cue words give the models a prior that the corpus then weighs.
        ("sentiment", CountVectorizer(analyzer=sentiment_cues, dtype=_float32())),
        ("adkar", CountVectorizer(analyzer=dimension_cues, dtype=_float32())),
    ])


def _float32() -> Any:
    import numpy

    return numpy.float32


def _model(balanced: bool) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=10.0, max_iter=2000,
                              class_weight="balanced" if balanced else None)


class FeedbackClassifier:
    """Trained from labelled comments; :func:`shipped_classifier` gives the shipped one."""

    def __init__(self, comments: Sequence[LabelledComment]) -> None:
        feedback = [c for c in comments if c.is_feedback]
        if not feedback or len(feedback) == len(comments):
            raise ValueError("training needs both feedback and other comments")
        self._features = _features()
        matrix = self._features.fit_transform([c.text for c in comments])
        self._is_feedback = _model(balanced=True).fit(
            matrix, [int(c.is_feedback) for c in comments])
        rows = [i for i, c in enumerate(comments) if c.is_feedback]
        self._dimension = _model(balanced=True).fit(
            matrix[rows], [c.dimension for c in feedback])
        self._sentiment = _model(balanced=False).fit(
            matrix[rows], [c.sentiment for c in feedback])
        self._theme = _model(balanced=True).fit(matrix[rows], [c.theme for c in feedback])

    def classify(self, texts: Sequence[str], marker: str = "#feedback",
                 threshold: float = DEFAULT_THRESHOLD) -> list[Classification]:
        """One classification per text, in order; ``threshold`` is the program's."""
        return self.classify_with_hints(texts, marker, threshold)[0]

    def classify_with_hints(
            self, texts: Sequence[str], marker: str = "#feedback",
            threshold: float = DEFAULT_THRESHOLD,
    ) -> tuple[list[Classification], list[dict[str, float]]]:
        """Each text's classification, and for the feedback among them the theme hints.

        The hints say how much a text resembles each theme people gave the corpus's
        comments: they teach the clustering in :mod:`.themes` that "can't sign in" and
        "SSO loops" are one complaint though they share no word. Features are computed once
        for both. A text that is not feedback gets empty hints.
        """
        results: list[Classification] = []
        hints: list[dict[str, float]] = []
        for start in range(0, len(texts), CHUNK):
            part = texts[start:start + CHUNK]
            matrix = self._features.transform(part)
            found = self._classify(part, matrix, marker, threshold)
            results.extend(found)
            hints.extend(self._hints(matrix, [c.is_feedback for c in found]))
        return results, hints

    def theme_hints(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """The hints of :meth:`classify_with_hints` for texts known to be feedback."""
        if not texts:
            return []
        return self._hints(self._features.transform(texts), [True] * len(texts))

    def _hints(self, matrix: Any, wanted: Sequence[bool]) -> list[dict[str, float]]:
        rows = [i for i, flag in enumerate(wanted) if flag]
        hints: list[dict[str, float]] = [{} for _ in wanted]
        if rows:
            names = [f"theme:{name}" for name in self._theme.classes_]
            for i, chances in zip(rows, self._theme.predict_proba(matrix[rows]), strict=True):
                hints[i] = dict(zip(names, (float(p) for p in chances), strict=True))
        return hints

    def _classify(self, texts: Sequence[str], matrix: Any, marker: str,
                  threshold: float) -> list[Classification]:
        feedback_index = list(self._is_feedback.classes_).index(1)
        chances = self._is_feedback.predict_proba(matrix)[:, feedback_index]
        dimensions = self._dimension.predict(matrix)
        sentiments = self._sentiment.predict(matrix)
        results = []
        for text, chance, dimension, sentiment in zip(
                texts, chances, dimensions, sentiments, strict=True):
            marked = parse_feedback(text, marker) if marker else None
            if marked is not None:
                results.append(Classification(
                    True, 1.0, _lowest_scored(marked.scores) or str(dimension),
                    int(sentiment), marked=True))
            elif chance >= threshold:
                results.append(Classification(True, round(float(chance), 3), str(dimension),
                                              int(sentiment)))
            else:
                results.append(Classification(False, round(float(chance), 3), None, None))
        return results


def _lowest_scored(scores: dict[str, int]) -> str | None:
    """The barrier: ADKAR's first lowest-scored dimension, as the report reads it."""
    if not scores:
        return None
    lowest = min(scores.values())
    return next(d for d in ADKAR_DIMENSIONS if scores.get(d) == lowest)


@cache
def shipped_classifier() -> FeedbackClassifier:
    """The classifier trained on the shipped corpus's ``train`` part (once per process)."""
    return FeedbackClassifier(load_corpus("train"))
