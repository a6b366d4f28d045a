"""Deadlines and cancellation: upstream work is bounded by the caller and abandoned with it."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from mlgw.personalize_runtime.v1 import personalize_runtime_pb2 as rt
from mlgw.personalize_runtime.v1 import personalize_runtime_pb2_grpc as rt_grpc

from tests.integration.conftest import GatewayFactory, Stubs
from tests.support import error_info, eventually

ARN = "arn:aws:personalize:us-east-1:000000000000"
REQUEST = rt.GetRecommendationsRequest(campaign_arn=f"{ARN}:campaign/demo", user_id="u-1")
#: The gateway, not the caller's own timer, answered: it reports why in ErrorInfo. The
#: same reason whether the caller's own call or the shared call it waited on was slow.
SLOW_UPSTREAM = "UPSTREAM_TIMEOUT"
SLOW = {"latency": {"GetRecommendations": {"fixed_ms": 3000}}}


def abandoned(emulator: Any) -> int:
    return int(emulator.stats()["abandoned"].get("GetRecommendations", 0))


async def test_caller_deadline_bounds_upstream_and_abandons_it(stubs: Stubs, emulator: Any) -> None:
    emulator.set_faults(SLOW)
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stubs.runtime.GetRecommendations(REQUEST, timeout=0.3)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert loop.time() - start < 1.5  # answered near the deadline, not after the upstream
    await eventually(lambda: abandoned(emulator) == 1)
    assert emulator.stats()["in_flight"] == 0


async def test_cancelled_call_abandons_the_upstream_request(stubs: Stubs, emulator: Any) -> None:
    emulator.set_faults(SLOW)
    call = stubs.runtime.GetRecommendations(REQUEST, timeout=10)
    await eventually(lambda: emulator.stats()["in_flight"] == 1)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    await eventually(lambda: abandoned(emulator) == 1)
    assert emulator.stats()["in_flight"] == 0


async def test_no_caller_deadline_uses_the_configured_default(
    make_gateway: GatewayFactory, emulator: Any
) -> None:
    gateway = await make_gateway(upstream={"default_deadline_seconds": 0.3})
    emulator.set_faults(SLOW)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
        stub = rt_grpc.PersonalizeRuntimeServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.GetRecommendations(REQUEST)  # no timeout at all
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert error_info(caught.value).reason == SLOW_UPSTREAM
    await eventually(lambda: abandoned(emulator) == 1)


async def test_far_caller_deadline_is_capped(make_gateway: GatewayFactory, emulator: Any) -> None:
    # The default must not exceed the cap (a start-up error otherwise).
    capped = {"max_deadline_seconds": 0.3, "default_deadline_seconds": 0.3}
    gateway = await make_gateway(upstream=capped)
    emulator.set_faults(SLOW)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
        stub = rt_grpc.PersonalizeRuntimeServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.GetRecommendations(REQUEST, timeout=3600)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert error_info(caught.value).reason == SLOW_UPSTREAM
    await eventually(lambda: abandoned(emulator) == 1)


async def test_pool_wait_is_bounded_by_the_deadline(
    make_gateway: GatewayFactory, emulator: Any
) -> None:
    """With one pooled connection busy, a second call waits for it only until its deadline."""
    gateway = await make_gateway(upstream={"max_pool_connections": 1})
    emulator.set_faults(SLOW)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
        stub = rt_grpc.PersonalizeRuntimeServiceStub(channel)
        first = stub.GetRecommendations(REQUEST, timeout=10)
        await eventually(lambda: emulator.stats()["in_flight"] == 1)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.GetRecommendations(REQUEST, timeout=0.3)
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert emulator.stats()["calls"]["GetRecommendations"] == 1  # never got a connection
        first.cancel()


async def test_a_coalesced_caller_out_of_time_gets_the_same_reason(
    stubs: Stubs, emulator: Any
) -> None:
    """A caller that joined a slower caller's upstream call leaves at its own deadline,
    told the upstream was too slow; the shared call goes on for the other caller."""
    emulator.set_faults({"latency": {"GetRecommendations": {"fixed_ms": 800}}})
    first = asyncio.ensure_future(stubs.runtime.GetRecommendations(REQUEST, timeout=10))
    await eventually(lambda: emulator.stats()["in_flight"] == 1)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stubs.runtime.GetRecommendations(REQUEST, timeout=0.2)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    info = error_info(caught.value)
    assert info.reason == SLOW_UPSTREAM
    assert info.metadata["service"] == "personalize-runtime"
    assert len((await first).item_list) == 25
    assert emulator.stats()["calls"]["GetRecommendations"] == 1
