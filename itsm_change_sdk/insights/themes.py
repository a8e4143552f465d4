"""Group a program's feedback into themes a change lead can read, stable from week to week.

A comment becomes a bag of word stems weighted by how rare each stem is in the shipped
corpus (a fixed weighting, so this week's comment and last month's are measured alike),
plus the classifier's hints of which known kind of complaint or praise it resembles. New
comments first join the nearest existing theme; those that join none are grouped among
themselves (agglomerative clustering, cosine distance, complete linkage) into new themes.
Comments are filed in batches, so a hundred thousand of them never need a hundred thousand
squared distances. A theme's label is its most characteristic words.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from .corpus import load_corpus
from .cues import word_set

__all__ = ["HINT_WEIGHT", "JOIN_SIMILARITY", "SPLIT_DISTANCE", "Theme", "ThemeBook", "words_of"]

JOIN_SIMILARITY = 0.3
"""How similar (cosine) a comment must be to a theme's centre to join it."""
HINT_WEIGHT = 3.0
"""How much the learned theme hints count against the words (the words have length 1)."""
SPLIT_DISTANCE = 0.7
"""Comments further apart than this (cosine distance, complete linkage) form separate themes."""
COMMON_SHARE = 0.4
"""A word in more than this share of a program's comments is too common to name a theme."""
BATCH = 500
DIMENSIONS = 2**14
"""Stems and hints are hashed into this many features: no vocabulary to grow or store."""

_WORD = re.compile(r"[^\W\d_]{2,}")
STOP_WORDS = word_set("""
a about after again all also am an and any anyone anything are as at be because been before
being both but by can could did do does doing done each even every for from get gets got had
has have having he her here him his how i if in into is it its just me more most my no not now
of off on once one only or other our out over own same she should so some still such than that
the their them then there these they this those through to too under until up us very was we
were what when where which while who whom why will with would you your yours im ive dont cant
isnt didnt doesnt wont thats theres one two three
new old people users user team today week day days time
""")
_SUFFIXES = ("ing", "ed", "es", "s", "ly")


def _stem(word: str) -> str:
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def _content_words(text: str) -> list[str]:
    lowered = text.casefold().replace("\u2019", "'").replace("'", "")
    return [w for w in _WORD.findall(lowered) if w not in STOP_WORDS]


def words_of(text: str) -> list[str]:
    """The content stems of a comment (lower case, stop words out)."""
    return [_stem(w) for w in _content_words(text)]


@cache
def _rarity() -> tuple[Mapping[str, float], float]:
    """Inverse document frequency of each stem over the shipped corpus, and the default."""
    texts = [c.text for c in load_corpus()]
    seen = Counter(stem for text in texts for stem in set(words_of(text)))
    total = len(texts)
    weights = {stem: math.log((1 + total) / (1 + count)) + 1 for stem, count in seen.items()}
    return weights, math.log(1 + total) + 1


def _weighted(text: str) -> dict[str, float]:
    weights, unseen = _rarity()
    counts = Counter(words_of(text))
    vector = {stem: (1 + math.log(n)) * weights.get(stem, unseen) for stem, n in counts.items()}
    norm = math.sqrt(sum(v * v for v in vector.values()))
    return {k: v / norm for k, v in vector.items()} if norm else {}


@cache
def _hasher() -> Any:
    from sklearn.feature_extraction import FeatureHasher

    return FeatureHasher(n_features=DIMENSIONS, alternate_sign=False, dtype=_float32())


def _float32() -> Any:
    import numpy

    return numpy.float32


def _matrix(texts: Sequence[str], hints: Sequence[Mapping[str, float]] | None) -> Any:
    """Rows of unit length: the weighted stems plus the weighted hints."""
    from sklearn.preprocessing import normalize

    rows = [_weighted(text) for text in texts]
    if hints is not None:
        rows = [{**row, **{k: p * HINT_WEIGHT for k, p in hint.items()}}
                for row, hint in zip(rows, hints, strict=True)]
    return normalize(_hasher().transform(rows))


@dataclass(eq=False)
class Theme:
    """A group of comments; compared by identity, as it grows while comments join."""

    id: str
    size: int = 0
    words: Counter[str] = field(default_factory=Counter)
    """In how many of its comments each content word appears, for the label."""

    label: str = ""
    """Its three most characteristic words (set by :class:`ThemeBook` as comments join)."""


class ThemeBook:
    """One program's themes; :meth:`assign` files new comments under them."""

    def __init__(self) -> None:
        import numpy

        self.themes: list[Theme] = []
        self._sums = numpy.zeros((0, DIMENSIONS), dtype=numpy.float32)

    def assign(self, texts: Sequence[str],
               hints: Sequence[Mapping[str, float]] | None = None) -> list[Theme]:
        """The theme of each text, joining existing themes first, then making new ones.

        ``hints`` (from :meth:`FeedbackClassifier.theme_hints`) weigh in beside the words.
        """
        found: list[Theme] = []
        for start in range(0, len(texts), BATCH):
            part = texts[start:start + BATCH]
            part_hints = None if hints is None else hints[start:start + BATCH]
            found.extend(self._assign_batch(part, _matrix(part, part_hints)))
        return found

    def _assign_batch(self, texts: Sequence[str], matrix: Any) -> list[Theme]:
        import numpy

        chosen = numpy.full(len(texts), -1)
        if self.themes:
            norms = numpy.linalg.norm(self._sums, axis=1)
            centres = self._sums / numpy.maximum(norms, 1e-12)[:, None]
            similarity = numpy.asarray(matrix @ centres.T)
            best = similarity.argmax(axis=1)
            joins = similarity[numpy.arange(len(texts)), best] >= JOIN_SIMILARITY
            chosen[joins] = best[joins]
        loose = numpy.flatnonzero(chosen < 0)
        for group in _cluster(matrix[loose]):
            self.themes.append(Theme(id=f"t{len(self.themes) + 1}"))
            chosen[loose[group]] = len(self.themes) - 1
        grown = numpy.zeros((len(self.themes), DIMENSIONS), dtype=numpy.float32)
        grown[: len(self._sums)] = self._sums
        self._sums = grown
        for index, text in zip(chosen, texts, strict=True):
            theme = self.themes[index]
            theme.size += 1
            theme.words.update(set(_content_words(text)))
        from scipy.sparse import csr_matrix

        membership = csr_matrix((numpy.ones(len(texts), dtype=numpy.float32),
                                 (chosen, numpy.arange(len(texts)))),
                                shape=(len(self.themes), len(texts)))
        self._sums += (membership @ matrix).toarray()
        self._relabel()
        return [self.themes[index] for index in chosen]

    def _relabel(self) -> None:
        """Label each theme by words shared by many of its comments and rare elsewhere;
        a word in most of the program's comments (the change's own name) labels none."""
        weights, unseen = _rarity()
        total = sum(theme.size for theme in self.themes)
        overall: Counter[str] = Counter()
        for theme in self.themes:
            overall.update(theme.words)
        for theme in self.themes:
            scored = {word: count * count * weights.get(_stem(word), unseen)
                      for word, count in theme.words.items()
                      if total < 4 or overall[word] <= COMMON_SHARE * total}
            top = sorted(scored, key=lambda w: (-scored[w], w))[:3]
            theme.label = " / ".join(top) or "(no words)"


def _cluster(matrix: Any) -> list[Any]:
    """Index arrays of the rows that belong together."""
    import numpy

    count = matrix.shape[0]
    if count < 2:
        return [numpy.arange(count)] if count else []
    from sklearn.cluster import AgglomerativeClustering

    distance = numpy.clip(1.0 - numpy.asarray((matrix @ matrix.T).todense()), 0.0, 2.0)
    labels = AgglomerativeClustering(
        n_clusters=None, metric="precomputed", linkage="complete",
        distance_threshold=SPLIT_DISTANCE).fit_predict(distance)
    return [numpy.flatnonzero(labels == label) for label in sorted(set(labels.tolist()))]
