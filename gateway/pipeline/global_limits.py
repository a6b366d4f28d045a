"""Global limits: the admission buckets kept in Redis, so N gateway processes keep one quota.

One Lua script (GCRA, run with EVALSHA) per admission, or per batch of waiting calls: it
reads the bucket's theoretical arrival time, takes up to `want` tokens, and answers how
many it took and how long until the next one. Redis's own clock (`TIME`) is the only clock,
so process clocks never disagree. The key expires once the bucket would be full again.

Redis is never a dependency; the failure policy is `gateway.redis.Link`'s, as for the
shared cache tier:

- a call waits for its admission at most `[limits] redis_timeout_seconds`, then takes its
  token from the local share; a reply later than that still counts as Redis answering;
- a failed or unresponsive Redis (`[redis] unresponsive_seconds`) means each process falls
  back to its local share of the quota (rate divided by the number of processes,
  `[limits] replicas` times `[server] workers`), logs the transition once, sets
  `mlgw_rate_limit_shared_fallback` to 1, and asks Redis again only after
  `redis_cooldown_seconds`; when Redis answers again it logs that too;
- at most `redis_max_in_flight` scripts run at once per process; beyond that calls queue
  locally and the queue is admitted in batches (one script for many tokens).

The script touches one key, so it runs on Redis Cluster as it does on one node.
"""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack

from gateway import metrics
from gateway.cache_config import RedisConfig
from gateway.limits_config import LimitsConfig
from gateway.redis import Link, RedisClient, open_redis

log = logging.getLogger("gateway.limits")

#: KEYS[1] bucket; ARGV: microseconds per token, burst (tokens), tokens wanted.
#: Returns {tokens taken, microseconds until the next token}.
GCRA = """
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local available = math.floor(burst - (tat - now) / interval + 1e-9)
local taken = 0
if available > 0 then taken = math.min(want, available) end
if taken > 0 then
  tat = tat + taken * interval
  redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX',
             math.ceil((tat - now) / 1000) + 1000)
end
local wait = tat - now - (burst - 1) * interval
if wait < 0 then wait = 0 end
return {taken, math.floor(wait)}
"""


async def open_shared_buckets(
    redis: RedisConfig, cfg: LimitsConfig, stack: AsyncExitStack
) -> SharedBuckets | None:
    """The shared buckets over their own Redis client (closed with `stack`), or None.

    Their own connection pool: a burst of cache traffic never starves admissions of
    connections (nor the other way round). A Redis that is down at start is not an error.
    """
    if not redis.url or not cfg.shared or not cfg.enabled:
        return None
    client = await open_redis(redis, stack, max_connections=cfg.redis_max_in_flight + 8)
    assert client is not None
    shared = SharedBuckets(client, cfg, redis)
    if await shared.link.run(client.ping) is not None:
        log.info("rate limits are shared through redis")
    return shared


class SharedBuckets:
    """Takes tokens from Redis-held buckets; None from `take` means "use the local share"."""

    def __init__(self, client: RedisClient, cfg: LimitsConfig, redis: RedisConfig) -> None:
        #: Also holds the callers' stream leases (gateway/security/quotas.py).
        self.client = client
        self._script = client.register_script(GCRA)
        self._timeout = cfg.redis_timeout_seconds
        self.link = Link(
            "limits",
            messages=(
                "redis unavailable for the shared rate limits; each process keeps its share",
                "rate limits are shared through redis again",
            ),
            logger=log,
            unresponsive_seconds=max(redis.unresponsive_seconds, cfg.redis_timeout_seconds),
            cooldown_seconds=cfg.redis_cooldown_seconds,
            max_in_flight=cfg.redis_max_in_flight,
            failures=(
                metrics.LIMITS_SHARED_FAILURES.labels("timeout"),
                metrics.LIMITS_SHARED_FAILURES.labels("error"),
            ),
            down_gauge=metrics.LIMITS_SHARED_FALLBACK,
        )

    @property
    def down(self) -> bool:
        return self.link.down

    def usable(self, now: float) -> bool:
        """False while cooling down after a failure (the local share is used meanwhile)."""
        return self.link.usable()

    def has_capacity(self) -> bool:
        return self.link.has_capacity()

    async def take(
        self, key: str, interval: float, burst: float, want: int
    ) -> tuple[int, float] | None:
        """(tokens taken, seconds until the next one), or None if Redis failed or was late."""
        args: list[str | int] = [repr(interval * 1e6), repr(burst), want]
        reply = await self.link.call(lambda: self._script(keys=[key], args=args), self._timeout)
        if reply is None:
            return None
        taken, wait_us = reply
        return int(taken), int(wait_us) / 1e6
