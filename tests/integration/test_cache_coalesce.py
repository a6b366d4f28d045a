"""Coalescing, end to end: identical requests in flight make one upstream call."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest

from gateway import metrics
from tests.integration.cache_support import (
    admin,
    answer,
    config,
    eventually,
    patch_faults,
    recs,
    serving,
    upstream_calls,
)

COALESCED = {"operation": "GetRecommendations"}


def coalesced_so_far() -> float:
    return metrics.REGISTRY.get_sample_value("mlgw_coalesced_requests_total", COALESCED) or 0.0


async def in_flight(emulator: Any, count: int) -> None:
    async def reached() -> bool:
        return int((await admin(emulator, "GET", "stats"))["in_flight"]) >= count

    await eventually(reached)


async def test_a_hundred_identical_concurrent_requests_make_one_upstream_call(
    emulator: Any,
) -> None:
    # The upstream takes a while, so all hundred are in flight together.
    await patch_faults(emulator, {"latency": {"GetRecommendations": {"fixed_ms": 150}}})
    async with serving(config(emulator.endpoint_url)) as stubs:
        calls = [stubs.runtime.GetRecommendations(recs()) for _ in range(100)]
        results = await asyncio.gather(*(answer(call) for call in calls))
    assert await upstream_calls(emulator) == 1
    assert len({r.SerializeToString() for r, _ in results}) == 1
    kinds = [(meta["mlgw-cache"], meta.get("mlgw-coalesced")) for _, meta in results]
    assert kinds.count(("miss", None)) == 1  # the one that went upstream
    assert kinds.count(("miss", "true")) + kinds.count(("hit", None)) == 99


async def test_a_caller_that_cancels_does_not_cancel_the_others(emulator: Any) -> None:
    await patch_faults(emulator, {"latency": {"GetRecommendations": {"fixed_ms": 400}}})
    async with serving(config(emulator.endpoint_url)) as stubs:
        first = stubs.runtime.GetRecommendations(recs())
        await in_flight(emulator, 1)
        before = coalesced_so_far()
        second = stubs.runtime.GetRecommendations(recs())

        async def joined() -> bool:
            return coalesced_so_far() >= before + 1

        await eventually(joined)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        response, meta = await answer(second)
    assert meta["mlgw-coalesced"] == "true"
    assert len(response.item_list) == 25
    stats = await admin(emulator, "GET", "stats")
    assert stats["calls"]["GetRecommendations"] == 1
    assert stats["abandoned"].get("GetRecommendations", 0) == 0


async def test_the_upstream_call_is_abandoned_when_every_caller_left(emulator: Any) -> None:
    await patch_faults(emulator, {"latency": {"GetRecommendations": {"fixed_ms": 2000}}})
    async with serving(config(emulator.endpoint_url)) as stubs:
        calls = [stubs.runtime.GetRecommendations(recs()) for _ in range(3)]
        await in_flight(emulator, 1)
        for call in calls:
            call.cancel()

        async def abandoned() -> bool:
            stats = await admin(emulator, "GET", "stats")
            return int(stats["abandoned"].get("GetRecommendations", 0)) == 1

        await eventually(abandoned)
    assert await upstream_calls(emulator) == 1


async def test_an_upstream_error_reaches_every_waiter(emulator: Any) -> None:
    await patch_faults(
        emulator,
        {
            "latency": {"GetRecommendations": {"fixed_ms": 150}},
            "errors": {"GetRecommendations": {"InternalServerException": 1.0}},
        },
    )
    # Without the retry stage, so the count is of shared calls rather than attempts.
    cfg = config(emulator.endpoint_url, retry={"enabled": False})
    async with serving(cfg) as stubs:
        calls = [stubs.runtime.GetRecommendations(recs()) for _ in range(10)]
        results = await asyncio.gather(*calls, return_exceptions=True)
    assert all(isinstance(r, grpc.aio.AioRpcError) for r in results)
    assert {r.code() for r in results} == {grpc.StatusCode.UNAVAILABLE}  # type: ignore[union-attr]
    assert await upstream_calls(emulator) == 1


async def test_each_waiter_keeps_its_own_deadline(emulator: Any) -> None:
    await patch_faults(emulator, {"latency": {"GetRecommendations": {"fixed_ms": 400}}})
    async with serving(config(emulator.endpoint_url)) as stubs:
        patient = stubs.runtime.GetRecommendations(recs(), timeout=10)
        await in_flight(emulator, 1)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stubs.runtime.GetRecommendations(recs(), timeout=0.1)
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        response = await patient
    assert len(response.item_list) == 25
    assert await upstream_calls(emulator) == 1
