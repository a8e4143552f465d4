"""Best effort: answers from ServiceNow's own Assessments and Surveys (``asmt_metric_result``).

Unconfirmed against a live instance: the dot-walked names ``instance.user``,
``instance.metric_type.name`` and ``metric.name`` come from the data model documentation, not
from an API reference. A survey (``asmt_metric_type``) is taken to belong to the program when
its name is the program survey's id or title; a question (``asmt_metric``) whose name is an
ADKAR dimension gives that dimension's score, any other string answer is the free text.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from itsm_change_sdk.model import FeedbackResponse, Program

from .mapping import parse_sn_datetime
from .query import Query, UnsafeQueryValue, check_value, sn_datetime

if TYPE_CHECKING:
    from .client import ServiceNowPlatform

__all__ = ["collect"]

FIELDS = ("sys_id", "instance", "instance.user", "instance.metric_type.name", "metric.name",
          "actual_value", "string_value", "sys_created_on")


def _names(program: Program) -> dict[str, str]:
    out: dict[str, str] = {}
    for survey in program.surveys:
        for name in (survey.id, survey.title):
            try:
                out[check_value(name).casefold()] = survey.id
            except UnsafeQueryValue:
                continue
    return out


def collect(platform: ServiceNowPlatform, program: Program,
            since: datetime | None) -> Iterator[FeedbackResponse]:
    names = _names(program)
    if not names:
        return iter(())
    query = Query().any_of("instance.metric_type.name", sorted(names))
    if since is not None:
        query.gt("sys_created_on", sn_datetime(since))
    query.order_by("instance", "sys_id")
    rows = platform.rows("asmt_metric_result", query, FIELDS)
    return _group(rows, program, names)


def _group(rows: Iterator[dict[str, Any]], program: Program,
           names: dict[str, str]) -> Iterator[FeedbackResponse]:
    current: list[dict[str, Any]] = []
    for row in rows:
        if current and row.get("instance") != current[0].get("instance"):
            yield _response(current, program, names)
            current = []
        current.append(row)
    if current:
        yield _response(current, program, names)


def _response(rows: list[dict[str, Any]], program: Program,
              names: dict[str, str]) -> FeedbackResponse:
    first = rows[0]
    survey_id = names.get(str(first.get("instance.metric_type.name") or "").casefold())
    dimensions = set(program.survey(survey_id).dimensions) if survey_id else set()
    scores: dict[str, int] = {}
    texts: list[str] = []
    for row in rows:
        question = str(row.get("metric.name") or "").casefold()
        if question in dimensions:
            try:
                scores[question] = int(float(str(row.get("actual_value") or "")))
            except ValueError:
                continue
        elif row.get("string_value"):
            texts.append(str(row["string_value"]))
    times = [t for t in (parse_sn_datetime(r.get("sys_created_on")) for r in rows) if t]
    submitted = max(times, default=None)
    assert submitted is not None
    return FeedbackResponse(
        id=f"survey:{first.get('instance')}", platform="servicenow", program=program.id,
        person=str(first.get("instance.user") or ""), submitted_at=submitted, scores=scores,
        text="\n".join(texts), source="survey", survey=survey_id,
    )
