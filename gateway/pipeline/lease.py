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
        shared = self.shared
        cfg = self.cfg
        if shared is None or not cfg.enabled or not cfg.across_replicas:
            return inner
        if op.cache is None or not op.idempotent:
            return inner
        key_of = request_key(op)
        ttl_of = _ttl_function(self.cache, op)

        async def hold(call: Call, key: bytes, token: bytes) -> Message:
            try:
                return await inner(call)
            except BaseException:
                shared.release(key, token)
                raise

        def answer(call: Call, found: Found) -> Message | None:
            try:
                message = op.response.FromString(found[1])
            except DecodeError:
                return None
            call.reply_metadata.append(_WAITED)
            return message

        async def leased(call: Call) -> Message:
            if cc.HEADER in call.metadata or ttl_of(call) <= 0:
                return await inner(call)
            key = key_of(call.request)
            token = os.urandom(16)
            loop = asyncio.get_running_loop()
            give_up = call.deadline - cfg.lease_fallback_seconds
            delay = cfg.lease_poll_seconds
            acquiring = True  # take the lease, else poll until it is free or filled
            while True:
                wait = min(shared.lease_wait, give_up - loop.time())
                if wait <= 0:
                    break
                if acquiring:
                    seconds = min(cfg.lease_max_seconds, call.remaining())
                    seen = await shared.acquire(key, token, seconds, wait)
                else:
                    seen = await shared.peek(key, wait)
                if seen is None:
                    break  # Redis slow or unavailable: this replica asks for itself
                found, flag = seen
                if found is not None:
                    message = answer(call, found)
                    if message is None:
                        break
                    return message
                if acquiring and flag:
                    return await hold(call, key, token)
                # Taken by another: poll. Polled and free (its holder failed or died): take it.
                acquiring = not acquiring and not flag
                if not acquiring:
                    left = give_up - loop.time()
                    if left <= 0:
                        break
                    await asyncio.sleep(min(delay, left))
                    delay = min(delay * 1.5, _MAX_POLL_SECONDS)
            return await inner(call)

        return leased
