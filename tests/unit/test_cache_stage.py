"""The cache stage alone, over a fake upstream handler and a fake clock."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from mlgw.personalize_runtime.v1 import personalize_runtime_pb2 as rt

from gateway.cache_config import CacheConfig
from gateway.errors import GatewayError, UpstreamError
from gateway.operations import OPERATIONS
from gateway.pipeline.cache import Cache, Entry, LocalCache
from gateway.pipeline.call import Call

OPS = {op.name: op for op in OPERATIONS}
RECS = OPS["GetRecommendations"]
ARN = "arn:aws:personalize:us-east-1:000000000000:campaign/demo"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeUpstream:
    """Answers GetRecommendations with a numbered recommendationId, or raises `error`."""

    def __init__(self) -> None:
        self.calls = 0
        self.error: GatewayError | None = None
        self.gate: asyncio.Event | None = None

    async def __call__(self, call: Call) -> Message:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.error is not None:
            raise self.error
        return rt.GetRecommendationsResponse(recommendation_id=f"answer-{self.calls}")


def throttled() -> UpstreamError:
    return UpstreamError(
        "Rate exceeded",
        code=grpc.StatusCode.RESOURCE_EXHAUSTED,
        reason="UPSTREAM_THROTTLED",
        service="personalize-runtime",
        throttled=True,
        retryable=True,
    )


def not_found() -> UpstreamError:
    return UpstreamError(
        "Campaign does not exist",
        code=grpc.StatusCode.NOT_FOUND,
        reason="RESOURCE_NOT_FOUND",
        service="personalize-runtime",
        aws_code="ResourceNotFoundException",
    )


def make_call(request: Message, metadata: Mapping[str, str] | None = None) -> Call:
    return Call(RECS, request, asyncio.get_running_loop().time() + 10, metadata)


def user_request(user: str = "u1") -> rt.GetRecommendationsRequest:
    return rt.GetRecommendationsRequest(campaign_arn=ARN, user_id=user)


def meta(call: Call) -> dict[str, str]:
    return dict(call.reply_metadata)


def stage(**settings: Any) -> tuple[Cache, Clock, FakeUpstream, Any]:
    clock = Clock()
    cache = Cache(CacheConfig(**settings), clock=clock, wall=clock)
    upstream = FakeUpstream()
    return cache, clock, upstream, cache.wrap(RECS, upstream)


async def test_a_hit_is_the_stored_message_itself() -> None:
    _, clock, upstream, handler = stage()
    first = make_call(user_request())
    answer = await handler(first)
    assert meta(first) == {"mlgw-cache": "miss"}
    clock.now += 1.25
    second = make_call(user_request())
    assert await handler(second) is answer  # no copy, no conversion
    assert upstream.calls == 1
    assert meta(second) == {
        "mlgw-cache": "hit",
        "mlgw-cache-tier": "local",
        "mlgw-cache-age": "1.250",
    }


async def test_ttl_by_class_operation_and_resource() -> None:
    _, clock, upstream, handler = stage(
        user_ttl_seconds=10, shared_ttl_seconds=60, stale_while_revalidate_seconds=0
    )
    anonymous = rt.GetRecommendationsRequest(campaign_arn=ARN)
    await handler(make_call(user_request()))
    await handler(make_call(anonymous))
    clock.now += 11
    await handler(make_call(user_request()))
    await handler(make_call(anonymous))
    assert upstream.calls == 3  # the user answer expired, the one for everyone did not

    _, clock, upstream, handler = stage(
        ttl_by_operation={"GetRecommendations": 2}, stale_while_revalidate_seconds=0
    )
    await handler(make_call(user_request()))
    clock.now += 3
    await handler(make_call(user_request()))
    assert upstream.calls == 2

    _, clock, upstream, handler = stage(
        ttl_by_operation={"GetRecommendations": 2}, ttl_by_resource={ARN: 100}
    )
    await handler(make_call(user_request()))
    clock.now += 50
    await handler(make_call(user_request()))
    assert upstream.calls == 1  # the resource's TTL wins over the operation's

    _, _, upstream, handler = stage(ttl_by_resource={ARN: 0})
    await handler(make_call(user_request()))
    await handler(make_call(user_request()))
    assert upstream.calls == 2  # 0: never cached


def test_local_cache_is_bounded_by_entries_and_bytes() -> None:
    local = LocalCache(max_entries=3, max_bytes=1000)

    def entry(size: int) -> Entry:
        return Entry(rt.GetRecommendationsResponse(), None, 0.0, 1.0, 1.0, size)

    for name in (b"a", b"b", b"c"):
        local.put(name, entry(100))
    assert local.get(b"a") is not None  # now most recently used
    local.put(b"d", entry(100))
    assert set(local.data) == {b"c", b"a", b"d"}  # b was least recently used
    local.put(b"e", entry(900))
    assert set(local.data) == {b"d", b"e"}
    assert local.bytes == 1000
    local.put(b"huge", entry(1001))  # larger than the whole cache: not stored
    assert b"huge" not in local.data
    assert local.bytes == 1000
    local.put(b"e", entry(10))  # replacing an entry re-counts its bytes
    assert set(local.data) == {b"d", b"e"}
    assert local.bytes == 110


async def test_stale_while_revalidate_serves_stale_and_refreshes_once() -> None:
    cache, clock, upstream, handler = stage(
        user_ttl_seconds=10, stale_while_revalidate_seconds=5, stale_if_error_seconds=0
    )
    await handler(make_call(user_request()))
    clock.now += 12  # expired, within the revalidate grace
    upstream.gate = asyncio.Event()  # hold the refresh in flight
    calls = [make_call(user_request()) for _ in range(5)]
    answers = await asyncio.gather(*(handler(c) for c in calls))
    assert {a.recommendation_id for a in answers} == {"answer-1"}
    for call in calls:
        assert meta(call)["mlgw-cache"] == "stale"
        assert meta(call)["mlgw-cache-stale"] == "while-revalidate"
        assert meta(call)["mlgw-cache-age"] == "12.000"
    for _ in range(100):  # the one refresh starts in the background
        if upstream.calls == 2:
            break
        await asyncio.sleep(0)
    assert upstream.calls == 2
    upstream.gate.set()
    for _ in range(100):
        if not cache.refreshing:
            break
        await asyncio.sleep(0)
    assert not cache.refreshing
    fresh = make_call(user_request())
    assert (await handler(fresh)).recommendation_id == "answer-2"
    assert meta(fresh)["mlgw-cache"] == "hit"
    clock.now += 16  # beyond TTL + grace: a plain miss
    late = make_call(user_request())
    await handler(late)
    assert meta(late)["mlgw-cache"] == "miss"
    assert upstream.calls == 3


async def test_stale_if_error_hides_upstream_failures_only() -> None:
    _, clock, upstream, handler = stage(
        user_ttl_seconds=10, stale_while_revalidate_seconds=0, stale_if_error_seconds=30
    )
    await handler(make_call(user_request()))
    clock.now += 20
    upstream.error = throttled()
    call = make_call(user_request())
    assert (await handler(call)).recommendation_id == "answer-1"
    assert meta(call)["mlgw-cache"] == "stale"
    assert meta(call)["mlgw-cache-stale"] == "if-error"
    assert upstream.calls == 2  # the upstream was asked, and its error hidden

    upstream.error = GatewayError(
        "bad", reason="UPSTREAM_INVALID_INPUT", code=grpc.StatusCode.INVALID_ARGUMENT
    )
    with pytest.raises(GatewayError) as caught:
        await handler(make_call(user_request()))
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT  # the caller's mistake

    upstream.error = throttled()
    clock.now += 30  # past TTL + stale_if_error
    with pytest.raises(UpstreamError):
        await handler(make_call(user_request()))


async def test_resource_not_found_is_cached_briefly_and_throttles_never() -> None:
    _, clock, upstream, handler = stage(negative_ttl_seconds=2)
    upstream.error = not_found()
    for _ in range(3):
        with pytest.raises(GatewayError) as caught:
            await handler(make_call(user_request()))
        assert caught.value.code == grpc.StatusCode.NOT_FOUND
    assert upstream.calls == 1
    assert caught.value.metadata["cache"] == "hit"
    assert caught.value.metadata["awsErrorCode"] == "ResourceNotFoundException"
    clock.now += 2.5
    with pytest.raises(GatewayError):
        await handler(make_call(user_request()))
    assert upstream.calls == 2

    _, _, upstream, handler = stage()
    upstream.error = throttled()
    for _ in range(2):
        with pytest.raises(UpstreamError):
            await handler(make_call(user_request()))
    assert upstream.calls == 2


async def test_cache_control_directives() -> None:
    _, clock, upstream, handler = stage()
    no_store = make_call(user_request(), {"cache-control": "no-store"})
    await handler(no_store)
    assert meta(no_store) == {"mlgw-cache": "bypass"}
    plain = make_call(user_request())
    assert (await handler(plain)).recommendation_id == "answer-2"  # no-store stored nothing
    assert meta(plain)["mlgw-cache"] == "miss"

    revalidate = make_call(user_request(), {"cache-control": "no-cache"})
    assert (await handler(revalidate)).recommendation_id == "answer-3"
    after = make_call(user_request())
    assert (await handler(after)).recommendation_id == "answer-3"  # no-cache refreshed it
    assert meta(after)["mlgw-cache"] == "hit"

    clock.now += 5
    young = make_call(user_request(), {"cache-control": "max-age=3"})
    assert (await handler(young)).recommendation_id == "answer-4"
    assert meta(young)["mlgw-cache"] == "miss"
    clock.now += 2
    relaxed = make_call(user_request(), {"cache-control": "max-age=60"})
    assert (await handler(relaxed)).recommendation_id == "answer-4"  # 2 s old: fine
    assert meta(relaxed)["mlgw-cache-age"] == "2.000"
    assert upstream.calls == 4


async def test_max_age_also_bounds_stale_answers() -> None:
    _, clock, upstream, handler = stage(user_ttl_seconds=10, stale_if_error_seconds=60)
    await handler(make_call(user_request()))
    clock.now += 20
    upstream.error = throttled()
    with pytest.raises(UpstreamError):
        await handler(make_call(user_request(), {"cache-control": "max-age=15"}))
    # ...while a caller without the directive gets the stale answer.
    assert (await handler(make_call(user_request()))).recommendation_id == "answer-1"


def test_operations_without_a_policy_and_a_disabled_cache_cost_nothing() -> None:
    async def inner(call: Call) -> Message:
        raise AssertionError

    cache = Cache(CacheConfig())
    assert cache.wrap(OPS["CreateBatchInferenceJob"], inner) is inner
    assert cache.wrap(OPS["ListBatchInferenceJobs"], inner) is inner
    assert Cache(CacheConfig(enabled=False)).wrap(RECS, inner) is inner
    assert cache.wrap(RECS, inner) is not inner
