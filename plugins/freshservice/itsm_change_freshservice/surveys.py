"""Freshservice CSAT answers as feedback responses.

The shape of ``GET /api/v2/tickets/{id}/csat_response`` is not in the published spec; this
reads the fields public clients show (``overall_rating``, ``questionnaire_responses`` with
``question.question_text`` and ``answers[].answer_text``, ``opinion``/``feedback``) and skips
anything else rather than guessing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from itsm_change_sdk.model import FeedbackResponse, Program

from .mapping import parse_time

__all__ = ["response_from_csat"]


def _score(value: Any) -> int | None:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if 1 <= number <= 5 else None


def response_from_csat(
    csat: Mapping[str, Any], *, ticket: Mapping[str, Any], program: Program, platform: str
) -> FeedbackResponse | None:
    """A response when at least one ADKAR dimension can be read; otherwise None."""
    survey = program.surveys[0] if program.surveys else None
    dimensions = survey.dimensions if survey else ()
    scores: dict[str, int] = {}
    texts: list[str] = []
    for item in csat.get("questionnaire_responses") or []:
        if not isinstance(item, Mapping):
            continue
        question = item.get("question")
        qtext = str(question.get("question_text", "")) if isinstance(question, Mapping) else ""
        answers = [a for a in item.get("answers") or [] if isinstance(a, Mapping)]
        for answer in answers:
            score = _score(answer.get("answer_text"))
            dimension = next((d for d in dimensions if d in qtext.casefold()), None)
            if dimension and score is not None:
                scores[dimension] = score
            elif answer.get("answer_text"):
                texts.append(str(answer["answer_text"]))
    for name in ("opinion", "feedback"):
        if isinstance(csat.get(name), str) and csat[name].strip():
            texts.append(csat[name].strip())
    submitted = parse_time(csat.get("created_at")) or parse_time(ticket.get("updated_at"))
    if not scores or submitted is None:
        return None
    return FeedbackResponse(
        id=f"csat:{csat.get('id', ticket.get('id'))}",
        platform=platform,
        program=program.id,
        person=str(ticket.get("requester_id") or ""),
        submitted_at=submitted,
        scores=scores,
        text="\n".join(texts),
        source="survey",
        ticket_id=str(ticket.get("id")),
        survey=survey.id if survey else None,
    )
