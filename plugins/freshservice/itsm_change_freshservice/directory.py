"""A unit's people: agent group members (by group name) plus explicit member ids."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from itsm_change_sdk.errors import ConfigurationError, NotFound
from itsm_change_sdk.model import Person, Unit

from .api import FreshserviceAPI
from .hooks import PLATFORM_NAME

__all__ = ["person", "unit_members"]


def person(payload: Mapping[str, Any]) -> Person:
    name = " ".join(str(payload.get(k) or "") for k in ("first_name", "last_name")).strip()
    email = payload.get("email") or payload.get("primary_email")
    return Person(id=str(payload["id"]), name=name or str(email or payload["id"]),
                  platform=PLATFORM_NAME, email=str(email) if email else None)


def unit_members(api: FreshserviceAPI, unit: Unit) -> list[Person]:
    """Active agents of ``unit.group`` and ``unit.members``: one paged list of the active
    agents (full-time and occasional) rather than a call per member. An id not in that list
    is an inactive or deleted agent, so it is left out without a read of its own (which every
    apply would otherwise repeat for every former member)."""
    ids: list[str] = []
    people: dict[str, Person] = {}
    if unit.group:
        group = next((g for g in api.agent_groups()
                      if str(g.get("name", "")).casefold() == unit.group.casefold()
                      or str(g.get("id")) == unit.group), None)
        if group is not None:
            ids.extend(str(m) for m in group.get("members") or group.get("agent_ids") or [])
        else:
            people.update(requester_group(api, unit.group))
    ids.extend(m for m in unit.members if m not in ids)
    if ids:
        wanted = set(ids)
        for agent in api.agents(active="true"):
            if str(agent.get("id")) in wanted:
                people[str(agent["id"])] = person(agent)
    return [people[i] for i in dict.fromkeys([*ids, *people]) if i in people]


def requester_group(api: FreshserviceAPI, name: str) -> dict[str, Person]:
    """Requester groups are not in the 2022 spec (unconfirmed): try, then explain."""
    try:
        group = next((g for g in api.requester_groups()
                      if str(g.get("name", "")).casefold() == name.casefold()), None)
    except NotFound:
        group = None
    if group is None:
        raise ConfigurationError(
            f"freshservice: no agent group (or requester group) named {name!r}; check the "
            "unit's group against Admin > Agent Groups"
        )
    return {str(r["id"]): person(r) for r in api.requester_group_members(int(group["id"]))
            if r.get("active", True)}
