"""The feedback marker: how staff answer a pulse survey in any ticket comment or note.

Syntax (the marker is the program's ``feedback_marker``, ``#feedback`` by default)::

    #feedback awareness=4 desire=3 knowledge=4 ability=2 reinforcement=3 Search is slow

* scores are ``dimension=N`` or ``dimension:N`` with N from 1 to 5; dimensions may be
  shortened to two letters (``aw de kn ab re``) and are case-insensitive;
* ``survey=<id>`` names the survey answered (optional);
* everything else after the marker is the free-text answer; a marker with no scores is
  free-text feedback only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .model import ADKAR_DIMENSIONS

__all__ = ["ParsedFeedback", "example_answer", "parse_feedback"]

_SHORT = {name[:2]: name for name in ADKAR_DIMENSIONS}
_TOKEN = re.compile(r"^([A-Za-z]+)[=:](\S+)$")


@dataclass(frozen=True)
class ParsedFeedback:
    scores: dict[str, int] = field(default_factory=dict)
    text: str = ""
    survey: str | None = None


def parse_feedback(text: str, marker: str) -> ParsedFeedback | None:
    """The answer in ``text`` after ``marker``, or None when the marker is absent."""
    position = text.casefold().find(marker.casefold())
    if position < 0:
        return None
    rest = text[position + len(marker):]
    scores: dict[str, int] = {}
    survey: str | None = None
    words: list[str] = []
    for token in rest.split():
        match = _TOKEN.match(token)
        if match:
            name, value = match.group(1).casefold(), match.group(2)
            dimension = name if name in ADKAR_DIMENSIONS else _SHORT.get(name)
            if dimension and value.isdigit() and 1 <= int(value) <= 5:
                scores[dimension] = int(value)
                continue
            if name == "survey":
                survey = value
                continue
        words.append(token)
    return ParsedFeedback(scores, " ".join(words), survey)


def example_answer(marker: str) -> str:
    return f"{marker} awareness=4 desire=3 knowledge=4 ability=3 reinforcement=2 <what would help>"
