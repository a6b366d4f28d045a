"""Per-caller quotas: requests per second with a burst (a batch or stream message costs one
per entry), and streams open at once.

The rate is a GCRA bucket per caller, the same one admission uses (`Gcra`); with Redis
configured it is the shared bucket of gateway/pipeline/global_limits.py under the key
`<prefix>caller:<name>`, so every replica charges one quota, and while Redis is unavailable
each process keeps its share (rate / processes). A charge takes what is there up to the
cost: a batch gets as many entries as the caller has tokens for, the rest are refused one by
one (RESOURCE_EXHAUSTED with QuotaFailure and RetryInfo).

Streams open at once (`max_streams`) are leases held in Redis next to the shared buckets:
one sorted set per caller, `<prefix>streams:<name>`, of stream ids scored by when their
lease expires (Redis's own clock). Opening a stream is one Lua script that drops expired
leases, then adds this one only while the caller holds fewer than `max_streams`; one timer
per process renews all of its open streams every third of `[auth] stream_lease_seconds`;
closing removes the lease. A replica that dies stops renewing, so its leases lapse within
the lease time instead of holding the caller's streams forever. While Redis is unavailable
(its `Link` says so) each process counts its own streams against its share, max_streams /
processes (at least 1), as the rate falls back to rate / processes; without Redis one
process holds the whole limit. (A stream opened while Redis was unavailable holds no lease,
so until it ends the replicas together may open that many more.)"""

from __future__ import annotations

import asyncio
import itertools
import math
import os
import uuid
from functools import partial

from gateway.errors import QuotaExceeded
from gateway.pipeline.admission import Gcra
from gateway.pipeline.global_limits import SharedBuckets
from gateway.security.identity import Caller

_NOW_MS = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local function ms(t) return string.format('%.0f', t) end
"""
#: The key outlives its last lease by one lease time: a caller's set vanishes once it stops
#: streaming (or its replicas died), and a live lease never loses its key.
_KEEP_KEY = """
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] then redis.call('PEXPIREAT', KEYS[1], ms(tonumber(last[2]) + ttl)) end
return 1
"""
#: KEYS[1] the caller's leases; ARGV: lease milliseconds, max_streams, stream id.
#: Returns 1 when the lease is taken, 0 when the caller holds max_streams already.
ACQUIRE = (
    _NOW_MS
    + """
local ttl = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ms(now + ttl), ARGV[3])
"""
    + _KEEP_KEY
)
#: KEYS[1] the caller's leases; ARGV: lease milliseconds, stream ids... Renews only leases
#: still held (XX): a release sent on another connection may overtake a renewal.
RENEW = (
    _NOW_MS
    + """
local ttl = tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', ms(now + ttl), ARGV[i]) end
"""
    + _KEEP_KEY
)

#: Refusals kept per caller (one per millisecond of wait); a slow quota's waits span more.
_REFUSALS_KEPT = 256


class Quotas:
    def __init__(
        self, shared: SharedBuckets | None, prefix: str, processes: int, lease_seconds: float = 5.0
    ) -> None:
        self._shared = shared
        self._prefix = prefix
        self._processes = max(processes, 1)
        self._local: dict[str, Gcra] = {}
        self._refusals: dict[str, dict[int, QuotaExceeded]] = {}
        self._leases = None if shared is None else StreamLeases(shared, lease_seconds)

    async def charge(self, caller: Caller, cost: int) -> int:
        """Tokens taken for `cost` entries (all of them without a rate); QuotaExceeded when
        none could be."""
        rate = caller.rate
        if rate is None or cost <= 0:
            return cost
        loop = asyncio.get_running_loop()
        now = loop.time()
        shared = self._shared
        answer = None
        if shared is not None and shared.usable(now) and shared.has_capacity():
            key = f"{self._prefix}caller:{caller.name}"
            answer = await shared.take(key, 1.0 / rate, caller.burst, cost)
        if answer is None:
            answer = self._bucket(caller).take(now, cost)
        taken, wait = answer
        if taken == 0:
            raise self.exceeded(caller, wait)
        return taken

    def exceeded(self, caller: Caller, wait: float) -> QuotaExceeded:
        """The refusal telling `caller` to retry in `wait` (rounded up to the millisecond).

        A caller at ten times its quota sends nine refusals for every answer, and the
        gateway's CPU is what the other callers share: so a refusal is one of a few kept
        per caller (an empty bucket's wait takes about 1/rate distinct milliseconds), whose
        status details are serialized once. The instance is raised again and again, each
        time without the traceback of the last."""
        wait_ms = max(1, math.ceil(wait * 1000))
        kept = self._refusals.get(caller.name)
        if kept is None:
            kept = self._refusals[caller.name] = {}
        error = kept.get(wait_ms)
        if error is None:
            if len(kept) >= _REFUSALS_KEPT:
                kept.clear()
            description = f"at most {caller.rate:g} requests per second, burst {caller.burst}"
            error = kept[wait_ms] = QuotaExceeded(caller.name, "rate", description, wait_ms / 1000)
        return error.with_traceback(None)

    def _bucket(self, caller: Caller) -> Gcra:
        bucket = self._local.get(caller.name)
        if bucket is None:
            share = self._processes if self._shared is not None else 1
            rate = (caller.rate or 1.0) / share
            bucket = self._local[caller.name] = Gcra(rate, max(1.0, caller.burst / share))
        return bucket

    async def open_stream(self, caller: Caller) -> str | None:
        """Counts a stream open: its lease in Redis (pass it to `close_stream`), or None when
        it holds none there. QuotaExceeded at the caller's `max_streams`."""
        limit = caller.max_streams
        lease = None if limit is None else await self._lease_or_share(caller, limit)
        caller.streams += 1
        return lease

    async def _lease_or_share(self, caller: Caller, limit: int) -> str | None:
        leases = self._leases
        share = limit  # without Redis this process holds the whole limit
        if leases is not None:
            lease = leases.new_id()
            held = await leases.acquire(self._stream_key(caller), lease, limit)
            if held:
                return lease
            if held is False:
                raise self._too_many_streams(caller, limit)
            # Redis is unavailable: each process keeps its share, as the rate falls back to
            # rate / processes. A lease the script took after all lapses, never renewed.
            share = max(1, limit // self._processes)
        if caller.streams >= share:
            raise self._too_many_streams(caller, limit)
        return None

    def close_stream(self, caller: Caller, lease: str | None) -> None:
        """Never raises nor waits on Redis: a release Redis misses lapses with its lease."""
        caller.streams -= 1
        if lease is not None and self._leases is not None:
            self._leases.release(self._stream_key(caller), lease)

    def _stream_key(self, caller: Caller) -> str:
        return f"{self._prefix}streams:{caller.name}"

    @staticmethod
    def _too_many_streams(caller: Caller, limit: int) -> QuotaExceeded:
        return QuotaExceeded(
            caller.name, "max_streams", f"at most {limit} streams open at once", 1.0
        )


class StreamLeases:
    """This process's stream leases in Redis, and the one timer that renews them all."""

    def __init__(self, shared: SharedBuckets, lease_seconds: float) -> None:
        self._link = shared.link
        self._acquire = shared.client.register_script(ACQUIRE)
        self._renew = shared.client.register_script(RENEW)
        self._remove = shared.client.zrem
        self._ms = max(1, round(lease_seconds * 1000))
        self._every = lease_seconds / 3  # two renewals may fail before a live lease lapses
        #: Leases held, by key (caller).
        self._held: dict[str, set[str]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._process = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._ids = itertools.count()

    def new_id(self) -> str:
        """A stream id unique across replicas (the process's pid, for whoever reads Redis)."""
        return f"{self._process}-{next(self._ids)}"

    async def acquire(self, key: str, lease: str, limit: int) -> bool | None:
        """Whether the lease was taken; None when Redis did not answer (or was not asked)."""
        args: list[str | int] = [self._ms, limit, lease]
        taken = await self._link.run(partial(self._acquire, keys=[key], args=args))
        if taken is None:
            return None
        if not taken:
            return False
        self._held.setdefault(key, set()).add(lease)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._every, self._renew_all)
        return True

    def release(self, key: str, lease: str) -> None:
        held = self._held.get(key)
        if held is None or lease not in held:
            return
        held.discard(lease)
        if not held:
            del self._held[key]
        if not self._held and self._timer is not None:
            self._timer.cancel()
            self._timer = None
        # Not sent while Redis cools down (or at the in-flight cap): the lease then lapses.
        self._link.spawn(partial(self._remove, key, lease))

    def _renew_all(self) -> None:
        for key, held in self._held.items():
            self._link.spawn(partial(self._renew, keys=[key], args=[self._ms, *held]))
        self._timer = asyncio.get_running_loop().call_later(self._every, self._renew_all)
