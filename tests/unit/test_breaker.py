"""The circuit breaker's state machine on a fake clock, and the stage around it."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from mlgw.personalize_runtime.v1 import personalize_runtime_pb2 as rt

from gateway.config import Config
from gateway.errors import DeadlineExceeded, GatewayError, UpstreamError
from gateway.limits_config import BreakerConfig
from gateway.operations import OPERATIONS
from gateway.pipeline.admission import Latencies, RateLimited
from gateway.pipeline.breaker import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    Breaker,
    CircuitBreakers,
    CircuitOpen,
    classify,
)
from gateway.pipeline.call import Call
from gateway.pipeline.retry import Retry

S = grpc.StatusCode
GR = next(op for op in OPERATIONS if op.name == "GetRecommendations")


def breaker(**cfg: Any) -> Breaker:
    return Breaker("personalize-runtime", BreakerConfig(**cfg))


def test_consecutive_failures_open_it() -> None:
    b = breaker(consecutive_failures=3, min_calls=100)
    for t in (0.0, 0.1):
        b.failed(t)
    b.succeeded(0.2)  # a success in between resets the run
    for t in (0.3, 0.4):
        b.failed(t)
    assert b.state == CLOSED
    b.failed(0.5)
    assert b.state == OPEN
    assert not b.allow(0.6)
    assert b.retry_after(0.6) == pytest.approx(4.9)


def test_a_failure_ratio_over_enough_calls_opens_it_and_windows_forget() -> None:
    b = breaker(min_calls=10, failure_ratio=0.5, consecutive_failures=100, window_seconds=10)
    for i in range(9):
        (b.failed if i % 2 else b.succeeded)(i * 0.1)
    assert b.state == CLOSED  # 4 of 9: below the ratio
    b.failed(1.0)
    assert b.state == OPEN  # 5 of 10
    fresh = breaker(min_calls=10, failure_ratio=0.5, consecutive_failures=100, window_seconds=1)
    for i in range(8):
        fresh.failed(i * 0.3)  # never 10 calls within one window
    assert fresh.state == CLOSED


def test_half_open_lets_one_probe_through_and_it_decides() -> None:
    b = breaker(consecutive_failures=1, open_seconds=1.0, max_open_seconds=3.0)
    b.failed(0.0)
    assert not b.allow(0.5)
    assert b.allow(1.0)  # the probe
    assert b.state == HALF_OPEN
    assert not b.allow(1.0)  # everyone else still fails fast
    b.failed(1.1)  # the probe failed: open again, twice as long
    assert b.state == OPEN
    assert not b.allow(2.9)
    assert b.allow(3.1)
    b.released()  # that probe ended without a verdict: another may go
    assert b.allow(3.2)
    b.succeeded(3.3)
    assert b.state == CLOSED
    assert b.allow(3.3)
    b.failed(4.0)
    assert b.retry_after(4.0) == pytest.approx(1.0)  # a success reset the open time


def test_open_time_is_capped() -> None:
    b = breaker(consecutive_failures=1, open_seconds=1.0, max_open_seconds=2.0)
    b.failed(0.0)
    t = 0.0
    for _ in range(5):
        t += 10
        assert b.allow(t)
        b.failed(t)
    assert b.retry_after(t) == pytest.approx(2.0)


def test_what_counts_as_a_failure() -> None:
    def upstream(code: grpc.StatusCode, throttled: bool = False) -> UpstreamError:
        return UpstreamError("x", code=code, reason="R", service="s", throttled=throttled)

    assert classify(upstream(S.UNAVAILABLE), 0.1, 1.0) is True
    assert classify(upstream(S.RESOURCE_EXHAUSTED, throttled=True), 0.1, 1.0) is False
    assert classify(upstream(S.NOT_FOUND), 0.1, 1.0) is False
    assert classify(DeadlineExceeded("t", reason="UPSTREAM_TIMEOUT"), 2.0, 1.0) is True
    assert classify(DeadlineExceeded("t", reason="UPSTREAM_TIMEOUT"), 0.2, 1.0) is None
    assert classify(RateLimited("b", "deadline", 1.0, 1.0), 0.0, 1.0) is None
    assert classify(GatewayError("x", reason="INTERNAL"), 0.0, 1.0) is None


async def test_the_stage_fails_fast_while_open_without_calling_the_upstream() -> None:
    clock = [0.0]
    stage = CircuitBreakers(
        BreakerConfig(consecutive_failures=2, open_seconds=5.0), clock=lambda: clock[0]
    )
    calls = 0

    async def failing(call: Call) -> Any:
        nonlocal calls
        calls += 1
        raise UpstreamError("down", code=S.UNAVAILABLE, reason="UPSTREAM_INTERNAL", service="s")

    handler = stage.wrap(GR, failing)
    call = Call(GR, rt.GetRecommendationsRequest(), asyncio.get_running_loop().time() + 5)
    for _ in range(2):
        with pytest.raises(UpstreamError):
            await handler(call)
    with pytest.raises(CircuitOpen) as caught:
        await handler(call)
    assert calls == 2
    error = caught.value
    assert error.code == S.UNAVAILABLE
    assert error.reason == "CIRCUIT_OPEN"
    assert error.retry_after == pytest.approx(5.0)
    assert error.metadata == {"service": "personalize-runtime"}
    assert stage.breaker("personalize-runtime").state == OPEN

    async def healthy(call: Call) -> Any:
        return rt.GetRecommendationsResponse()

    clock[0] = 6.0
    assert isinstance(await stage.wrap(GR, healthy)(call), rt.GetRecommendationsResponse)
    assert stage.breaker("personalize-runtime").state == CLOSED


async def test_a_cancelled_probe_releases_the_half_open_slot() -> None:
    clock = [0.0]
    stage = CircuitBreakers(BreakerConfig(consecutive_failures=1), clock=lambda: clock[0])
    b = stage.breaker("personalize-runtime")
    b.failed(0.0)
    clock[0] = 10.0

    async def hangs(call: Call) -> Any:
        await asyncio.sleep(60)

    call = Call(GR, rt.GetRecommendationsRequest(), asyncio.get_running_loop().time() + 5)
    probe = asyncio.create_task(stage.wrap(GR, hangs)(call))
    await asyncio.sleep(0)
    assert b.state == HALF_OPEN
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe
    assert b.allow(10.0)  # the next call may probe


class SlowUpstream:
    """Answers every attempt after `seconds` (None: never); at the call's deadline it fails
    with UPSTREAM_TIMEOUT, as the real terminal handler does."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.attempts = 0

    async def __call__(self, call: Call) -> Any:
        self.attempts += 1
        try:
            async with asyncio.timeout(call.remaining()):
                if self.seconds is None:
                    await asyncio.Event().wait()
                await asyncio.sleep(self.seconds or 0.0)  # the upstream's latency, simulated
        except TimeoutError:
            raise DeadlineExceeded("slow", reason="UPSTREAM_TIMEOUT") from None
        return rt.GetRecommendationsResponse()


def retried(upstream: SlowUpstream, **breaker: Any) -> tuple[Any, Breaker]:
    """The retry stage over the breaker stage over `upstream`, with a hair-trigger breaker
    (one counted failure opens it) that counts any timeout of 0.1 s or more."""
    cfg = Config.from_dict({"retry": {"attempt_timeout_seconds": 0.2}}).retry
    retry = Retry(cfg, Latencies(0.01, 0.01), sleep=lambda _: asyncio.sleep(0))
    breakers = CircuitBreakers(
        BreakerConfig(consecutive_failures=1, slow_timeout_seconds=0.1, **breaker)
    )
    handler = retry.wrap(GR, breakers.wrap(GR, upstream))
    return handler, breakers.breaker("personalize-runtime")


async def test_an_attempt_the_gateway_cut_short_is_no_failure_when_the_call_succeeds() -> None:
    """Issue 10 item 1: the first attempt is abandoned at its 0.2 s timeout (the upstream
    takes 0.3 s); the retry answers. The breaker never learns of the abandoned attempt."""
    upstream = SlowUpstream(0.3)
    handler, breaker_of_service = retried(upstream)
    call = Call(GR, rt.GetRecommendationsRequest(), asyncio.get_running_loop().time() + 2)
    assert isinstance(await handler(call), rt.GetRecommendationsResponse)
    assert upstream.attempts == 2
    assert breaker_of_service.state == CLOSED


async def test_an_upstream_that_never_answers_in_time_is_still_a_failure() -> None:
    upstream = SlowUpstream(None)
    handler, breaker_of_service = retried(upstream)
    call = Call(GR, rt.GetRecommendationsRequest(), asyncio.get_running_loop().time() + 0.8)
    with pytest.raises(DeadlineExceeded):
        await handler(call)
    assert breaker_of_service.state == OPEN  # the last attempt had the rest of the deadline


def test_disabled_breakers_cost_nothing() -> None:
    async def inner(call: Call) -> Any:
        return None

    assert CircuitBreakers(BreakerConfig(enabled=False)).wrap(GR, inner) is inner
