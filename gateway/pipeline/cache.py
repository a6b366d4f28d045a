"""Cache stage: answer from the in-process tier (L1) or Redis (L2), else ask and remember.

The cache stores the response *message* itself, so a local hit is a dict lookup, two
counter increments and the trailing metadata: no conversion, no copy, no Redis. Stored
messages are shared by every caller that hits them, so nothing may mutate a message once
a stage has returned it (the edge only serializes it).

Freshness, per entry (times after the upstream answered):

    0 ........ ttl ............ ttl + stale_while_revalidate
    fresh: hit  stale: served while one background refresh runs
               ttl ................................. ttl + stale_if_error
               stale: served only when the upstream throttles, fails or sheds

The stage runs before validation (`Gateway.stages()`): an entry is only ever stored for
the key of a request that passed validation, and the key is the whole canonical request
(only spellings of one request share a key, and they validate alike), so whatever hits was
valid; a hit skips the validator, a miss goes through it. Invalid requests only cost a
lookup that cannot hit.

The TTL comes from `[cache]`: per resource ARN, else per operation, else by class (user
answers, answers without a user, job descriptions). ResourceNotFound is remembered for
`negative_ttl_seconds` (locally only: never across callers through Redis, and never
throttles or failures, which would outlive the incident). `cache-control` request
metadata narrows what may be served (`gateway.pipeline.cachecontrol`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable

import grpc
from google.protobuf.message import DecodeError, Message

from gateway import metrics
from gateway.cache_config import CacheConfig
from gateway.errors import GatewayError
from gateway.operations import CacheClass, Operation
from gateway.pipeline import cachecontrol as cc
from gateway.pipeline.cachekey import KeyFunction, request_key
from gateway.pipeline.call import Call, Handler
from gateway.pipeline.shared import SharedTier

log = logging.getLogger("gateway.cache")

#: Bytes charged per entry beyond its key and serialized answer (entry object, dict slot).
ENTRY_OVERHEAD = 256
#: Upstream failures that stale-if-error hides: throttling and shedding, unavailability,
#: timeouts, the upstream's internal errors. Never caller errors (INVALID_ARGUMENT, ...).
STALE_IF_ERROR_CODES = frozenset(
    {
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.INTERNAL,
    }
)
#: The error table's reason for ResourceNotFoundException (gateway/upstream/errors.py).
NOT_FOUND_REASON = "RESOURCE_NOT_FOUND"

_HIT_LOCAL = ((cc.CACHE, "hit"), (cc.TIER, "local"))
_HIT_SHARED = ((cc.CACHE, "hit"), (cc.TIER, "shared"))
_MISS = (cc.CACHE, "miss")
_BYPASS = (cc.CACHE, "bypass")


class Entry:
    """One cached answer (or, for a negative entry, the error), with its timeline."""

    __slots__ = ("error", "fresh_until", "keep_until", "message", "size", "stored")

    def __init__(
        self,
        message: Message | None,
        error: GatewayError | None,
        stored: float,
        fresh_until: float,
        keep_until: float,
        size: int,
    ) -> None:
        self.message = message
        self.error = error
        self.stored = stored
        self.fresh_until = fresh_until
        self.keep_until = keep_until
        self.size = size


class LocalCache:
    """L1: an LRU map bounded by entries and bytes (one event loop, so no locking)."""

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.data: OrderedDict[bytes, Entry] = OrderedDict()
        self.bytes = 0

    def get(self, key: bytes) -> Entry | None:
        entry = self.data.get(key)
        if entry is not None:
            self.data.move_to_end(key)
        return entry

    def put(self, key: bytes, entry: Entry) -> None:
        if entry.size > self.max_bytes or self.max_entries == 0:
            return
        data = self.data
        before_bytes, before_entries = self.bytes, len(data)
        old = data.pop(key, None)
        if old is not None:
            self.bytes -= old.size
        data[key] = entry
        self.bytes += entry.size
        evicted = 0
        while len(data) > self.max_entries or self.bytes > self.max_bytes:
            _, dropped = data.popitem(last=False)
            self.bytes -= dropped.size
            evicted += 1
        if evicted:
            metrics.CACHE_EVICTIONS.inc(evicted)
        metrics.CACHE_BYTES.inc(self.bytes - before_bytes)
        metrics.CACHE_ENTRIES.inc(len(data) - before_entries)

    def discard(self, key: bytes) -> None:
        entry = self.data.pop(key, None)
        if entry is not None:
            self.bytes -= entry.size
            metrics.CACHE_BYTES.dec(entry.size)
            metrics.CACHE_ENTRIES.dec()

    def clear(self) -> None:
        metrics.CACHE_BYTES.dec(self.bytes)
        metrics.CACHE_ENTRIES.dec(len(self.data))
        self.data.clear()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self.data)


class Cache:
    """Stage: L1 and L2 lookup and store, stale-while-revalidate, stale-if-error, negative
    caching and `cache-control`, for operations whose row has a `cache` policy."""

    def __init__(
        self,
        cfg: CacheConfig,
        shared: SharedTier | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.cfg = cfg
        self.local = LocalCache(cfg.max_entries, cfg.max_bytes)
        self.shared = shared if cfg.shared else None
        self.clock = clock
        self.wall = wall
        self.grace = max(cfg.stale_while_revalidate_seconds, cfg.stale_if_error_seconds)
        #: Keys with a background refresh running (stale-while-revalidate: one at a time).
        self.refreshing: set[bytes] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def wrap(self, op: Operation, inner: Handler) -> Handler:
        if op.cache is None or not self.cfg.enabled or not op.idempotent:
            return inner
        lookup = _OpCache(self, op, inner)
        key_of = lookup.key_of
        data = self.local.data
        move_to_end = data.move_to_end
        clock = self.clock
        counted = lookup.metrics
        slow = lookup.slow

        async def cached(call: Call) -> Message:
            key = key_of(call.request)
            if call.context.cache is None:
                entry = data.get(key)
                if entry is not None:
                    now = clock()
                    message = entry.message
                    if now < entry.fresh_until and message is not None:
                        move_to_end(key)
                        counted.hit_local += 1
                        reply = call.reply_metadata
                        reply += _HIT_LOCAL
                        reply.append((cc.AGE, f"{now - entry.stored:.3f}"))
                        return message
            return await slow(call, key)

        return cached

    def start(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        """Cancel background refreshes (shutdown)."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.shared is not None:
            await self.shared.aclose()


class _OpCache:
    """The per-operation part of the stage: its key, TTL policy, metrics and slow path."""

    def __init__(self, cache: Cache, op: Operation, inner: Handler) -> None:
        assert op.cache is not None
        self.cache = cache
        self.op = op
        self.inner = inner
        self.key_of: KeyFunction = request_key(op)
        self.metrics = metrics.cache_metrics(op.name)
        self.ttl_of = _ttl_function(cache.cfg, op)
        cfg = cache.cfg
        self.swr = cfg.stale_while_revalidate_seconds
        self.sie = cfg.stale_if_error_seconds
        # Only unknown campaigns, recommenders and filters are remembered as absent: a job
        # that is not found yet may be created the next moment, by this caller or another.
        results = op.cache.kind is CacheClass.RESULTS
        self.negative_ttl = cfg.negative_ttl_seconds if results else 0.0

    # -- the path of everything but a plain local hit ------------------------------------

    async def slow(self, call: Call, key: bytes) -> Message:
        cache, m = self.cache, self.metrics
        directives = call.context.cache or cc.NONE
        if directives.no_store:
            m.bypass += 1
            call.reply_metadata.append(_BYPASS)
            return await self.inner(call)
        entry: Entry | None = None
        tier = "local"
        if not directives.no_cache:
            entry = self._local(key)
            if entry is None and cache.shared is not None:
                entry = await self._shared(key, call)
                if entry is not None:
                    tier = "shared"
                else:  # someone may have stored while we asked Redis
                    entry = self._local(key)
            now = cache.clock()
            max_age = directives.max_age
            if entry is not None and max_age is not None and now - entry.stored > max_age:
                entry = None  # older than the caller accepts: not even stale
            if entry is not None and now < entry.fresh_until:
                if entry.error is not None:
                    m.negative += 1
                    raise _negative_hit(entry.error, now - entry.stored)
                assert entry.message is not None
                if tier == "shared":
                    m.hit_shared += 1
                else:
                    m.hit_local += 1
                call.reply_metadata += _HIT_SHARED if tier == "shared" else _HIT_LOCAL
                call.reply_metadata.append((cc.AGE, f"{now - entry.stored:.3f}"))
                return entry.message
            if entry is not None and entry.error is not None:
                entry = None  # an expired negative entry is no fallback
            if entry is not None and now < entry.fresh_until + self.swr:
                self._revalidate(key, call)
                m.stale_revalidate += 1
                return self._stale(call, entry, tier, "while-revalidate", now)
        try:
            response = await self.inner(call)
        except GatewayError as error:
            if error.reason == NOT_FOUND_REASON:
                self._store_negative(key, error)
            elif entry is not None and error.code in STALE_IF_ERROR_CODES:
                now = cache.clock()
                if now < entry.fresh_until + self.sie:
                    m.stale_error += 1
                    return self._stale(call, entry, tier, "if-error", now)
            raise
        m.miss += 1
        call.reply_metadata.append(_MISS)
        self.store(key, call, response)
        return response

    @staticmethod
    def _stale(call: Call, entry: Entry, tier: str, why: str, now: float) -> Message:
        assert entry.message is not None
        call.reply_metadata += (
            (cc.CACHE, "stale"),
            (cc.TIER, tier),
            (cc.AGE, f"{now - entry.stored:.3f}"),
            (cc.STALE, why),
        )
        return entry.message

    def _local(self, key: bytes) -> Entry | None:
        local = self.cache.local
        entry = local.get(key)
        if entry is not None and self.cache.clock() >= entry.keep_until:
            local.discard(key)
            return None
        return entry

    async def _shared(self, key: bytes, call: Call) -> Entry | None:
        cache = self.cache
        assert cache.shared is not None
        found = await cache.shared.get(key)
        if found is None:
            return None
        stored_at, payload = found
        age = max(0.0, cache.wall() - stored_at)
        ttl = self.ttl_of(call)
        if age >= ttl + cache.grace:
            return None
        try:
            message = self.op.response.FromString(payload)
        except DecodeError:
            return None
        stored = cache.clock() - age
        entry = Entry(
            message,
            None,
            stored,
            stored + ttl,
            stored + ttl + cache.grace,
            len(key) + len(payload) + ENTRY_OVERHEAD,
        )
        cache.local.put(key, entry)
        return entry

    # -- storing -------------------------------------------------------------------------

    def store(self, key: bytes, call: Call, response: Message) -> None:
        ttl = self.ttl_of(call)
        if ttl <= 0:
            return
        cache = self.cache
        now = cache.clock()
        shared = cache.shared
        payload = response.SerializeToString() if shared is not None else None
        size = len(key) + (len(payload) if payload is not None else response.ByteSize())
        entry = Entry(
            response, None, now, now + ttl, now + ttl + cache.grace, size + ENTRY_OVERHEAD
        )
        cache.local.put(key, entry)
        if shared is not None and payload is not None:
            shared.put(key, cache.wall(), payload, ttl + cache.grace)

    def _store_negative(self, key: bytes, error: GatewayError) -> None:
        ttl = self.negative_ttl
        if ttl <= 0:
            return
        now = self.cache.clock()
        size = len(key) + len(error.message) + ENTRY_OVERHEAD
        self.cache.local.put(key, Entry(None, error, now, now + ttl, now + ttl, size))

    # -- stale-while-revalidate ----------------------------------------------------------

    def _revalidate(self, key: bytes, call: Call) -> None:
        cache = self.cache
        if key in cache.refreshing:
            return
        cache.refreshing.add(key)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + cache.cfg.revalidate_timeout_seconds
        fresh = call.derive(deadline=deadline)
        cache.start(loop.create_task(self._refresh(key, fresh)))

    async def _refresh(self, key: bytes, call: Call) -> None:
        try:
            response = await self.inner(call)
        except GatewayError as error:
            if error.reason == NOT_FOUND_REASON:
                self.cache.local.discard(key)
                self._store_negative(key, error)
            # Anything else: keep serving the entry; stale-if-error covers what follows.
        except Exception:
            log.exception("background refresh failed", extra={"method": self.op.name})
        else:
            self.store(key, call, response)
        finally:
            self.cache.refreshing.discard(key)


def _ttl_function(cfg: CacheConfig, op: Operation) -> Callable[[Call], float]:
    """The TTL of one answer: per resource ARN, else per operation, else by class."""
    policy = op.cache
    assert policy is not None
    by_resource = cfg.ttl_by_resource
    by_operation = cfg.ttl_by_operation.get(op.name)
    if policy.kind is CacheClass.JOB:
        default = cfg.job_ttl_seconds
        personal: tuple[str, ...] = ()
    else:
        default = cfg.shared_ttl_seconds
        personal = policy.personal
    user_ttl = cfg.user_ttl_seconds

    def ttl(call: Call) -> float:
        params = call.params
        if by_resource:
            resource = op.resource(params)
            if resource is not None and resource in by_resource:
                return by_resource[resource]
        if by_operation is not None:
            return by_operation
        for member in personal:
            if params.get(member):
                return user_ttl
        return default

    return ttl


def _negative_hit(error: GatewayError, age: float) -> GatewayError:
    """A fresh copy of the remembered error (a shared exception object would collect
    every raiser's traceback), marked as cached in its ErrorInfo metadata."""
    return GatewayError(
        error.message,
        code=error.code,
        reason=error.reason,
        domain=error.domain,
        metadata={**error.metadata, "cache": "hit", "cacheAge": f"{age:.3f}"},
    )
