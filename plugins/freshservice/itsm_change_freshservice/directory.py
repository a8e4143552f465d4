"""A unit's people: agent group members (by group name) plus explicit member ids."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from itsm_change_sdk.errors import ConfigurationError, NotFound
from itsm_change_sdk.model import Person, Unit

from .api import FreshserviceAPI
from .settings import PLATFORM_NAME

__all__ = ["Directory", "person", "unit_members"]

LISTING_TTL = 300.0
"""Seconds a listing of agents or agent groups is reused: long enough for one apply or sync,
short enough that a long-running ``serve`` sees a new hire within minutes."""


class Directory:
    """The account's agent groups and active agents, each listed once and reused for
    :data:`LISTING_TTL` seconds: an apply asks for every unit's members, and each unit would
    otherwise page through the whole agent list again (55 requests a unit at 1,000 agents)."""

    def __init__(self, api: FreshserviceAPI, ttl: float = LISTING_TTL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.api = api
        self.ttl = ttl
        self.clock = clock
        self._lock = threading.Lock()
        self._groups: tuple[float, list[dict[str, Any]]] | None = None
        self._agents: tuple[float, dict[str, dict[str, Any]]] | None = None

    def groups(self) -> list[dict[str, Any]]:
        with self._lock:
            if self._groups is None or self.clock() - self._groups[0] > self.ttl:
                self._groups = (self.clock(), list(self.api.agent_groups()))
            return self._groups[1]

    def active_agents(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            if self._agents is None or self.clock() - self._agents[0] > self.ttl:
                self._agents = (self.clock(), {str(a.get("id")): a
                                               for a in self.api.agents(active="true")})
            return self._agents[1]


def person(payload: Mapping[str, Any]) -> Person:
    name = " ".join(str(payload.get(k) or "") for k in ("first_name", "last_name")).strip()
    email = payload.get("email") or payload.get("primary_email")
    return Person(id=str(payload["id"]), name=name or str(email or payload["id"]),
                  platform=PLATFORM_NAME, email=str(email) if email else None)


def unit_members(directory: Directory, unit: Unit) -> list[Person]:
    """Active agents of ``unit.group`` and ``unit.members``: one paged list of the active
    agents (full-time and occasional), shared by every unit, rather than a call per member.
    An id not in that list is an inactive or deleted agent, so it is left out without a read
    of its own (which every apply would otherwise repeat for every former member)."""
    api = directory.api
    ids: list[str] = []
    people: dict[str, Person] = {}
    if unit.group:
        group = next((g for g in directory.groups()
                      if str(g.get("name", "")).casefold() == unit.group.casefold()
                      or str(g.get("id")) == unit.group), None)
        if group is not None:
            ids.extend(str(m) for m in group.get("members") or group.get("agent_ids") or [])
        else:
            people.update(requester_group(api, unit.group))
    ids.extend(m for m in unit.members if m not in ids)
    if ids:
        agents = directory.active_agents()
        for agent_id in ids:
            if agent_id in agents:
                people[agent_id] = person(agents[agent_id])
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
