"""Planned actions to and from JSON, so a batch travels to a worker as plain data (the
broker never carries pickles)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from ..model import Effect, EffectKind, Person
from ..planner import PlannedAction

__all__ = ["action_from_dict", "action_to_dict"]


def _effect_to_dict(effect: Effect) -> dict[str, Any]:
    person = effect.recipient
    return {
        "key": effect.key, "kind": str(effect.kind), "platform": effect.platform,
        "program": effect.program, "title": effect.title, "body": effect.body,
        "channel": effect.channel,
        "recipient": None if person is None else {
            "id": person.id, "name": person.name, "platform": person.platform,
            "email": person.email},
        "ticket_id": effect.ticket_id, "audience_groups": list(effect.audience_groups),
        "due": effect.due.isoformat() if effect.due else None,
        "visible_from": effect.visible_from.isoformat() if effect.visible_from else None,
        "visible_until": effect.visible_until.isoformat() if effect.visible_until else None,
        "meta": dict(effect.meta),
    }


def _effect_from_dict(data: dict[str, Any]) -> Effect:
    person = data.get("recipient")

    def when(name: str) -> datetime | None:
        value = data.get(name)
        return datetime.fromisoformat(value) if value else None

    return Effect(
        key=data["key"], kind=EffectKind(data["kind"]), platform=data["platform"],
        program=data["program"], title=data["title"], body=data["body"],
        channel=data["channel"], recipient=Person(**person) if person else None,
        ticket_id=data.get("ticket_id"), audience_groups=tuple(data["audience_groups"]),
        due=date.fromisoformat(data["due"]) if data.get("due") else None,
        visible_from=when("visible_from"), visible_until=when("visible_until"),
        meta=dict(data.get("meta") or {}),
    )


def action_to_dict(action: PlannedAction) -> dict[str, Any]:
    """The action and what the planner saw of its row (state and fingerprint), so the worker
    can tell whether anyone acted on the key since."""
    row = action.row
    return {
        "action": action.action, "key": action.key, "kind": action.kind,
        "platform": action.platform, "detail": action.detail,
        "effect": _effect_to_dict(action.effect) if action.effect is not None else None,
        "seen": None if row is None else {"state": row.state, "fingerprint": row.fingerprint},
    }


def action_from_dict(data: dict[str, Any]) -> tuple[PlannedAction, dict[str, Any] | None]:
    """The action (without its row: the worker reads the row now) and what was seen."""
    effect = _effect_from_dict(data["effect"]) if data.get("effect") else None
    action = PlannedAction(data["action"], data["key"], data["kind"], data["platform"],
                           data.get("detail", ""), effect, None)
    return action, data.get("seen")
