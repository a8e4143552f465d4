"""Feedback in one unmarked comment, ready for the ledger: classified, then redacted."""

from __future__ import annotations

from collections.abc import Iterable

from ..model import Comment, FeedbackResponse, Program
from .classifier import shipped_classifier
from .redact import redact

__all__ = ["infer_feedback"]


def infer_feedback(program: Program, comment: Comment, unit: str | None,
                   people: Iterable[str] = ()) -> FeedbackResponse | None:
    """The feedback ``comment`` gives about the program's change, or None.

    None when the program does not read this platform's or unit's comments, when the
    comment carries the marker (the marked path captures it), or when the classifier's
    confidence is under the program's threshold. Only the redacted text is returned.
    """
    setting = program.unmarked_feedback
    if not setting.covers(comment.platform, unit):
        return None
    [found] = shipped_classifier().classify(
        [comment.text], marker=program.feedback_marker, threshold=setting.threshold)
    if not found.inferred:
        return None
    return FeedbackResponse(
        id=f"comment:{comment.id}", platform=comment.platform, program=program.id,
        person=comment.author, submitted_at=comment.created_at, scores={},
        text=redact(comment.text, author=comment.author, people=people), source="comment",
        ticket_id=comment.ticket_id, unit=unit, inferred=True, confidence=found.confidence,
        dimension=found.dimension, sentiment=found.sentiment,
    )
