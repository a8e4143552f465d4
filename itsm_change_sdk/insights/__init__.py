"""Feedback in ordinary comments: found, classified, redacted and grouped into themes, offline.

Needs the ``insights`` extra (``pip install 'itsm-change-sdk[insights]'``, scikit-learn);
the rest of the SDK never imports it. Everything it learns from ships in this package
(``corpus.tsv``, ``cues.py``); nothing is downloaded.
"""

from __future__ import annotations

from ..errors import ConfigurationError
from .classifier import DEFAULT_THRESHOLD, Classification, FeedbackClassifier, shipped_classifier
from .redact import Redactor, redact
from .themes import Theme, ThemeBook

__all__ = [
    "DEFAULT_THRESHOLD",
    "Classification",
    "FeedbackClassifier",
    "Redactor",
    "Theme",
    "ThemeBook",
    "redact",
    "require_insights",
    "shipped_classifier",
]


def require_insights() -> None:
    """Fail with what to install when the ``insights`` extra is missing."""
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise ConfigurationError(
            "finding feedback in unmarked comments needs the insights extra: "
            "pip install 'itsm-change-sdk[insights]'") from None
