"""Lease stage: one upstream call per hot key across replicas (memcached's leases).

In-process coalescing (`gateway.pipeline.coalesce`) leaves one call per distinct request
per replica; this stage, right below it, makes that one call per key for all replicas
sharing a Redis. The replica whose miss comes first takes a short lease on the key
(`SET lease token NX PX`); the others find the lease taken and wait for the holder's
answer to appear in the shared tier, as memcached's lease holders fill the key and
everyone else retries (Nishtala et al., "Scaling Memcache at Facebook", NSDI 2013, 3.2.1).

- The holder's answer replaces its lease in one script when the cache stage stores it
  (`SharedTier.put`), so a waiter sees the lease or the answer, never a gap between.
- A holder that fails drops its lease at once (a waiter takes it over); one that dies
  frees the key when the lease expires: the holder's own deadline, at most
  `[coalesce] lease_max_seconds`.
- A waiter is bounded by its own deadline: it stops waiting `lease_fallback_seconds`
  before it and calls the upstream itself, and so it does at once when Redis is slow or
  unavailable. Waiting polls the key (5 ms, then x1.5 up to 50 ms): a poll is one MGET of
  the answer and the lease, in one Redis Cluster slot.

Only answers the cache would store are leased: calls with `cache-control` metadata and
answers with a TTL of 0 go straight on.
"""

from __future__ import annotations

import asyncio
import os

from google.protobuf.message import DecodeError, Message

from gateway import metrics
from gateway.cache_config import CacheConfig, CoalesceConfig
from gateway.operations import Operation
from gateway.pipeline import cachecontrol as cc
from gateway.pipeline.cache import _ttl_function
from gateway.pipeline.cachekey import request_key
from gateway.pipeline.call import Call, Handler
from gateway.pipeline.shared import Found, SharedTier

_MAX_POLL_SECONDS = 0.05
#: An answer another replica fetched came from an identical request's upstream call.
_WAITED = (cc.COALESCED, "true")


class Lease:
    """Stage: at most one replica calls the upstream for a key at a time."""

    def __init__(self, shared: SharedTier | None, cache: CacheConfig, cfg: CoalesceConfig) -> None:
        self.shared = shared if cache.enabled and cache.shared else None
        self.cache = cache
        self.cfg = cfg

    def wrap(self, op: Operation, inner: Handler) -> Handler:
        if self.shared is None or not self.cfg.enabled or not self.cfg.across_replicas:
            return inner
        if op.cache is None or not op.idempotent:
            return inner
        return _OpLease(self.shared, self.cache, self.cfg, op, inner).leased


class _OpLease:
    """The per-operation part of the stage: its key, TTL policy and the lease protocol."""

    def __init__(
        self,
        shared: SharedTier,
        cache: CacheConfig,
        cfg: CoalesceConfig,
        op: Operation,
        inner: Handler,
    ) -> None:
        self.shared = shared
        self.cfg = cfg
        self.op = op
        self.inner = inner
        self.key_of = request_key(op)
        self.ttl_of = _ttl_function(cache, op)
        self.counted = metrics.cache_metrics(op.name)

    async def leased(self, call: Call) -> Message:
        if cc.HEADER in call.metadata or self.ttl_of(call) <= 0:
            return await self.inner(call)  # the cache would not store it: nothing to wait for
        key = self.key_of(call.request)
        token = os.urandom(16)
        outcome = await self._lease_or_answer(call, key, token)
        if isinstance(outcome, Message):
            self.counted.coalesced += 1  # mlgw_coalesced_requests_total, across replicas
            call.reply_metadata.append(_WAITED)
            return outcome
        if not outcome:
            return await self.inner(call)  # no lease: Redis slow or gone, or out of time
        try:
            return await self.inner(call)
        except BaseException:
            self.shared.release(key, token)  # a waiter takes over at once
            raise

    async def _lease_or_answer(self, call: Call, key: bytes, token: bytes) -> Message | bool:
        """Take the lease (True), or wait for the holder's answer (the message); False when
        this caller should ask the upstream without a lease."""
        loop = asyncio.get_running_loop()
        give_up = call.deadline - self.cfg.lease_fallback_seconds
        delay = self.cfg.lease_poll_seconds
        acquiring = True  # take the lease, else poll until it is free or filled
        while (wait := min(self.shared.lease_wait, give_up - loop.time())) > 0:
            if acquiring:
                seconds = min(self.cfg.lease_max_seconds, call.remaining())
                seen = await self.shared.acquire(key, token, seconds, wait)
            else:
                seen = await self.shared.peek(key, wait)
            if seen is None:
                return False
            found, flag = seen
            if found is not None:
                return self._decoded(found) or False
            if acquiring and flag:
                return True
            # Taken by another: poll. Polled and free (its holder failed or died): take it.
            acquiring = not acquiring and not flag
            if not acquiring:
                await asyncio.sleep(min(delay, max(0.0, give_up - loop.time())))
                delay = min(delay * 1.5, _MAX_POLL_SECONDS)
        return False

    def _decoded(self, found: Found) -> Message | None:
        try:
            return self.op.response.FromString(found[1])
        except DecodeError:
            return None
