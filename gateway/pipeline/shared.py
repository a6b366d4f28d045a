"""The shared cache tier (L2): serialized answers in Redis, shared by every gateway process.

Redis is an optimisation, never a dependency (AWS Builders' Library, "Caching challenges
and strategies": a cache that fails must look like misses). So:

- every command is bounded by `[redis] timeout_seconds` (default 10 ms): a slow Redis is a
  miss, not added latency;
- a failure starts a cooldown (`failure_cooldown_seconds`) during which Redis is not asked
  at all, so a dead Redis costs one dict lookup per miss;
- writes are fire-and-forget (the caller never waits for them) and capped in number;
- no retries inside redis-py (its default would retry 3 times with back-off).

A value is the 8-byte wall-clock time the upstream answered plus the serialized response;
the Redis key is the configured prefix plus a 256-bit BLAKE2b digest of the cache key.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import struct
import time
from collections.abc import Callable
from contextlib import AsyncExitStack

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from gateway import metrics
from gateway.cache_config import RedisConfig

log = logging.getLogger("gateway.cache")

_STORED_AT = struct.Struct("!d")
_FAILURES = (RedisError, OSError, TimeoutError)


async def open_redis(cfg: RedisConfig, stack: AsyncExitStack) -> Redis | None:
    """The process's one Redis client (closed with `stack`), or None when not configured.

    A Redis that is down at start is not an error: the client connects when Redis answers.
    """
    if not cfg.url:
        return None
    client = Redis.from_url(
        cfg.url,
        socket_timeout=cfg.timeout_seconds,
        socket_connect_timeout=cfg.connect_timeout_seconds,
        retry=Retry(NoBackoff(), 0),
        # The tier caps commands in flight itself; the slack covers connections mid-close.
        max_connections=cfg.max_connections + 8,
        health_check_interval=0,
    )
    stack.push_async_callback(client.aclose)
    try:
        async with asyncio.timeout(max(cfg.connect_timeout_seconds, cfg.timeout_seconds) * 2):
            await client.ping()
    except _FAILURES:
        log.warning("redis is not answering; the shared cache tier is skipped until it does")
    return client


class SharedTier:
    """Get and put serialized answers; every failure is a miss."""

    def __init__(
        self,
        client: Redis,
        cfg: RedisConfig,
        prefix: str,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._timeout = cfg.timeout_seconds
        self._cooldown = cfg.failure_cooldown_seconds
        self._capacity = cfg.max_connections
        self._prefix = prefix.encode()
        self._clock = clock
        self._down_until = 0.0
        self._in_flight = 0
        self._writes: set[asyncio.Task[None]] = set()
        self._skipped = metrics.CACHE_SHARED_SKIPPED
        self._timeouts = metrics.CACHE_SHARED_FAILURES.labels("timeout")
        self._errors = metrics.CACHE_SHARED_FAILURES.labels("error")

    def redis_key(self, key: bytes) -> bytes:
        return self._prefix + hashlib.blake2b(key, digest_size=32).digest()

    @property
    def available(self) -> bool:
        """Not cooling down after a failure, and below the in-flight cap."""
        if self._in_flight >= self._capacity or self._clock() < self._down_until:
            self._skipped.inc()
            return False
        return True

    async def get(self, key: bytes) -> tuple[float, bytes] | None:
        """(wall-clock time stored, serialized response), or None: absent or unavailable."""
        if not self.available:
            return None
        self._in_flight += 1
        try:
            async with asyncio.timeout(self._timeout):
                value = await self._client.get(self.redis_key(key))
        except _FAILURES as exc:
            self._failed(exc)
            return None
        finally:
            self._in_flight -= 1
        if not isinstance(value, bytes) or len(value) < _STORED_AT.size:
            return None
        (stored_at,) = _STORED_AT.unpack_from(value)
        return stored_at, value[_STORED_AT.size :]

    def put(self, key: bytes, stored_at: float, payload: bytes, keep_seconds: float) -> None:
        """Store in the background; the caller never waits for Redis."""
        keep_ms = int(keep_seconds * 1000)
        if keep_ms <= 0 or not self.available:
            return
        value = _STORED_AT.pack(stored_at) + payload
        task = asyncio.get_running_loop().create_task(
            self._set(self.redis_key(key), value, keep_ms)
        )
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _set(self, redis_key: bytes, value: bytes, keep_ms: int) -> None:
        self._in_flight += 1
        try:
            async with asyncio.timeout(self._timeout):
                await self._client.set(redis_key, value, px=keep_ms)
        except _FAILURES as exc:
            self._failed(exc)
        finally:
            self._in_flight -= 1

    def _failed(self, exc: BaseException) -> None:
        timeout = isinstance(exc, TimeoutError) or "Timeout" in type(exc).__name__
        (self._timeouts if timeout else self._errors).inc()
        if self._clock() >= self._down_until:
            log.warning(
                "shared cache tier unavailable; skipping it",
                extra={"error": type(exc).__name__, "cooldown_seconds": self._cooldown},
            )
        self._down_until = self._clock() + self._cooldown

    async def aclose(self) -> None:
        """Drop pending writes (shutdown must not wait for a slow Redis)."""
        for task in list(self._writes):
            task.cancel()
        for task in list(self._writes):
            with contextlib.suppress(asyncio.CancelledError):
                await task
