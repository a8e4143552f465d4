"""What people are saying: a program's feedback comments grouped into themes for the report.

Themes are formed over every comment in the order they were written, so this week's
comments join the themes earlier weeks formed and weeks stay comparable; the grouping is
deterministic, so the same ledger gives the same themes on every run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from ..model import ADKAR_DIMENSIONS, FeedbackResponse
from .classifier import shipped_classifier
from .themes import ThemeBook

__all__ = ["QUOTES", "ThemeVoice", "what_people_say"]

QUOTES = 3


@dataclass
class ThemeVoice:
    label: str
    comments: int = 0
    inferred: int = 0
    """Of which found by the classifier (the rest carried the marker)."""
    by_unit: Counter[str] = field(default_factory=Counter)
    weekly: dict[date, int] = field(default_factory=dict)
    """Week (Monday) -> comments that week, oldest first."""
    dimensions: Counter[str] = field(default_factory=Counter)
    sentiments: list[int] = field(default_factory=list)
    quotes: list[tuple[str, float | None]] = field(default_factory=list)
    """Its first comments' text, with the classifier's confidence for inferred ones."""

    @property
    def sentiment(self) -> float | None:
        """Mean sentiment, -1 (negative) to 1 (positive)."""
        return sum(self.sentiments) / len(self.sentiments) if self.sentiments else None

    @property
    def dimension(self) -> str | None:
        """The ADKAR dimension most of its comments speak to (the earlier one on a tie)."""
        if not self.dimensions:
            return None
        order = {d: i for i, d in enumerate(ADKAR_DIMENSIONS)}
        return min(self.dimensions, key=lambda d: (-self.dimensions[d], order.get(d, 9)))


def what_people_say(responses: Sequence[FeedbackResponse]) -> list[ThemeVoice]:
    """Themes over the free text of ``responses``, largest first.

    Marked answers take their dimension from their lowest score and their sentiment from
    the classifier; inferred ones carry both from capture.
    """
    spoken = sorted((r for r in responses if r.text.strip()),
                    key=lambda r: (r.submitted_at, r.id))
    if not spoken:
        return []
    classifier = shipped_classifier()
    texts = [r.text for r in spoken]
    judged = classifier.classify(texts, threshold=0.0)
    themes = ThemeBook().assign(texts, classifier.theme_hints(texts))
    voices: dict[str, ThemeVoice] = {}
    for response, judgement, theme in zip(spoken, judged, themes, strict=True):
        voice = voices.setdefault(theme.id, ThemeVoice(theme.label))
        voice.comments += 1
        voice.inferred += response.inferred
        voice.by_unit[response.unit or "-"] += 1
        week = response.submitted_at.date() - timedelta(days=response.submitted_at.weekday())
        voice.weekly[week] = voice.weekly.get(week, 0) + 1
        dimension = response.dimension or _lowest(response.scores) or judgement.dimension
        sentiment = response.sentiment if response.sentiment is not None \
            else judgement.sentiment
        if dimension:
            voice.dimensions[dimension] += 1
        if sentiment is not None:
            voice.sentiments.append(sentiment)
        if len(voice.quotes) < QUOTES:
            voice.quotes.append((" ".join(response.text.split()),
                                 response.confidence if response.inferred else None))
    return sorted(voices.values(), key=lambda v: (-v.comments, v.label))


def _lowest(scores: dict[str, int] | object) -> str | None:
    if not isinstance(scores, dict) or not scores:
        return None
    low = min(scores.values())
    return next((d for d in ADKAR_DIMENSIONS if scores.get(d) == low), None)
