"""Append every captured feedback response to a JSON Lines file."""

from __future__ import annotations

import json
import os
from pathlib import Path

from itsm_change_sdk import FeedbackResponse, Program, hookimpl


def export_path() -> Path:
    return Path(os.environ.get("ITSM_CHANGE_FEEDBACK_EXPORT", "feedback.jsonl"))


@hookimpl
def itsm_change_feedback_captured(program: Program, response: FeedbackResponse) -> None:
    record = {
        "program": program.id,
        "platform": response.platform,
        "id": response.id,
        "person": response.person,
        "unit": response.unit,
        "submitted_at": response.submitted_at.isoformat(),
        "scores": dict(response.scores),
        "text": response.text,
        "source": response.source,
    }
    with export_path().open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, sort_keys=True) + "\n")
