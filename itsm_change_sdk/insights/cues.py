"""Words and phrases that lean a comment negative, positive or sarcastic.

Written for this project from general usage (no third-party lexicon), in English with a few
common words in German, French, Spanish and Dutch. They are features, not rules: the
sentiment model learns how much each kind counts.
"""

from __future__ import annotations

import re

__all__ = ["dimension_cues", "sentiment_cues", "word_set"]


def word_set(text: str) -> frozenset[str]:
    """The words of a whitespace-separated list (long lists read better as text)."""
    return frozenset(text.split())


NEGATIVE = word_set("""
slow slower slowly forever never nobody noone useless broken lost missing gone confusing
confused annoying late wrong stuck nightmare waste worse worst fails failed freezes hangs crawls
unusable ridiculous bureaucracy spam furious embarrassing hurts clutter invisible nothing
impossible frustrating frustrated hate terrible awful painful painfully weird weirdly
niemand fehlt langsam traag nadie lento lent personne jamais nunca nooit
""")
NEGATIVE_PHRASES = (
    "no one", "can't", "cannot", "doesn't", "don't", "didn't", "isn't", "won't", "no idea",
    "too long", "too many", "takes forever", "gave up", "give up", "no time", "still waiting",
    "not working", "does not", "did not", "went back", "go back", "no way", "stopped",
)
POSITIVE = word_set("""
finally great helpful better faster quick quicker clear nice good thanks thank love works
glad happy brilliant saved useful decent improvement impressed relief instantly convert
easier simpler best excellent perfect enfin endlich eindelijk gracias danke merci gut goed
""")
POSITIVE_PHRASES = (
    "worth it", "life saver", "first try", "in seconds", "makes sense", "keep it", "works fine",
    "no surprises", "much better", "got used",
)
# Praise said with a straight face about something bad: the cue is the shape, not the word.
SARCASM = (
    "just what", "love it.", "love how", "great, another", "oh sure", "sure, ", "wow", "can't wait",
    "what could go wrong", "progress.", "thanks for the notice", "record speed", "easy.",
    "brilliant,", "lol", "meh",
)
_WORD = re.compile(r"[^\W\d_]+(?:'[a-z]+)?")


def sentiment_cues(text: str) -> list[str]:
    """One token per cue found: ``neg``, ``pos``, ``sarcasm``, ``question`` or ``exclaim``."""
    lowered = text.casefold().replace("\u2019", "'")
    found: list[str] = []
    for word in _WORD.findall(lowered):
        if word in NEGATIVE:
            found.append("neg")
        elif word in POSITIVE:
            found.append("pos")
    found += ["neg" for phrase in NEGATIVE_PHRASES if phrase in lowered]
    found += ["pos" for phrase in POSITIVE_PHRASES if phrase in lowered]
    found += ["sarcasm" for phrase in SARCASM if phrase in lowered]
    if lowered.rstrip().endswith("?"):
        found.append("question")
    if "!" in lowered:
        found.append("exclaim")
    return found


# What each ADKAR stage sounds like when staff talk about a change, after Hiatt's definitions:
# awareness of the need and the plan, desire to take part, knowledge of how, ability to do it
# day to day, reinforcement that keeps it going.
DIMENSION_PHRASES: dict[str, tuple[str, ...]] = {
    "awareness": (
        "nobody told", "no one told", "noone told", "didn't know", "did not know", "heard",
        "announcement", "when is", "when does", "when exactly", "found out", "learned", "heads up",
        "heads-up", "notice", "date", "is it mandatory", "does it apply", "apply to", "warned",
        "informed", "kickoff", "explained the why", "since when", "first time i hear",
    ),
    "desire": (
        "why do we", "why does", "why would we", "don't see", "the point", "sceptical", "skeptical",
        "trusted", "bureaucracy", "i'm in", "all for it", "prefer", "happy we are", "glad we",
        "convert", "worth it", "not worth", "don't want", "refuse", "cut staff", "in theory",
        "i get why", "understand why",
    ),
    "knowledge": (
        "how to", "how do i", "how do we", "don't know how", "training", "guide", "cheat sheet",
        "demo", "video", "workshop", "explain", "understand", "confus", "example", "recording",
        "documentation", "what counts", "which changes", "is there a guide", "out of date",
        "outdated", "wrong article",
    ),
    "ability": (
        "can't", "cannot", "slow", "takes", "minutes", "broken", "fails", "doesn't work",
        "not working", "unusable", "freezes", "loads", "search", "form", "login", "log in",
        "button", "click", "bulk", "faster", "quick", "works", "mobile", "phone", "error",
    ),
    "reinforcement": (
        "still", "old way", "went back", "go back", "anyway", "keep", "skip", "bypass", "ignore",
        "manager", "lead", "recognition", "shout-out", "credit", "thank-you", "after the launch",
        "stopped", "habit", "in parallel", "switched off", "nobody looks", "no feedback",
    ),
}


def dimension_cues(text: str) -> list[str]:
    """One token per ADKAR phrase found, named after its dimension."""
    lowered = text.casefold().replace("\u2019", "'")
    return [dimension for dimension, phrases in DIMENSION_PHRASES.items()
            for phrase in phrases if phrase in lowered]
