"""Overload against the emulator's per-ARN TPS limits: keep the quota, shed early, lose nothing.

Offered load is three times the upstream limit, open loop (calls start on schedule whether
or not earlier ones finished), with deadlines long enough to wait for a token. Every call
must end with an answer or a RESOURCE_EXHAUSTED / UNAVAILABLE carrying RetryInfo, before
its deadline; the emulator must see almost no throttles; and the gateway must still pass
about the limit's worth of calls (goodput), not shed everything.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.server import Gateway
from tests.integration import overload_support
from tests.integration.overload_support import (
    DEMO,
    GatewayStarter,
    Outcome,
    call,
    open_loop,
    recommendations,
    upstream_calls,
    upstream_throttles,
)
from tests.support import eventually

start_gateway = overload_support.start_gateway

LIMIT = 50.0
SECONDS = 3.0
DEADLINE = 2.0
#: Shed answers must be RESOURCE_EXHAUSTED (limiter, or AWS's throttle after retries) or
#: UNAVAILABLE, each with RetryInfo.
SHED = {"RESOURCE_EXHAUSTED", "UNAVAILABLE"}


def emulator_limit(rate: float = LIMIT, burst: float = LIMIT) -> dict[str, Any]:
    return {"tps": [{"arn": DEMO, "rate": rate, "burst": burst}]}


def check_every_call_answered(outcomes: list[Outcome]) -> None:
    for outcome in outcomes:
        if outcome.code == "OK":
            continue
        # The gateway's own answer (a caller left to time out gets DEADLINE_EXCEEDED), with
        # RetryInfo; the timing allows for event-loop lag on a loaded machine (the client,
        # the gateway and the emulator share this process).
        assert outcome.code in SHED, outcome
        assert outcome.retry_delay is not None, outcome
        assert outcome.seconds < DEADLINE + 0.5, outcome


async def settle(emulator: Any) -> None:
    """Nothing is left running upstream once every caller has its answer."""
    stats = emulator.stats()
    assert stats["in_flight"] == 0
    assert not stats["abandoned"].get("GetRecommendations", 0)


async def test_three_times_the_limit_keeps_the_quota_and_answers_everyone(
    start_gateway: GatewayStarter, emulator: Any
) -> None:
    emulator.set_faults(emulator_limit())
    _, stubs = await start_gateway(
        limits={
            "resources": {DEMO: {"rate": LIMIT, "burst": 5}},
            # Generous room for the upstream call on a loaded 2-core machine.
            "min_latency_reserve_seconds": 0.25,
        }
    )
    before = upstream_calls(emulator, DEMO)

    async def send(i: int) -> Outcome:
        return await call(stubs.runtime.GetRecommendations, recommendations(i), DEADLINE)

    outcomes = await open_loop(send, 3 * LIMIT, SECONDS)

    check_every_call_answered(outcomes)
    calls = upstream_calls(emulator, DEMO) - before
    throttled = upstream_throttles(emulator, DEMO)
    assert throttled <= 0.01 * calls, (throttled, calls)
    ok = sum(o.code == "OK" for o in outcomes)
    # The queue keeps the bucket busy: about LIMIT per second for the offered window plus
    # the queued calls served in the deadline after it.
    assert ok >= 0.9 * LIMIT * SECONDS, (ok, calls)
    shed = [o for o in outcomes if o.code != "OK"]
    assert shed, "3x overload must shed something"
    for outcome in shed:
        assert outcome.reason == "RATE_LIMITED", outcome
        assert outcome.quota_subjects == (f"GetRecommendations {DEMO}",), outcome
        assert 0 < outcome.retry_delay <= DEADLINE + 1, outcome  # type: ignore[operator]
    await settle(emulator)


async def test_an_unconfigured_limit_is_discovered_from_throttles(
    start_gateway: GatewayStarter, emulator: Any
) -> None:
    """No rate configured for the campaign: AWS's default ceiling (500/s) is ten times the
    real limit, and the adaptive rate must find it with under 5% of calls throttled."""
    emulator.set_faults(emulator_limit())
    _, stubs = await start_gateway(limits={"min_latency_reserve_seconds": 0.25})

    async def send(i: int) -> Outcome:
        return await call(stubs.runtime.GetRecommendations, recommendations(i), DEADLINE)

    outcomes = await open_loop(send, 3 * LIMIT, 4.0)

    check_every_call_answered(outcomes)
    calls = upstream_calls(emulator, DEMO)
    throttled = upstream_throttles(emulator, DEMO)
    assert throttled < 0.05 * calls, (throttled, calls)
    ok = sum(o.code == "OK" for o in outcomes)
    assert ok >= 0.7 * LIMIT * 4.0, ok  # the sawtooth costs some goodput, not most of it
    await settle(emulator)


async def test_a_call_that_cannot_be_served_in_time_is_rejected_at_once(
    start_gateway: GatewayStarter, emulator: Any
) -> None:
    """With a long queue, a short-deadline call is told so at once, with a useful delay."""
    emulator.set_faults(emulator_limit(rate=5, burst=5))
    gateway, stubs = await start_gateway(
        # A long queue that stays long: never "standing" here, so it keeps its 2 s of waits.
        limits={"resources": {DEMO: {"rate": 5, "burst": 1}}, "standing_queue_seconds": 60}
    )
    # Fill the queue: 10 calls with time to wait (about 2 s of tokens at 5/s).
    queued = [
        asyncio.create_task(call(stubs.runtime.GetRecommendations, recommendations(i), 5.0))
        for i in range(10)
    ]
    await eventually(lambda: waiting(gateway) >= 9, within=10.0)

    outcome = await call(stubs.runtime.GetRecommendations, recommendations(99), 0.5)

    assert outcome.code == "RESOURCE_EXHAUSTED"
    assert outcome.reason == "RATE_LIMITED"
    assert outcome.cause == "deadline"
    assert outcome.seconds < 0.25  # not after waiting out its deadline
    assert outcome.retry_delay is not None
    assert 1.0 < outcome.retry_delay < 4.0
    results = await asyncio.gather(*queued)
    assert all(r.code == "OK" for r in results), results


async def test_interactive_calls_go_before_batch_calls(
    start_gateway: GatewayStarter, emulator: Any
) -> None:
    gateway, stubs = await start_gateway(
        limits={"resources": {DEMO: {"rate": 20, "burst": 1}}, "standing_queue_seconds": 60}
    )
    finished: list[str] = []

    async def send(i: int, lane: str) -> None:
        outcome = await call(
            stubs.runtime.GetRecommendations,
            recommendations(i),
            10.0,
            metadata=(("mlgw-priority", lane),),
        )
        assert outcome.code == "OK", outcome
        finished.append(lane)

    # The batch calls queue first (the first one takes the only token)...
    batch = [asyncio.create_task(send(i, "batch")) for i in range(8)]
    await eventually(lambda: waiting(gateway) >= 7, within=10.0)
    # ...then interactive calls arrive, and overtake them.
    interactive = [asyncio.create_task(send(100 + i, "interactive")) for i in range(6)]
    await asyncio.gather(*batch, *interactive)

    last_interactive = max(i for i, lane in enumerate(finished) if lane == "interactive")
    batch_before = finished[: last_interactive + 1].count("batch")
    # Only batch calls already granted (or granted while the interactive ones were still
    # arriving) may finish before the last interactive one.
    assert batch_before <= 3, finished


async def test_rejections_are_counted_in_metrics(
    start_gateway: GatewayStarter, emulator: Any
) -> None:
    from gateway import metrics

    _, stubs = await start_gateway(limits={"resources": {DEMO: {"rate": 1, "burst": 1}}})
    first = await call(stubs.runtime.GetRecommendations, recommendations(1), 5.0)
    second = await call(stubs.runtime.GetRecommendations, recommendations(2), 0.3)
    assert first.code == "OK"
    assert second.code == "RESOURCE_EXHAUSTED"
    text = metrics.exposition().decode()
    assert 'mlgw_admission_rejections_total{operation="GetRecommendations",reason="deadline"}' in (
        text
    )
    assert f'mlgw_rate_limit_ceiling{{bucket="GetRecommendations {DEMO}"}} 1.0' in text
    assert 'mlgw_circuit_breaker_state{service="personalize-runtime"} 0.0' in text


def waiting(gateway: Gateway) -> int:
    """Calls waiting for a token of the demo campaign's GetRecommendations bucket."""
    assert gateway.overload is not None
    bucket = gateway.overload.admission.buckets().get(f"GetRecommendations {DEMO}")
    return bucket.waiting if bucket is not None else 0


@pytest.fixture(autouse=True)
def _quiet_grpc_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("ERROR", logger="gateway.rpc")
