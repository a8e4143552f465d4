"""Take personal data out of a comment before anything about it is stored.

Replaced: e-mail addresses (``[email]``), phone numbers (``[phone]``), ``@mentions`` and
personal names other than the author's (``[name]``). Names are found two ways: the people the
caller knows (a unit's members, with their display names) and a short list of common given
names written for this project, each followed by a capitalised surname when there is one.
Given names that are also everyday English words (Will, May, Mark, Bill...) are left out of the
list on purpose: a redacted "Will the old tool stay?" would cost more than it protects; such
people are still redacted when the caller names them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache

from .cues import word_set

__all__ = ["Redactor", "redact"]

EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
MENTION = re.compile(r"(?<![\w@])@[\w.-]*\w")
# Seven or more digits in groups, optionally with a country code or an area code in brackets;
# ticket numbers (INC0012345) are glued to letters and so never match.
PHONE = re.compile(r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,5}\)[\s.-]?)?\d[\d\s.-]{5,}\d(?!\w)")
NOT_A_PHONE = re.compile(r"^(?:\d{4}-\d{2}-\d{2}|\d{1,3}(?:\.\d{1,3}){3})$")  # dates, IPv4
WORD = re.compile(r"[^\W\d_][\w'-]*")

GIVEN_NAMES = word_set("""
Aaron Abdul Adam Adrian Ahmed Aisha Alan Alex Alexander Alice Alicia Amanda Amir Amy Ana Andrea
Andrew Angela Anna Anne Anton Antonio Arjun Ben Benjamin Bernard Beth Brian Bruno Carl Carlos
Carmen Caroline Catherine Charles Charlotte Chen Chloe Chris Christian Christine Claire Claudia
Daniel Daniela David Deepak Diana Diego Dmitri Elena Elizabeth Ella Emily Emma Eric Erik Eva
Fatima Felix Fernando Fiona Francesca Francisco Gabriel Gareth George Georg Gordon Greg Hana
Hannah Hans Harry Helen Henrik Hugo Ian Igor Ingrid Irene Isabel Ivan James Jan Jane Jason Javier
Jennifer Jessica Jie Joanna Johan John Jonas Jorge Jose Joseph Juan Julia Julian Karen Karim
Kate Katie Kevin Klaus Laura Lars Lena Leo Li Linda Lisa Liam Lucas Lucia Luis Lukas Maria Marie
Marco Marta Martin Mary Matteo Matthew Max Mehmet Mei Michael Michelle Miguel Mohamed Mohammed
Monika Nadia Natalia Nathan Nicola Nicolas Nina Noah Olga Oliver Olivia Omar Oscar Pablo Paolo
Paul Paula Pedro Peter Petra Philip Pierre Pieter Priya Rachel Rahul Raj Ravi Rebecca Richard
Robert Roberto Ryan Sam Samuel Sandra Sara Sarah Sebastian Sergei Simon Sofia Sophie Stefan
Stefano Stephen Steven Susan Sven Tanja Thomas Tim Tom Tomas Valentina Victor Vikram Wei
William Yuki Yusuf Zoe
""")


def _names_pattern(names: Iterable[str]) -> re.Pattern[str] | None:
    words = sorted({w for w in names if len(w) > 1}, key=len, reverse=True)
    if not words:
        return None
    alternatives = "|".join(re.escape(w) for w in words)
    # A known name, and the capitalised word after it when that looks like a surname.
    return re.compile(rf"\b(?:{alternatives})\b(?:\s+[A-Z][a-z'-]+)?")


@cache
def _given_names() -> re.Pattern[str] | None:
    return _names_pattern(GIVEN_NAMES)


class Redactor:
    """Redacts one comment's text; ``author`` and ``people`` are display names or logins."""

    def __init__(self, people: Iterable[str] = ()) -> None:
        self._people = _names_pattern(w for person in people for w in WORD.findall(person)
                                      if w[:1].isupper())

    def __call__(self, text: str, author: str | None = None) -> str:
        keep = set(WORD.findall(author or ""))
        text = EMAIL.sub("[email]", text)
        text = MENTION.sub("[name]", text)
        text = PHONE.sub(_phone, text)
        for pattern in (self._people, _given_names()):
            if pattern is not None:
                text = pattern.sub(lambda m: _name(m, keep), text)
        return text


def _phone(match: re.Match[str]) -> str:
    found = match.group(0).strip()
    digits = sum(ch.isdigit() for ch in found)
    if digits < 7 or NOT_A_PHONE.match(found):
        return match.group(0)
    return "[phone]"


def _name(match: re.Match[str], keep: set[str]) -> str:
    words = match.group(0).split()
    if words[0] in keep:
        return match.group(0)
    return "[name]"


def redact(text: str, author: str | None = None, people: Iterable[str] = ()) -> str:
    """``text`` with e-mails, phone numbers and names other than ``author``'s replaced."""
    return Redactor(people)(text, author)
