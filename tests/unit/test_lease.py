"""The lease stage: two "replicas" (cache + lease stages, each with its own shared-tier
client) on the real Redis, over fake upstream handlers: one call for both; a failed holder
hands over at once; a dead holder's lease expires; a waiter keeps to its deadline; no Redis
means calling the upstream."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import pytest
from google.protobuf.message import Message
from mlgw.personalize_runtime.v1 import personalize_runtime_pb2 as rt

from gateway.cache_config import CacheConfig, CoalesceConfig, RedisConfig
from gateway.errors import GatewayError
from gateway.operations import OPERATIONS
from gateway.pipeline.cache import Cache
from gateway.pipeline.cachekey import request_key
from gateway.pipeline.call import Call, Handler, compose
from gateway.pipeline.lease import Lease
from gateway.pipeline.shared import SharedTier
from gateway.redis import open_redis
from tests.integration.replica_support import delete_prefix

RECS = next(op for op in OPERATIONS if op.name == "GetRecommendations")
ARN = "arn:aws:personalize:us-east-1:000000000000:campaign/demo"
REQUEST = rt.GetRecommendationsRequest(campaign_arn=ARN, user_id="u1")
REDIS_URL = "redis://127.0.0.1:6379/0"
pytestmark = pytest.mark.redis


class Upstream:
    """Answers after `gate` opens; raises the queued errors first."""

    def __init__(self) -> None:
        self.calls = 0
        self.gate = asyncio.Event()
        self.gate.set()
        self.entered = asyncio.Event()
        self.errors: list[GatewayError] = []

    async def __call__(self, call: Call) -> Message:
        self.calls += 1
        self.entered.set()
        await self.gate.wait()
        if self.errors:
            raise self.errors.pop(0)
        return rt.GetRecommendationsResponse(recommendation_id=f"answer-{self.calls}")


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    prefix = f"mlgw:test:{uuid.uuid4().hex}:"
    yield prefix
    await delete_prefix(prefix)


async def replica(
    stack: AsyncExitStack, prefix: str, upstream: Upstream, url: str = REDIS_URL
) -> tuple[Handler, SharedTier]:
    redis = RedisConfig(url=url, timeout_seconds=0.2)
    client = await open_redis(redis, stack)
    assert client is not None
    shared = SharedTier(client, redis, prefix)
    stack.push_async_callback(shared.aclose)
    cache = CacheConfig()
    stages = [Cache(cache, shared), Lease(shared, cache, CoalesceConfig(lease_poll_seconds=0.01))]
    return compose(RECS, stages, upstream), shared


def call(timeout: float = 5.0) -> Call:
    return Call(RECS, REQUEST, asyncio.get_running_loop().time() + timeout)


async def test_two_replicas_make_one_upstream_call(prefix: str) -> None:
    first, second = Upstream(), Upstream()
    first.gate.clear()
    async with AsyncExitStack() as stack:
        a, _ = await replica(stack, prefix, first)
        b, _ = await replica(stack, prefix, second)
        holder = asyncio.ensure_future(a(call()))
        await first.entered.wait()  # the holder has the lease and calls the upstream
        waiter = asyncio.ensure_future(b(call()))
        first.gate.set()
        answers = await asyncio.gather(holder, waiter)
    assert (first.calls, second.calls) == (1, 0)
    assert answers[0] == answers[1]


async def test_a_failed_holder_hands_the_key_over_at_once(prefix: str) -> None:
    first, second = Upstream(), Upstream()
    first.gate.clear()
    first.errors.append(GatewayError("boom", reason="UPSTREAM_ERROR"))
    async with AsyncExitStack() as stack:
        a, _ = await replica(stack, prefix, first)
        b, _ = await replica(stack, prefix, second)
        holder = asyncio.ensure_future(a(call()))
        await first.entered.wait()
        waiter = asyncio.ensure_future(b(call(timeout=2.0)))
        first.gate.set()
        with pytest.raises(GatewayError):
            await holder
        answer = await waiter
    assert second.calls == 1  # took the lease over and asked itself
    assert answer == rt.GetRecommendationsResponse(recommendation_id="answer-1")


async def test_a_dead_holders_lease_expires(prefix: str) -> None:
    upstream = Upstream()
    async with AsyncExitStack() as stack:
        handler, shared = await replica(stack, prefix, upstream)
        key = request_key(RECS)(REQUEST)
        # A replica took the lease for 150 ms and died.
        assert await shared.acquire(key, b"dead", 0.15, 0.5) == (None, True)
        answer = await handler(call())
    assert upstream.calls == 1
    assert answer.recommendation_id == "answer-1"


async def test_a_waiter_keeps_to_its_deadline(prefix: str) -> None:
    upstream = Upstream()
    async with AsyncExitStack() as stack:
        handler, shared = await replica(stack, prefix, upstream)
        key = request_key(RECS)(REQUEST)
        assert await shared.acquire(key, b"slow", 30.0, 0.5) == (None, True)
        loop = asyncio.get_running_loop()
        mine = call(timeout=0.4)
        answer = await handler(mine)
        # It stopped waiting `lease_fallback_seconds` before its deadline and asked itself.
        assert loop.time() < mine.deadline
    assert upstream.calls == 1
    assert answer.recommendation_id == "answer-1"


async def test_without_redis_each_replica_calls_the_upstream(prefix: str) -> None:
    from tests.unit.test_cache_shared import closed_port

    upstream = Upstream()
    async with AsyncExitStack() as stack:
        handler, _ = await replica(
            stack, prefix, upstream, url=f"redis://127.0.0.1:{closed_port()}/0"
        )
        await handler(call())
    assert upstream.calls == 1
