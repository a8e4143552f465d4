from __future__ import annotations

from datetime import date

from itsm_change_sdk.model import Effect, EffectKind, Person


def training(person: Person, module: str = "portal-basics", program: str = "portal-rollout",
             **extra) -> Effect:
    values = dict(
        key=f"chg:{program}:training:{module}:{person.id}",
        kind=EffectKind.TRAINING, platform="jira", program=program,
        title=f"Training: {module}", body="Watch the 10-minute video.\nThen close this task.",
        channel="task", recipient=person, due=date(2025, 6, 30),
    )
    values.update(extra)
    return Effect(**values)


def note(ticket_id: str, key: str, body: str = "Use the portal for this request.",
         kind: EffectKind = EffectKind.PROMPT, channel: str = "ticket_note") -> Effect:
    return Effect(key=key, kind=kind, platform="jira", program="portal-rollout",
                  title="Prompt", body=body, channel=channel, ticket_id=ticket_id)
