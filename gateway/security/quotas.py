"""Per-caller quotas: requests per second with a burst (a batch or stream message costs one
per entry), and streams open at once.

The rate is a GCRA bucket per caller, the same one admission uses (`Gcra`); with Redis
configured it is the shared bucket of gateway/pipeline/global_limits.py under the key
`<prefix>caller:<name>`, so every replica charges one quota, and while Redis is unavailable
each process keeps its share (rate / processes). A charge takes what is there up to the
cost: a batch gets as many entries as the caller has tokens for, the rest are refused one by
one (RESOURCE_EXHAUSTED with QuotaFailure and RetryInfo)."""

from __future__ import annotations

import asyncio
import math

from gateway.errors import QuotaExceeded
from gateway.pipeline.admission import Gcra
from gateway.pipeline.global_limits import SharedBuckets
from gateway.security.identity import Caller

#: Refusals kept per caller (one per millisecond of wait); a slow quota's waits span more.
_REFUSALS_KEPT = 256


class Quotas:
    def __init__(self, shared: SharedBuckets | None, prefix: str, processes: int) -> None:
        self._shared = shared
        self._prefix = prefix
        self._processes = max(processes, 1)
        self._local: dict[str, Gcra] = {}
        self._refusals: dict[str, dict[int, QuotaExceeded]] = {}

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

    @staticmethod
    def open_stream(caller: Caller) -> None:
        limit = caller.max_streams
        if limit is not None and caller.streams >= limit:
            raise QuotaExceeded(
                caller.name, "max_streams", f"at most {limit} streams open at once", 1.0
            )
        caller.streams += 1

    @staticmethod
    def close_stream(caller: Caller) -> None:
        caller.streams -= 1
