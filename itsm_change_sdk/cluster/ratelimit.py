"""One rate limit per platform instance, shared by every worker through Redis.

A sliding window kept in a sorted set: each call is a member scored with the time it was
granted. One Lua script drops the calls older than the window, counts the rest and, when
there is room, adds the new call, atomically and on Redis's own clock, so workers on several
machines with drifting clocks still share one budget. When the window is full the script
answers how long until its oldest call leaves, and the worker sleeps that long, so the budget
is used as soon as it frees up: at most the limit in any window, and close to the limit when
there is enough work.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

import redis

from .settings import ClusterSettings, RateLimit

__all__ = ["RedisRateLimit"]

log = logging.getLogger(__name__)

# KEYS[1] the window; ARGV: window seconds, limit, unique member. Returns 0 (granted) or the
# seconds to wait, as a string (Lua numbers to Redis integers would drop the fraction).
_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window * 1000) + 1000)
  return '0'
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return tostring(tonumber(oldest[2]) + window - now)
"""


class RedisRateLimit:
    """A :class:`~itsm_change_sdk.http.SharedLimit` backed by Redis.

    :param limits: calls per period, by ``platform@host`` or by platform name; an instance
        with neither is not limited here (its plugin's own pacing still applies).
    :param margin: seconds added to the window, since the platform counts a call when it
        arrives, a little after it was granted.
    """

    def __init__(self, client: redis.Redis, limits: Mapping[str, RateLimit], prefix: str,
                 margin: float = 0.25, sleep: Callable[[float], None] = time.sleep) -> None:
        self.client = client
        self.limits = dict(limits)
        self.prefix = prefix
        self.margin = margin
        self.sleep = sleep
        self.script = client.register_script(_SCRIPT)

    @classmethod
    def from_settings(cls, settings: ClusterSettings) -> RedisRateLimit:
        client = redis.Redis.from_url(settings.redis)
        return cls(client, settings.rate_limits, settings.key("rate"), settings.rate_margin)

    def limit_for(self, platform: str, base_url: str) -> tuple[str, RateLimit] | None:
        host = urlsplit(base_url).hostname or ""
        instance = f"{platform}@{host}" if host else platform
        limit = self.limits.get(instance) or self.limits.get(platform)
        return (instance, limit) if limit is not None else None

    def acquire(self, platform: str, base_url: str) -> None:
        found = self.limit_for(platform, base_url)
        if found is None:
            return
        instance, limit = found
        key = f"{self.prefix}:{instance}"
        member = uuid.uuid4().hex
        while True:
            wait = float(self.script(keys=[key],
                                     args=[limit.per + self.margin, limit.calls, member]))
            if wait <= 0:
                return
            log.debug("%s: shared budget of %d calls per %gs spent; waiting %.3fs",
                      instance, limit.calls, limit.per, wait)
            self.sleep(min(wait, limit.per))
