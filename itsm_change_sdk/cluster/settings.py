"""The cluster's settings, read from the environment so that ``serve``, every worker and
``status`` agree without a shared file."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..errors import ConfigurationError

__all__ = ["DEFAULT_BROKER", "ClusterSettings", "RateLimit", "parse_rate_limits"]

DEFAULT_BROKER = "redis://127.0.0.1:6379/0"
_LIMIT = re.compile(r"^\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)?\s*(s|m|h)?\s*$")
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass(frozen=True)
class RateLimit:
    """At most ``calls`` per ``per`` seconds."""

    calls: int
    per: float


def parse_rate_limits(text: str) -> dict[str, RateLimit]:
    """``jira=100/1m, freshservice=140/60s`` to limits per platform (or ``name@host``)."""
    limits: dict[str, RateLimit] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        match = _LIMIT.match(value)
        if not name.strip() or not match:
            raise ConfigurationError(
                f"ITSM_CHANGE_RATE_LIMITS: {part!r} is not PLATFORM=CALLS/PERIOD; write it "
                "like 'jira=100/1m' or 'freshservice@acme.freshservice.com=140/60s'")
        count, amount, unit = match.groups()
        per = float(amount or 1) * _UNITS[unit or "s"]
        if int(count) < 1 or per <= 0:
            raise ConfigurationError(f"ITSM_CHANGE_RATE_LIMITS: {part!r} allows no calls")
        limits[name.strip()] = RateLimit(int(count), per)
    return limits


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not a number of seconds") from None
    if value <= 0:
        raise ConfigurationError(f"{name} must be more than 0 seconds")
    return value


@dataclass(frozen=True)
class ClusterSettings:
    """Where the broker is and how the cluster paces itself.

    :param broker: the Celery broker URL (``ITSM_CHANGE_BROKER_URL``); Redis is the
        documented one, and also keeps the shared rate limit and the workers' heartbeats.
    :param redis: the Redis for rate limits, tick locks and heartbeats
        (``ITSM_CHANGE_REDIS_URL``; default: the broker when it is Redis).
    :param prefix: put before every key and queue name, so several clusters can share one
        Redis (``ITSM_CHANGE_CLUSTER_PREFIX``).
    :param visibility_timeout: seconds before a task taken by a worker that went silent is
        delivered again; longer than the longest task (``ITSM_CHANGE_VISIBILITY_TIMEOUT``).
    :param tick: seconds between scheduler ticks (``ITSM_CHANGE_SERVE_TICK``, as ``serve``).
    :param rate_limits: calls per period per platform instance
        (``ITSM_CHANGE_RATE_LIMITS``).
    """

    broker: str = DEFAULT_BROKER
    redis: str = DEFAULT_BROKER
    prefix: str = "itsm-change"
    visibility_timeout: float = 3600.0
    tick: float = 60.0
    rate_limits: Mapping[str, RateLimit] = field(default_factory=dict)
    rate_margin: float = 0.25
    """Seconds added to each window: calls are counted where they arrive, a little later."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ClusterSettings:
        env = os.environ if env is None else env
        broker = env.get("ITSM_CHANGE_BROKER_URL", "").strip() or DEFAULT_BROKER
        default_redis = broker if broker.startswith(("redis://", "rediss://")) \
            else DEFAULT_BROKER
        return cls(
            broker=broker,
            redis=env.get("ITSM_CHANGE_REDIS_URL", "").strip() or default_redis,
            prefix=env.get("ITSM_CHANGE_CLUSTER_PREFIX", "").strip() or "itsm-change",
            visibility_timeout=_number(env, "ITSM_CHANGE_VISIBILITY_TIMEOUT", 3600.0),
            tick=_number(env, "ITSM_CHANGE_SERVE_TICK", 60.0),
            rate_limits=parse_rate_limits(env.get("ITSM_CHANGE_RATE_LIMITS", "")),
            rate_margin=_number(env, "ITSM_CHANGE_RATE_MARGIN", 0.25),
        )

    @property
    def queue(self) -> str:
        return f"{self.prefix}.tasks"

    def key(self, *parts: str) -> str:
        """A Redis key of this cluster."""
        return ":".join((self.prefix, *parts))
