"""The shared cache tier (L2): serialized answers in Redis, shared by every gateway process,
and the leases that let one replica call the upstream for a hot key while the others wait.

Redis is an optimisation, never a dependency (AWS Builders' Library, "Caching challenges
and strategies": a cache that fails must look like misses). The failure policy is
`gateway.redis.Link`'s: a lookup waits at most `[redis] timeout_seconds` (10 ms) and is a
miss after that, but only a failed or unresponsive Redis switches the tier off (for
`failure_cooldown_seconds`); a late reply because this process was busy does not.

A burst costs Redis little: lookups made in one turn of the event loop go out as one MGET,
and a lookup of a key already being fetched joins that fetch. Writes are fire-and-forget,
capped in number, and one per key per second (every caller of a coalesced call stores the
same answer).

A value is the 8-byte wall-clock time the upstream answered plus the serialized response.
The Redis key is the configured prefix plus `{digest}`, a 256-bit BLAKE2b digest of the
cache key in URL-safe base64, as a hash tag: the lease of a key (`{digest}:lease`) is in
the same Redis Cluster slot, so one script may write the value and drop the lease.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import struct
import time
from collections.abc import Callable
from typing import Any

from gateway import metrics
from gateway.cache_config import RedisConfig
from gateway.redis import Link, RedisClient, open_redis

__all__ = ["SharedTier", "open_redis"]

_STORED_AT = struct.Struct("!d")
#: One write per key per this long: a coalesced call's callers all store the same answer.
_REWRITE_SECONDS = 1.0
_MAX_RECENT = 10_000

#: KEYS[1] value, KEYS[2] its lease; ARGV value, milliseconds to keep. The answer replaces
#: the lease in one step, so a waiter sees either the lease or the answer, never neither.
_FILL = """
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('DEL', KEYS[2])
return 1
"""
#: KEYS[1] value, KEYS[2] its lease; ARGV token, milliseconds. The answer if stored (another
#: replica may have stored it since this one's lookup missed), else the lease if free.
_ACQUIRE = """
local value = redis.call('GET', KEYS[1])
if value then return {2, value} end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {1, false} end
return {0, false}
"""
#: KEYS[1] lease; ARGV token. Only the holder drops its lease (it may have expired and been
#: taken by another replica meanwhile).
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

Found = tuple[float, bytes]


class SharedTier:
    """Get and put serialized answers, take and drop leases; every failure is a miss."""

    def __init__(
        self,
        client: RedisClient,
        cfg: RedisConfig,
        prefix: str,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._cluster = cfg.cluster
        self._timeout = cfg.timeout_seconds
        self._unresponsive = cfg.unresponsive_seconds
        self._lease_wait_cold = min(cfg.unresponsive_seconds, max(5 * cfg.timeout_seconds, 0.05))
        self._prefix = prefix.encode()
        self._clock = clock
        self.link = Link(
            "cache",
            messages=("shared cache tier unavailable; skipping it", "shared cache tier is back"),
            unresponsive_seconds=cfg.unresponsive_seconds,
            cooldown_seconds=cfg.failure_cooldown_seconds,
            max_in_flight=cfg.max_connections,
            failures=(
                metrics.CACHE_SHARED_FAILURES.labels("timeout"),
                metrics.CACHE_SHARED_FAILURES.labels("error"),
            ),
            clock=clock,
        )
        self._fill = client.register_script(_FILL)
        self._acquire = client.register_script(_ACQUIRE)
        self._release = client.register_script(_RELEASE)
        self._skipped = metrics.CACHE_SHARED_SKIPPED
        #: Lookups of this loop turn, by Redis key (sent together as one MGET).
        self._pending: dict[bytes, list[asyncio.Future[bytes | None]]] = {}
        #: Lookups sent and not answered yet, by Redis key: a new lookup joins one.
        self._fetching: dict[bytes, list[asyncio.Future[bytes | None]]] = {}
        self._recent: dict[bytes, float] = {}

    def redis_key(self, key: bytes) -> bytes:
        digest = hashlib.blake2b(key, digest_size=32).digest()
        return self._prefix + b"{" + base64.urlsafe_b64encode(digest).rstrip(b"=") + b"}"

    @staticmethod
    def lease_key(redis_key: bytes) -> bytes:
        return redis_key + b":lease"

    @property
    def lease_wait(self) -> float:
        """The longest a lease command waits (each caller's deadline bounds it further).

        Longer than a lookup: the alternative is an upstream call. While Redis has been
        answering, up to `unresponsive_seconds` (a slow reply then means a busy loop, and
        the verdict on Redis comes at that bound anyway); otherwise (at start, or Redis
        silent) 5 lookups' worth, at least 50 ms, so a hung Redis adds little to a miss."""
        return self._unresponsive if self.link.answering() else self._lease_wait_cold

    @property
    def available(self) -> bool:
        """Not cooling down after a failure, and below the in-flight cap."""
        if not self.link.usable() or not self.link.has_capacity():
            self._skipped.inc()
            return False
        return True

    # -- lookups -------------------------------------------------------------------------

    async def get(self, key: bytes) -> Found | None:
        """(wall-clock time stored, serialized response), or None: absent or unavailable."""
        if not self.available:
            return None
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bytes | None] = loop.create_future()
        redis_key = self.redis_key(key)
        joined = self._fetching.get(redis_key)
        if joined is not None:
            joined.append(future)
        else:
            if not self._pending:
                loop.call_soon(self._flush)
            self._pending.setdefault(redis_key, []).append(future)
        try:
            async with asyncio.timeout(self._timeout):
                value = await future
        except TimeoutError:
            self.link.count("timeout")
            return None
        return _decode(value)

    def _flush(self) -> None:
        batch, self._pending = self._pending, {}
        self._fetching.update(batch)
        if not self.link.spawn(lambda: self._fetch(batch)):  # cooling down, or at the cap
            self._answer(batch, None)

    async def _fetch(self, batch: dict[bytes, list[asyncio.Future[bytes | None]]]) -> None:
        keys = list(batch)
        try:
            values = await self._mget(keys)
        except BaseException:
            self._answer(batch, None)
            raise
        self._answer(batch, values)

    async def _mget(self, keys: list[bytes]) -> list[Any]:
        if self._cluster:  # keys of many slots: one MGET per node
            return list(await self._client.mget_nonatomic(keys))  # type: ignore[union-attr]
        return list(await self._client.mget(keys))

    def _answer(
        self, batch: dict[bytes, list[asyncio.Future[bytes | None]]], values: list[Any] | None
    ) -> None:
        for i, (redis_key, _) in enumerate(batch.items()):
            value = values[i] if values is not None else None
            futures = self._fetching.pop(redis_key, batch[redis_key])
            for future in futures:
                if not future.done():
                    future.set_result(value if isinstance(value, bytes) else None)

    # -- writes --------------------------------------------------------------------------

    def put(self, key: bytes, stored_at: float, payload: bytes, keep_seconds: float) -> None:
        """Store in the background, dropping the key's lease; the caller never waits."""
        keep_ms = int(keep_seconds * 1000)
        if keep_ms <= 0 or not self.available:
            return
        redis_key = self.redis_key(key)
        now = self._clock()
        if now - self._recent.get(redis_key, -_REWRITE_SECONDS) < _REWRITE_SECONDS:
            return
        if len(self._recent) >= _MAX_RECENT:
            self._recent.clear()
        self._recent[redis_key] = now
        value = _STORED_AT.pack(stored_at) + payload
        keys = [redis_key, self.lease_key(redis_key)]
        self.link.spawn(lambda: self._fill(keys=keys, args=[value, keep_ms]))

    # -- leases (gateway/pipeline/lease.py) ----------------------------------------------

    async def acquire(
        self, key: bytes, token: bytes, seconds: float, wait: float
    ) -> tuple[Found | None, bool] | None:
        """Take the key's lease for `seconds` unless its answer is stored: (the answer, or
        None; whether this caller now holds the lease), or None when Redis is unavailable
        or has not answered within `wait` (the caller goes to the upstream itself).

        `wait` is longer than a lookup's bound: the alternative is an upstream call."""
        if not self.available:
            return None
        redis_key = self.redis_key(key)
        keys = [redis_key, self.lease_key(redis_key)]
        args: list[bytes | int] = [token, max(1, int(seconds * 1000))]
        reply = await self.link.call(lambda: self._acquire(keys=keys, args=args), wait)
        if reply is None:
            return None
        state, value = reply[0], reply[1] if len(reply) > 1 else None
        if state == 2:
            return _decode(value if isinstance(value, bytes) else None), False
        return None, state == 1

    def release(self, key: bytes, token: bytes) -> None:
        """Drop the lease if still ours (the holder failed: a waiter takes over at once)."""
        lease = self.lease_key(self.redis_key(key))
        self.link.spawn(lambda: self._release(keys=[lease], args=[token]))

    async def peek(self, key: bytes, wait: float) -> tuple[Found | None, bool] | None:
        """(the answer if stored, whether a lease is held), or None: Redis unavailable or
        silent for `wait`."""
        if not self.available:
            return None
        redis_key = self.redis_key(key)
        keys = [redis_key, self.lease_key(redis_key)]  # one slot: one MGET even on a cluster
        values = await self.link.call(lambda: self._client.mget(keys), wait)
        if values is None:
            return None
        value, lease = values
        return _decode(value if isinstance(value, bytes) else None), lease is not None

    async def aclose(self) -> None:
        """Drop pending writes (shutdown must not wait for a slow Redis)."""
        await self.link.aclose()


def _decode(value: bytes | None) -> Found | None:
    if value is None or len(value) < _STORED_AT.size:
        return None
    (stored_at,) = _STORED_AT.unpack_from(value)
    return stored_at, value[_STORED_AT.size :]
