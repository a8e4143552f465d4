"""Unmarked feedback: quality on the held-out corpus, then speed and memory at volume.

    python benchmarks/bench_insights.py                       # quality + 100,000 comments
    python benchmarks/bench_insights.py --comments 20000      # a shorter speed run

Quality is measured on the corpus's ``eval`` part, which the shipped classifier never
trains on: is-feedback precision and recall, dimension and sentiment accuracy on the
feedback items, and for themes the adjusted Rand index against the hand-labelled themes,
one program (kind of change) at a time. Speed is ``itsm_change_sdk.insights.batch.
classify_batch`` (classification and themes, as ``itsm-change feedback classify`` runs it)
over comments drawn from the corpus, each made unique by a ticket number and a word or two.
The training time is reported apart: a process pays it once.
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import time

from sklearn.metrics import adjusted_rand_score

from itsm_change_sdk.insights import shipped_classifier
from itsm_change_sdk.insights.batch import classify_batch
from itsm_change_sdk.insights.corpus import load_corpus
from itsm_change_sdk.insights.themes import ThemeBook

TARGETS = {"precision": 0.85, "recall": 0.70, "dimension": 0.65, "sentiment": 0.75, "ari": 0.4}
TAILS = ["", " thanks", " (again)", " - see above", " today", " fyi", " as discussed"]


def quality() -> dict[str, float]:
    held_out = load_corpus("eval")
    classifier = shipped_classifier()
    found = classifier.classify([c.text for c in held_out])
    hits = sum(c.is_feedback and f.is_feedback for c, f in zip(held_out, found, strict=True))
    said = sum(f.is_feedback for f in found)
    real = sum(c.is_feedback for c in held_out)
    feedback = [c for c in held_out if c.is_feedback]
    # Dimension and sentiment are judged on every feedback item, as if it had been found.
    labelled = list(zip(feedback, classifier.classify([c.text for c in feedback],
                                                      threshold=0.0), strict=True))
    scores = {
        "precision": hits / said,
        "recall": hits / real,
        "dimension": _share(c.dimension == f.dimension for c, f in labelled),
        "sentiment": _share(c.sentiment == f.sentiment for c, f in labelled),
    }
    marked = classifier.classify([f"#feedback {c.text}" for c in held_out])
    scores["marked_always_feedback"] = float(all(f.is_feedback for f in marked))
    aris = []
    for change in sorted({c.change for c in feedback}):
        items = [c for c in feedback if c.change == change]
        texts = [c.text for c in items]
        themes = ThemeBook().assign(texts, classifier.theme_hints(texts))
        aris.append(adjusted_rand_score([c.theme for c in items], [t.id for t in themes]))
        scores[f"ari_{change}"] = aris[-1]
        print(f"  themes for {change}: {len(items)} comments, {len(set(themes))} themes "
              f"(hand-labelled: {len({c.theme for c in items})}), ARI {aris[-1]:.2f}")
    scores["ari"] = sum(aris) / len(aris)
    print(f"held-out: {len(held_out)} comments, {real} of them feedback")
    return scores


def _share(flags: object) -> float:
    values = list(flags)  # type: ignore[call-overload]
    return sum(values) / len(values)


def speed(count: int) -> None:
    rng = random.Random(1)
    pool = [c.text for c in load_corpus()]
    texts = [f"{rng.choice(pool)}{rng.choice(TAILS)} INC{1000000 + i}" for i in range(count)]
    started, cpu = time.perf_counter(), time.process_time()
    results = classify_batch(texts)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    feedback = sum(r.classification.is_feedback for r in results)
    themes = len({r.theme.id for r in results if r.theme})
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{count} comments classified and themed in {elapsed:.1f} s wall, {cpu:.1f} s CPU "
          f"({count / elapsed:,.0f}/s); {feedback} feedback in {themes} themes; "
          f"max RSS {rss:.0f} MB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--comments", type=int, default=100_000)
    args = parser.parse_args()
    started = time.perf_counter()
    shipped_classifier()
    print(f"training on the corpus's train part: {time.perf_counter() - started:.1f} s "
          "(once per process)")
    scores = quality()
    failed = []
    for name, value in scores.items():
        target = TARGETS.get(name)
        verdict = "" if target is None else (" ok" if value >= target else " BELOW TARGET")
        print(f"{name}: {value:.3f}" + (f" (target {target}){verdict}" if target else ""))
        if target is not None and value < target:
            failed.append(name)
    speed(args.comments)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
