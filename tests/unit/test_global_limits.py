"""The shared (Redis) buckets: the GCRA script, sharing between buckets, fallback, recovery."""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import pytest
from redis.asyncio import Redis

from gateway import metrics
from gateway.cache_config import RedisConfig
from gateway.limits_config import Limit, LimitsConfig
from gateway.pipeline.admission import INTERACTIVE, Bucket
from gateway.pipeline.global_limits import SharedBuckets, open_shared_buckets

REDIS_URL = "redis://127.0.0.1:6379/0"
pytestmark = pytest.mark.redis


@pytest.fixture
async def shared() -> AsyncIterator[tuple[SharedBuckets, str]]:
    """Shared buckets on the real Redis, and a unique key prefix (deleted afterwards)."""
    prefix = f"mlgw:test:limits:{uuid.uuid4().hex}:"
    async with AsyncExitStack() as stack:
        buckets = await open_shared_buckets(
            RedisConfig(url=REDIS_URL), LimitsConfig(redis_timeout_seconds=0.5), stack
        )
        assert buckets is not None
        yield buckets, prefix
        client = Redis.from_url(REDIS_URL)
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def test_the_script_is_a_token_bucket(shared: tuple[SharedBuckets, str]) -> None:
    buckets, prefix = shared
    key = prefix + "a"
    taken = await buckets.take(key, 0.1, 3.0, 5)  # 10/s, burst 3
    assert taken is not None
    assert taken[0] == 3
    assert taken[1] == pytest.approx(0.1, abs=0.02)  # until the next token
    again = await buckets.take(key, 0.1, 3.0, 1)
    assert again is not None
    assert again[0] == 0


async def test_buckets_in_two_processes_share_one_rate(shared: tuple[SharedBuckets, str]) -> None:
    """Two Bucket objects (two processes' state) on one key admit one rate between them."""
    buckets, prefix = shared
    loop = asyncio.get_running_loop()

    def make() -> Bucket:
        return Bucket(
            "GetRecommendations x", prefix + "shared", Limit(50, 2), adaptive=False, divisor=2,
            max_queue=1000, max_wait=5.0, remote=buckets, now=loop.time(),
        )  # fmt: skip

    admitted = [0, 0]
    start = loop.time()

    async def worker(index: int, bucket: Bucket) -> None:
        while loop.time() - start < 1.0:
            await bucket.acquire(INTERACTIVE, loop.time() + 5, loop.time())
            if loop.time() - start < 1.0:
                admitted[index] += 1

    one, two = make(), make()
    await asyncio.gather(*(worker(i, b) for i, b in enumerate((one, two)) for _ in range(5)))
    total = sum(admitted)
    # 50/s for 1 s, plus the burst of 2.
    assert 45 <= total <= 55, admitted
    assert min(admitted) > 10, admitted  # both processes got a share


def dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_dead_redis_means_the_local_share_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="gateway.limits")
    cfg = LimitsConfig(redis_timeout_seconds=0.05, redis_cooldown_seconds=60)
    async with AsyncExitStack() as stack:
        buckets = await open_shared_buckets(
            RedisConfig(url=f"redis://127.0.0.1:{dead_port()}/0"), cfg, stack
        )
        assert buckets is not None
        loop = asyncio.get_running_loop()
        assert buckets.down
        assert not buckets.usable(loop.time())
        assert metrics.LIMITS_SHARED_FALLBACK._value.get() == 1
        bucket = Bucket(
            "b", "k", Limit(10, 4), adaptive=False, divisor=2, max_queue=10, max_wait=1.0,
            remote=buckets, now=loop.time(),
        )  # fmt: skip
        # Its local share: rate 10 / 2 processes, burst 4 / 2.
        assert bucket.take_now(loop.time())
        assert bucket.take_now(loop.time())
        assert not bucket.take_now(loop.time())
    warnings = [r for r in caplog.records if "redis unavailable" in r.getMessage()]
    assert len(warnings) == 1


async def test_redis_is_asked_again_after_the_cooldown_and_recovery_is_logged(
    shared: tuple[SharedBuckets, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="gateway.limits")
    buckets, prefix = shared
    buckets.link._cooldown = 0.0
    buckets.link.failed(TimeoutError())
    assert buckets.down
    assert metrics.LIMITS_SHARED_FALLBACK._value.get() == 1
    assert await buckets.take(prefix + "r", 0.1, 1.0, 1) is not None
    assert not buckets.down
    assert metrics.LIMITS_SHARED_FALLBACK._value.get() == 0
    assert any("shared through redis again" in r.getMessage() for r in caplog.records)
