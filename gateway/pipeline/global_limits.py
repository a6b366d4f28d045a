"""Global limits: the admission buckets kept in Redis, so N gateway processes keep one quota.

One Lua script (GCRA, run with EVALSHA) per admission, or per batch of waiting calls: it
reads the bucket's theoretical arrival time, takes up to `want` tokens, and answers how
many it took and how long until the next one. Redis's own clock (`TIME`) is the only clock,
so process clocks never disagree. The key expires once the bucket would be full again.

Redis is never a dependency (the same rule as the shared cache tier):

- every admission is bounded by `[limits] redis_timeout_seconds`;
- on any failure each process falls back to its local share of the quota (rate divided by
  the number of processes, `[limits] replicas` times `[server] workers`), logs the
  transition once, sets `mlgw_rate_limit_shared_fallback` to 1, and asks Redis again only
  after `redis_cooldown_seconds`; when Redis answers again it logs that too;
- at most `redis_max_in_flight` scripts run at once per process; beyond that calls queue
  locally and the queue is admitted in batches (one script for many tokens).
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from gateway import metrics
from gateway.limits_config import LimitsConfig

log = logging.getLogger("gateway.limits")

_FAILURES = (RedisError, OSError, TimeoutError)

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
    url: str, cfg: LimitsConfig, stack: AsyncExitStack
) -> SharedBuckets | None:
    """The shared buckets over their own Redis client (closed with `stack`), or None.

    Their own connection pool: a burst of cache traffic never starves admissions of
    connections (nor the other way round). A Redis that is down at start is not an error.
    """
    if not url or not cfg.shared or not cfg.enabled:
        return None
    client = Redis.from_url(
        url,
        socket_timeout=cfg.redis_timeout_seconds,
        socket_connect_timeout=max(cfg.redis_timeout_seconds, 0.05),
        retry=Retry(NoBackoff(), 0),
        max_connections=cfg.redis_max_in_flight + 8,
        health_check_interval=0,
    )
    stack.push_async_callback(client.aclose)
    shared = SharedBuckets(client, cfg)
    try:
        async with asyncio.timeout(max(cfg.redis_timeout_seconds, 0.05) * 4):
            await client.ping()
    except _FAILURES as exc:
        shared.failed(exc)
    else:
        log.info("rate limits are shared through redis")
    return shared


class SharedBuckets:
    """Takes tokens from Redis-held buckets; None from `take` means "use the local share"."""

    def __init__(self, client: Redis, cfg: LimitsConfig) -> None:
        self._script = client.register_script(GCRA)
        self._timeout = cfg.redis_timeout_seconds
        self._cooldown = cfg.redis_cooldown_seconds
        self._capacity = cfg.redis_max_in_flight
        self._in_flight = 0
        self._down_until = 0.0
        self.down = False
        self._fallback = metrics.LIMITS_SHARED_FALLBACK
        self._fallback.set(0)
        self._timeouts = metrics.LIMITS_SHARED_FAILURES.labels("timeout")
        self._errors = metrics.LIMITS_SHARED_FAILURES.labels("error")

    def usable(self, now: float) -> bool:
        """False while cooling down after a failure (the local share is used meanwhile)."""
        return now >= self._down_until

    def has_capacity(self) -> bool:
        return self._in_flight < self._capacity

    async def take(
        self, key: str, interval: float, burst: float, want: int
    ) -> tuple[int, float] | None:
        """(tokens taken, seconds until the next one), or None if Redis failed."""
        self._in_flight += 1
        try:
            async with asyncio.timeout(self._timeout):
                taken, wait_us = await self._script(
                    keys=[key], args=[repr(interval * 1e6), repr(burst), want]
                )
        except _FAILURES as exc:
            self.failed(exc)
            return None
        finally:
            self._in_flight -= 1
        if self.down:
            self.down = False
            self._fallback.set(0)
            log.warning("rate limits are shared through redis again")
        return int(taken), int(wait_us) / 1e6

    def failed(self, exc: BaseException) -> None:
        timeout = isinstance(exc, TimeoutError) or "Timeout" in type(exc).__name__
        (self._timeouts if timeout else self._errors).inc()
        try:
            now = asyncio.get_running_loop().time()
        except RuntimeError:  # pragma: no cover - always called on the loop
            now = 0.0
        self._down_until = now + self._cooldown
        if not self.down:
            self.down = True
            self._fallback.set(1)
            log.warning(
                "redis unavailable for the shared rate limits; each process keeps its share",
                extra={"error": type(exc).__name__, "cooldown_seconds": self._cooldown},
            )
