"""Replicas acting as one gateway: real `gateway serve` processes on one Redis.

- one upstream call for a hot request, whichever replicas its callers reach (the lease);
- a Zipf workload through 3 replicas makes the upstream calls one replica makes;
- a burst does not switch the shared tier off (a busy loop is not a slow Redis), while a
  dead Redis still does at once.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from gateway import metrics
from tests.integration.cache_support import answer, config, recs, serving
from tests.integration.replica_support import (
    REDIS_URL,
    Replica,
    redis_prefix,
    replica_config,
    replicas,
    upstream_calls,
)
from tests.support import eventually

__all__ = ["redis_prefix"]  # the fixture
pytestmark = pytest.mark.redis

UNAVAILABLE_LOG = "shared cache tier unavailable"


async def warm(group: list[Replica]) -> None:
    """Connections, scripts and the first upstream call of each replica, outside the count."""
    warming = [r.runtime.GetRecommendations(recs(f"warm-{i}")) for i, r in enumerate(group)]
    await asyncio.gather(*warming)


async def test_100_identical_requests_over_3_replicas_make_1_upstream_call(
    emulator: Any, tmp_path: Path, redis_prefix: str
) -> None:
    # The upstream takes 30 ms: every replica's callers arrive while the first call runs.
    emulator.set_faults({"latency": {"*": {"fixed_ms": 30}}})
    configs = [replica_config(emulator.endpoint_url, redis_prefix)] * 3
    async with replicas(tmp_path, configs) as group:
        await warm(group)
        before = upstream_calls(emulator)
        calls = [group[i % 3].runtime.GetRecommendations(recs("hot")) for i in range(100)]
        results = await asyncio.gather(*(answer(c) for c in calls))
        assert upstream_calls(emulator) - before == 1
        responses = {r.SerializeToString() for r, _ in results}
        assert len(responses) == 1
        # Some callers on the other replicas got it through Redis, not from their own call.
        assert any(meta.get("mlgw-coalesced") == "true" for _, meta in results)


async def test_a_burst_over_3_replicas_keeps_the_shared_tier_on(
    emulator: Any, tmp_path: Path, redis_prefix: str
) -> None:
    """The issue's burst: 99 identical misses over 3 replicas with the default 10 ms lookup
    bound. Afterwards a key fetched through one replica is a shared hit through another."""
    configs = [replica_config(emulator.endpoint_url, redis_prefix)] * 3
    async with replicas(tmp_path, configs) as group:
        await warm(group)
        calls = [group[i % 3].runtime.GetRecommendations(recs("burst")) for i in range(99)]
        await asyncio.gather(*calls)
        redis = Redis.from_url(REDIS_URL)
        try:
            stored = await _values(redis, redis_prefix)
            _, meta = await answer(group[0].runtime.GetRecommendations(recs("after")))
            assert meta["mlgw-cache"] == "miss"
            await eventually(lambda: _more(redis, redis_prefix, stored))
        finally:
            await redis.aclose()
        _, meta = await answer(group[1].runtime.GetRecommendations(recs("after")))
        assert (meta["mlgw-cache"], meta["mlgw-cache-tier"]) == ("hit", "shared")
        _, meta = await answer(group[2].runtime.GetRecommendations(recs("after")))
        assert (meta["mlgw-cache"], meta["mlgw-cache-tier"]) == ("hit", "shared")
    for replica in group:
        assert UNAVAILABLE_LOG not in replica.log()


async def test_a_dead_redis_switches_the_tier_off_at_once(emulator: Any) -> None:
    from tests.integration.test_cache_redis import refused_port

    failures = metrics.CACHE_SHARED_FAILURES.labels("error")
    skipped = metrics.CACHE_SHARED_SKIPPED
    cfg = config(emulator.endpoint_url, redis={"url": f"redis://127.0.0.1:{refused_port()}/0"})
    async with serving(cfg) as stubs:
        errors, skips = failures._value.get(), skipped._value.get()
        _, meta = await answer(stubs.runtime.GetRecommendations(recs("d1")))
        assert meta["mlgw-cache"] == "miss"
        assert failures._value.get() > errors  # the first lookup failed ...
        skips = skipped._value.get()
        _, meta = await answer(stubs.runtime.GetRecommendations(recs("d2")))
        assert meta["mlgw-cache"] == "miss"
        assert skipped._value.get() > skips  # ... and the next one did not ask Redis at all


def zipf_users(n: int, keys: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    weights = [1 / (rank**1.1) for rank in range(1, keys + 1)]
    return [f"z{k}" for k in rng.choices(range(keys), weights, k=n)]


async def run_workload(group: list[Replica], users: list[str], concurrency: int) -> None:
    queue = list(enumerate(users))

    async def worker() -> None:
        while queue:
            i, user = queue.pop()
            await group[i % len(group)].runtime.GetRecommendations(recs(user))

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def test_a_zipf_workload_through_3_replicas_makes_one_replicas_upstream_calls(
    emulator: Any, tmp_path: Path, redis_prefix: str
) -> None:
    emulator.set_faults({"latency": {"*": {"fixed_ms": 5}}})
    users = zipf_users(600, 300, seed=7)
    made = []
    for count, prefix in ((1, f"{redis_prefix}one:"), (3, f"{redis_prefix}three:")):
        configs = [replica_config(emulator.endpoint_url, prefix)] * count
        async with replicas(tmp_path, configs) as group:
            await warm(group)
            before = upstream_calls(emulator)
            await run_workload(group, users, concurrency=24)
            made.append(upstream_calls(emulator) - before)
    one, three = made
    assert one == len(set(users))  # the TTL-optimal count: each distinct request once
    assert abs(three - one) <= 0.05 * one, made


async def _values(redis: Redis, prefix: str) -> int:
    keys = [k async for k in redis.scan_iter(match=f"{prefix}cache:*")]
    return len([k for k in keys if not k.endswith(b":lease")])


async def _more(redis: Redis, prefix: str, than: int) -> bool:
    return await _values(redis, prefix) > than
