"""The circuit breaker per AWS service, end to end: open on failures, fail fast, probe, close."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from mlgw.personalize_runtime.v1 import personalize_runtime_pb2 as rt

from tests.integration import overload_support
from tests.integration.overload_support import GatewayStarter, call, recommendations
from tests.integration.requests import VALID
from tests.support import eventually

start_gateway = overload_support.start_gateway

FAILING = {"errors": {"GetRecommendations": {"InternalServerException": 1.0}}}
BREAKER = {"consecutive_failures": 4, "open_seconds": 0.3}
ONE_ATTEMPT = {"max_attempts": 1}


def calls(emulator: Any, operation: str = "GetRecommendations") -> int:
    return int(emulator.stats()["calls"].get(operation, 0))


async def test_sustained_failures_open_the_breaker_until_a_probe_succeeds(
    start_gateway: GatewayStarter, emulator: Any
) -> None:
    emulator.set_faults(FAILING)
    gateway, stubs = await start_gateway(breaker=BREAKER, retry=ONE_ATTEMPT)
    for i in range(4):
        outcome = await call(stubs.runtime.GetRecommendations, recommendations(i), 5.0)
        assert outcome.reason == "UPSTREAM_INTERNAL"

    fast = await call(stubs.runtime.GetRecommendations, recommendations(9), 5.0)
    assert fast.code == "UNAVAILABLE"
    assert fast.reason == "CIRCUIT_OPEN"
    assert fast.retry_delay is not None
    assert 0 < fast.retry_delay <= 0.3
    assert calls(emulator) == 4  # failed fast: never sent
    # Every operation of the same service is cut off; other services are not.
    ranking = await call(stubs.runtime.GetPersonalizedRanking, VALID["GetPersonalizedRanking"], 5.0)
    assert ranking.reason == "CIRCUIT_OPEN"
    other = await call(stubs.bedrock.ListModelInvocationJobs, VALID["ListModelInvocationJobs"], 5)
    assert other.code == "OK"

    emulator.set_faults({})  # the service recovers; after open_seconds a probe closes it

    async def recovered() -> bool:
        outcome = await call(stubs.runtime.GetRecommendations, recommendations(10), 5.0)
        return outcome.code == "OK"

    await eventually(recovered, within=10.0)
    assert gateway.overload is not None
    assert gateway.overload.breakers.breaker("personalize-runtime").state == 0


async def test_a_failed_probe_keeps_it_open(start_gateway: GatewayStarter, emulator: Any) -> None:
    emulator.set_faults(FAILING)
    gateway, stubs = await start_gateway(breaker=BREAKER, retry=ONE_ATTEMPT)
    for i in range(4):
        await call(stubs.runtime.GetRecommendations, recommendations(i), 5.0)
    assert gateway.overload is not None
    breaker = gateway.overload.breakers.breaker("personalize-runtime")

    async def probed() -> bool:
        await call(stubs.runtime.GetRecommendations, recommendations(20), 5.0)
        return calls(emulator) == 5  # the one probe went through (and failed)

    await eventually(probed, within=10.0)
    outcome = await call(stubs.runtime.GetRecommendations, recommendations(21), 5.0)
    assert outcome.reason == "CIRCUIT_OPEN"
    assert outcome.retry_delay is not None
    assert outcome.retry_delay > 0.3  # open twice as long after a failed probe
    assert breaker.state == 2


async def test_an_open_breaker_is_hidden_by_a_stale_cached_answer(
    start_gateway: GatewayStarter, emulator: Any
) -> None:
    _, stubs = await start_gateway(
        breaker=BREAKER, retry=ONE_ATTEMPT, cache={"user_ttl_seconds": 0.05}
    )
    cached = rt.GetRecommendationsRequest(campaign_arn=recommendations(0).campaign_arn, user_id="c")
    fresh = await stubs.runtime.GetRecommendations(cached, timeout=5)
    emulator.set_faults(FAILING)
    for i in range(4):
        await call(stubs.runtime.GetRecommendations, recommendations(i), 5.0)
    await asyncio.sleep(0.1)  # let the cached answer's TTL pass (time, not synchronisation)
    before = calls(emulator)
    reply = stubs.runtime.GetRecommendations(cached, timeout=5)
    answer = await reply
    trailers = dict(await reply.trailing_metadata() or ())
    assert answer == fresh
    assert trailers.get("mlgw-cache") == "stale"
    assert calls(emulator) == before  # the open breaker failed it fast; the cache answered


async def test_one_failing_call_with_retries_does_not_open_the_breaker(
    start_gateway: GatewayStarter, emulator: Any
) -> None:
    """Defaults: a single caller's three failed attempts are not "sustained failures"."""
    emulator.set_faults(FAILING)
    gateway, stubs = await start_gateway()
    outcome = await call(stubs.runtime.GetRecommendations, recommendations(1), 5.0)
    assert outcome.reason == "UPSTREAM_INTERNAL"
    assert gateway.overload is not None
    assert gateway.overload.breakers.breaker("personalize-runtime").state == 0


@pytest.fixture(autouse=True)
def _quiet_grpc_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("ERROR", logger="gateway.rpc")
