"""The admission stage's pieces: GCRA arithmetic, the waiting queue, the stage's wiring."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from mlgw.personalize_runtime.v1 import personalize_runtime_pb2 as rt

from gateway.config import Config, ConfigError
from gateway.errors import UpstreamError
from gateway.limits_config import Limit, LimitsConfig
from gateway.operations import OPERATIONS, Operation
from gateway.pipeline.admission import (
    BATCH,
    INTERACTIVE,
    Admission,
    Bucket,
    Gcra,
    Latencies,
    Latency,
    RateLimited,
)
from gateway.pipeline.call import Call

OPS = {op.name: op for op in OPERATIONS}
CAMPAIGN = "arn:aws:personalize:us-east-1:000000000000:campaign/demo"
OTHER = "arn:aws:personalize:us-east-1:000000000000:campaign/ranking"


# ---- GCRA --------------------------------------------------------------------------------


def test_gcra_starts_full_and_refills_at_its_rate() -> None:
    bucket = Gcra(rate=10, burst=3)
    assert [bucket.take1(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take1(0.0) == pytest.approx(0.1)  # the next token comes in 1/rate
    assert bucket.take1(0.05) == pytest.approx(0.05)
    assert bucket.take1(0.1) == 0.0
    assert bucket.tokens(0.1) == pytest.approx(0.0)
    assert bucket.tokens(10.0) == 3  # never more than the burst


def test_gcra_takes_many_at_once_and_says_when_the_next_comes() -> None:
    bucket = Gcra(rate=100, burst=5)
    assert bucket.take(0.0, 8) == (5, pytest.approx(0.01))
    assert bucket.take(0.025, 8) == (2, pytest.approx(0.005))
    assert bucket.next_token(0.025) == pytest.approx(0.005)


def test_gcra_refund_and_drain() -> None:
    bucket = Gcra(rate=10, burst=2)
    bucket.take1(0.0)
    bucket.refund()
    assert bucket.tokens(0.0) == pytest.approx(2)
    bucket.drain(0.0)
    assert bucket.tokens(0.0) == pytest.approx(0)
    assert bucket.take1(0.0) == pytest.approx(0.1)  # the next one is there in one interval
    assert bucket.take1(0.1) == 0.0


def test_gcra_rate_change_keeps_the_tokens_it_had() -> None:
    bucket = Gcra(rate=10, burst=10)
    for _ in range(6):
        bucket.take1(0.0)
    bucket.set_rate(100, 10, 0.0)
    assert bucket.tokens(0.0) == pytest.approx(4)
    bucket.set_rate(1, 2, 0.0)  # a smaller burst clips the saved tokens
    assert bucket.tokens(0.0) == pytest.approx(2)


# ---- latency reserve ---------------------------------------------------------------------


def test_latency_reserve_follows_measurements_with_a_floor() -> None:
    latency = Latency(initial=0.05, floor=0.01)
    assert latency.reserve() == pytest.approx(0.05 + 4 * 0.025)
    for _ in range(100):
        latency.observe(0.002)
    assert latency.reserve() == pytest.approx(0.01)  # the floor
    for _ in range(100):
        latency.observe(0.2)
    assert latency.reserve() == pytest.approx(0.2, rel=0.05)


# ---- the bucket: fast path, rejections, the queue ----------------------------------------


def bucket(rate: float, burst: float, **kw: Any) -> Bucket:
    settings: dict[str, Any] = {
        "adaptive": False,
        "divisor": 1,
        "max_queue": 100,
        "max_wait": 5.0,
        "remote": None,
        "now": 0.0,
    }
    settings.update(kw)
    return Bucket("GetRecommendations x", "k", Limit(rate, burst), **settings)


async def test_bucket_rejects_at_once_when_the_wait_would_not_fit() -> None:
    b = bucket(rate=10, burst=1)
    now = asyncio.get_running_loop().time()
    assert b.take_now(now)
    with pytest.raises(RateLimited) as caught:
        await b.acquire(INTERACTIVE, now + 0.05, now)  # a token only in 0.1 s
    error = caught.value
    assert error.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error.reason == "RATE_LIMITED"
    assert error.cause == "deadline"
    assert error.retry_after == pytest.approx(0.1)
    (quota,) = [d for d in error.details() if isinstance(d, error_details_pb2.QuotaFailure)]
    assert quota.violations[0].subject == "GetRecommendations x"


async def test_bucket_rejects_waits_beyond_max_wait_and_a_full_queue() -> None:
    b = bucket(rate=10, burst=1, max_wait=0.05, max_queue=1)
    now = asyncio.get_running_loop().time()
    assert b.take_now(now)
    with pytest.raises(RateLimited) as caught:
        await b.acquire(INTERACTIVE, now + 10, now)
    assert caught.value.cause == "max_wait"
    b = bucket(rate=100, burst=1, max_queue=1)
    assert b.take_now(now)
    first = asyncio.create_task(b.acquire(INTERACTIVE, now + 10, now))
    await asyncio.sleep(0)
    assert b.waiting == 1
    with pytest.raises(RateLimited) as caught:
        await b.acquire(BATCH, now + 10, now)
    assert caught.value.cause == "queue_full"
    await first


async def test_a_standing_queue_keeps_waits_short() -> None:
    """A burst may wait up to max_wait; once the queue has not drained for a while
    (sustained overload), only short waits are accepted and the excess is shed at once."""
    b = bucket(rate=10, burst=1, standing=(0.5, 0.15))
    loop = asyncio.get_running_loop()
    assert b.take_now(loop.time())
    first = asyncio.create_task(b.acquire(INTERACTIVE, loop.time() + 10, loop.time()))
    await asyncio.sleep(0)
    # A burst: the queue is new, a 0.2 s wait is fine.
    second = asyncio.create_task(b.acquire(INTERACTIVE, loop.time() + 10, loop.time()))
    await asyncio.sleep(0)
    assert b.waiting == 2
    # Pretend no call has found a token at once for a second: standing.
    b._last_free = loop.time() - 1.0
    with pytest.raises(RateLimited) as caught:
        await b.acquire(INTERACTIVE, loop.time() + 10, loop.time())
    assert caught.value.cause == "max_wait"
    await asyncio.gather(first, second)


async def test_waiting_calls_are_admitted_in_order_interactive_first() -> None:
    b = bucket(rate=200, burst=1)
    loop = asyncio.get_running_loop()
    now = loop.time()
    assert b.take_now(now)
    order: list[str] = []

    async def wait(name: str, lane: int) -> None:
        await b.acquire(lane, loop.time() + 5, loop.time())
        order.append(name)

    tasks = [asyncio.create_task(wait(f"b{i}", BATCH)) for i in range(3)]
    await asyncio.sleep(0)
    tasks += [asyncio.create_task(wait(f"i{i}", INTERACTIVE)) for i in range(3)]
    await asyncio.gather(*tasks)
    assert order == ["i0", "i1", "i2", "b0", "b1", "b2"]
    assert b.waiting == 0


async def test_an_interactive_call_displaces_a_batch_call_from_a_full_queue() -> None:
    b = bucket(rate=50, burst=1, max_queue=2)
    loop = asyncio.get_running_loop()
    assert b.take_now(loop.time())
    batch = [asyncio.create_task(b.acquire(BATCH, loop.time() + 5, loop.time())) for _ in range(2)]
    await asyncio.sleep(0)
    interactive = asyncio.create_task(b.acquire(INTERACTIVE, loop.time() + 5, loop.time()))
    results = await asyncio.gather(*batch, interactive, return_exceptions=True)
    assert results[0] is None
    assert isinstance(results[1], RateLimited)  # the newest batch call gave up its place
    assert results[1].cause == "displaced"
    assert results[2] is None


async def test_a_waiting_call_leaves_by_its_latest_start_and_gives_no_token_away() -> None:
    b = bucket(rate=10, burst=1)
    loop = asyncio.get_running_loop()
    now = loop.time()
    assert b.take_now(now)
    # Predicted to fit (0.1 s), but the rate then drops: it must leave by its latest start.
    task = asyncio.create_task(b.acquire(INTERACTIVE, now + 0.15, now))
    await asyncio.sleep(0)
    b._set_rate(1.0, now)
    with pytest.raises(RateLimited) as caught:
        await task
    assert caught.value.cause == "expired"
    assert loop.time() <= now + 0.15 + 0.05
    assert b.waiting == 0


async def test_a_cancelled_waiter_is_forgotten() -> None:
    b = bucket(rate=20, burst=1)
    loop = asyncio.get_running_loop()
    assert b.take_now(loop.time())
    task = asyncio.create_task(b.acquire(INTERACTIVE, loop.time() + 5, loop.time()))
    await asyncio.sleep(0)
    assert b.waiting == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert b.waiting == 0
    await b.acquire(INTERACTIVE, loop.time() + 5, loop.time())  # the token is still there


def test_a_process_keeps_its_share_when_buckets_are_not_shared() -> None:
    b = bucket(rate=100, burst=10, divisor=4)
    assert b.tokens(0.0) == pytest.approx(2.5)
    assert b._local.interval == pytest.approx(0.04)


def test_adaptive_decrease_lowers_the_rate_and_spends_saved_tokens() -> None:
    b = bucket(rate=100, burst=10, adaptive=True)
    assert b.take_now(0.0)
    assert b.throttled(b.epoch, 0.01)
    assert b.rate == pytest.approx(70)
    assert b.tokens(0.01) < 1
    assert not b.throttled(0, 0.02)  # admitted before the decrease: stale


# ---- the stage -------------------------------------------------------------------------


def stage(**limits: Any) -> Admission:
    cfg = Config.from_dict({"limits": limits}).limits
    return Admission(cfg, Latencies(cfg.initial_latency_seconds, 0.0))


def request(campaign: str = CAMPAIGN) -> rt.GetRecommendationsRequest:
    return rt.GetRecommendationsRequest(campaign_arn=campaign, user_id="u")


def make_call(op: Operation, message: Any, seconds: float = 5.0, **metadata: str) -> Call:
    return Call(op, message, asyncio.get_running_loop().time() + seconds, metadata)


def test_limits_come_from_the_arn_then_the_operation_then_aws() -> None:
    admission = stage(
        operations={"GetRecommendations": {"rate": 200}},
        resources={CAMPAIGN: {"rate": 50, "burst": 5}},
    )
    op = OPS["GetRecommendations"]
    assert admission.limit(op, CAMPAIGN) == Limit(50, 5)
    assert admission.limit(op, OTHER) == Limit(200, 20)
    assert admission.limit(OPS["GetPersonalizedRanking"], OTHER) == Limit(500, 50)
    assert stage(operations={"GetRecommendations": {"rate": 0}}).limit(op, OTHER) is None
    assert admission.group_names(op) == ["personalize-runtime"]
    assert admission.group_names(OPS["GetActionRecommendations"]) == []


def test_limits_config_is_checked() -> None:
    with pytest.raises(ConfigError, match="not an operation"):
        Config.from_dict({"limits": {"operations": {"GetRecomendations": {"rate": 1}}}})
    with pytest.raises(ConfigError, match="unknown setting"):
        Config.from_dict({"limits": {"resources": {CAMPAIGN: {"rate": 1, "brust": 2}}}})
    with pytest.raises(ConfigError, match=r"burst = 0.5: must be >= 1"):
        Config.from_dict({"limits": {"resources": {CAMPAIGN: {"rate": 5, "burst": 0.5}}}})
    with pytest.raises(ConfigError, match="replicas"):
        Config.from_dict({"limits": {"replicas": 0}})
    cfg = Config.from_dict(
        {"limits": {"groups": {"ranking": {"rate": 3, "operations": ["GetPersonalizedRanking"]}}}}
    )
    assert cfg.limits.groups["ranking"].operations == ("GetPersonalizedRanking",)
    assert LimitsConfig().operations == {}


async def test_stage_takes_one_token_per_attempt_from_every_bucket() -> None:
    admission = stage(
        resources={CAMPAIGN: {"rate": 1, "burst": 2}},
        groups={"personalize-runtime": {"rate": 1, "burst": 1}},
    )
    op = OPS["GetRecommendations"]
    calls = 0

    async def inner(call: Call) -> Any:
        nonlocal calls
        calls += 1
        return rt.GetRecommendationsResponse()

    handler = admission.wrap(op, inner)
    await handler(make_call(op, request()))
    # The campaign has a token left, the account-wide group does not: rejected at once,
    # and the campaign's token is given back.
    with pytest.raises(RateLimited) as caught:
        await handler(make_call(op, request(), seconds=0.2))
    assert caught.value.metadata["limit"] == "group personalize-runtime"
    buckets = admission.buckets()
    now = asyncio.get_running_loop().time()
    assert buckets[f"GetRecommendations {CAMPAIGN}"].tokens(now) == pytest.approx(1, abs=0.05)
    assert calls == 1


async def test_stage_feeds_upstream_throttles_to_the_adaptive_rate() -> None:
    admission = stage(resources={CAMPAIGN: {"rate": 100, "burst": 10}})
    op = OPS["GetRecommendations"]

    async def throttled(call: Call) -> Any:
        raise UpstreamError(
            "Rate exceeded",
            code=grpc.StatusCode.RESOURCE_EXHAUSTED,
            reason="UPSTREAM_THROTTLED",
            service="personalize-runtime",
            throttled=True,
            retryable=True,
        )

    handler = admission.wrap(op, throttled)
    with pytest.raises(UpstreamError):
        await handler(make_call(op, request()))
    assert admission.buckets()[f"GetRecommendations {CAMPAIGN}"].rate == pytest.approx(70)
    # A different campaign's bucket is untouched.
    with pytest.raises(UpstreamError):
        await handler(make_call(op, request(OTHER)))
    assert admission.buckets()[f"GetRecommendations {OTHER}"].rate == pytest.approx(350)


async def test_priority_metadata_chooses_the_lane() -> None:
    admission = stage(resources={CAMPAIGN: {"rate": 100, "burst": 1}})
    op = OPS["GetRecommendations"]
    order: list[str] = []

    async def inner(call: Call) -> Any:
        order.append(call.metadata.get("mlgw-priority", "default"))
        return rt.GetRecommendationsResponse()

    handler = admission.wrap(op, inner)
    await handler(make_call(op, request()))
    batch = [
        asyncio.create_task(handler(make_call(op, request(), **{"mlgw-priority": "batch"})))
        for _ in range(2)
    ]
    await asyncio.sleep(0)
    urgent = asyncio.create_task(
        handler(make_call(op, request(), **{"mlgw-priority": "INTERACTIVE"}))
    )
    await asyncio.gather(*batch, urgent)
    assert order == ["default", "INTERACTIVE", "batch", "batch"]


async def test_bucket_table_is_bounded() -> None:
    admission = stage(max_buckets=3)
    op = OPS["GetRecommendations"]

    async def inner(call: Call) -> Any:
        return rt.GetRecommendationsResponse()

    handler = admission.wrap(op, inner)
    for i in range(10):
        await handler(make_call(op, request(f"{CAMPAIGN}-{i}")))
    assert len([s for s in admission.buckets() if s.startswith("GetRecommendations")]) <= 3


async def test_the_bucket_in_use_survives_a_new_arn_least_recently_used_goes() -> None:
    """Issue 10 item 13: eviction is LRU, so the busy campaign keeps its learnt rate."""
    admission = stage(max_buckets=3)
    op = OPS["GetRecommendations"]

    async def inner(call: Call) -> Any:
        return rt.GetRecommendationsResponse()

    handler = admission.wrap(op, inner)
    busy, idle, other, new = (f"{CAMPAIGN}-{name}" for name in ("busy", "idle", "other", "new"))
    for campaign in (busy, idle, other, busy, other):
        await handler(make_call(op, request(campaign)))
    learnt = admission.buckets()[f"GetRecommendations {busy}"]
    learnt.throttled(learnt.epoch, asyncio.get_running_loop().time())  # a learnt rate
    await handler(make_call(op, request(new)))
    kept = admission.buckets()
    assert kept[f"GetRecommendations {busy}"] is learnt  # created first, used recently
    assert learnt.rate == pytest.approx(350)
    assert f"GetRecommendations {idle}" not in kept  # the least recently used
    assert {f"GetRecommendations {c}" for c in (other, new)} <= set(kept)


async def test_disabled_limits_cost_nothing() -> None:
    async def inner(call: Call) -> Any:
        return None

    assert stage(enabled=False).wrap(OPS["GetRecommendations"], inner) is inner


async def test_early_shed_rejects_before_the_merge_window_only_what_admission_would() -> None:
    admission = stage(resources={CAMPAIGN: {"rate": 1, "burst": 1}})
    op = OPS["GetRecommendations"]
    merged: list[Call] = []

    async def upstream(call: Call) -> Any:
        return rt.GetRecommendationsResponse()

    async def merge_window(call: Call) -> Any:  # stands in for the merge stage
        merged.append(call)
        return await admitted(call)

    admitted = admission.wrap(op, upstream)
    handler = admission.early.wrap(op, merge_window)
    await handler(make_call(op, request()))  # takes the only token
    with pytest.raises(RateLimited) as caught:
        await handler(make_call(op, request(), seconds=0.3))  # next token in 1 s
    assert caught.value.cause == "deadline"
    assert len(merged) == 1  # rejected before the window
    # Another campaign's bucket has tokens: passes through.
    await handler(make_call(op, request(OTHER)))
    assert len(merged) == 2


def test_early_shed_applies_only_to_mergeable_operations() -> None:
    async def inner(call: Call) -> Any:
        return None

    early = stage().early
    assert early.wrap(OPS["GetActionRecommendations"], inner) is inner
    assert early.wrap(OPS["GetPersonalizedRanking"], inner) is not inner
