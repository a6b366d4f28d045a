"""The coalescing stage alone, over a fake upstream handler."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.protobuf.message import Message
from mlgw.personalize_runtime.v1 import personalize_runtime_pb2 as rt

from gateway.cache_config import CoalesceConfig
from gateway.errors import DeadlineExceeded, GatewayError
from gateway.operations import OPERATIONS
from gateway.pipeline.budget import Budget
from gateway.pipeline.call import Call
from gateway.pipeline.coalesce import Coalesce

OPS = {op.name: op for op in OPERATIONS}
RECS = OPS["GetRecommendations"]
ARN = "arn:aws:personalize:us-east-1:000000000000:campaign/demo"


class GatedUpstream:
    def __init__(self) -> None:
        self.calls = 0
        self.cancelled = 0
        self.gate = asyncio.Event()
        self.entered = asyncio.Event()
        self.errors: list[GatewayError] = []

    async def __call__(self, call: Call) -> Message:
        self.calls += 1
        self.entered.set()
        try:
            await self.gate.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        if self.errors:
            raise self.errors.pop(0)
        return rt.GetRecommendationsResponse(recommendation_id=f"answer-{self.calls}")


def request(user: str = "u1") -> rt.GetRecommendationsRequest:
    return rt.GetRecommendationsRequest(campaign_arn=ARN, user_id=user)


def make_call(req: Message, timeout: float = 10.0) -> Call:
    return Call(RECS, req, asyncio.get_running_loop().time() + timeout)


async def until(condition: object, *, turns: int = 200) -> None:
    """Let the loop run until `condition()` holds (bounded)."""
    for _ in range(turns):
        if condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not reached")


async def test_identical_requests_share_one_call() -> None:
    upstream = GatedUpstream()
    handler = Coalesce(CoalesceConfig()).wrap(RECS, upstream)
    calls = [make_call(request()) for _ in range(100)]
    other = make_call(request("u2"))
    tasks = [asyncio.ensure_future(handler(c)) for c in [*calls, other]]
    await until(lambda: upstream.calls == 2)
    upstream.gate.set()
    answers = await asyncio.gather(*tasks)
    assert upstream.calls == 2  # one per distinct request
    assert len({id(a) for a in answers[:100]}) == 1
    marked = [dict(c.reply_metadata).get("mlgw-coalesced") for c in calls]
    assert marked.count("true") == 99
    assert marked.count(None) == 1


async def test_a_caller_that_leaves_does_not_cancel_the_others() -> None:
    upstream = GatedUpstream()
    handler = Coalesce(CoalesceConfig()).wrap(RECS, upstream)
    first = asyncio.ensure_future(handler(make_call(request())))
    await upstream.entered.wait()
    second = asyncio.ensure_future(handler(make_call(request())))
    await asyncio.sleep(0)  # one loop turn: the second caller joins the flight
    first.cancel()  # the caller that started the shared call goes away
    with pytest.raises(asyncio.CancelledError):
        await first
    upstream.gate.set()
    assert (await second).recommendation_id == "answer-1"
    assert upstream.calls == 1
    assert upstream.cancelled == 0


async def test_the_shared_call_is_abandoned_when_every_caller_left() -> None:
    upstream = GatedUpstream()
    handler = Coalesce(CoalesceConfig()).wrap(RECS, upstream)
    tasks = [asyncio.ensure_future(handler(make_call(request()))) for _ in range(3)]
    await upstream.entered.wait()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await until(lambda: upstream.cancelled == 1)
    # The next request starts afresh.
    upstream.gate.set()
    assert (await handler(make_call(request()))).recommendation_id == "answer-2"


async def test_an_upstream_error_reaches_every_caller() -> None:
    upstream = GatedUpstream()
    upstream.errors.append(
        GatewayError("down", reason="UPSTREAM_UNAVAILABLE", code=grpc.StatusCode.UNAVAILABLE)
    )
    handler = Coalesce(CoalesceConfig()).wrap(RECS, upstream)
    tasks = [asyncio.ensure_future(handler(make_call(request()))) for _ in range(5)]
    await upstream.entered.wait()
    upstream.gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert upstream.calls == 1
    assert all(isinstance(r, GatewayError) and r.reason == "UPSTREAM_UNAVAILABLE" for r in results)


async def test_each_caller_waits_at_most_its_own_deadline() -> None:
    upstream = GatedUpstream()
    handler = Coalesce(CoalesceConfig()).wrap(RECS, upstream)
    patient = asyncio.ensure_future(handler(make_call(request(), timeout=10)))
    await upstream.entered.wait()
    with pytest.raises(DeadlineExceeded):
        await handler(make_call(request(), timeout=0.02))
    assert not patient.done()
    assert upstream.cancelled == 0
    upstream.gate.set()
    assert (await patient).recommendation_id == "answer-1"


async def test_a_later_deadline_outlives_the_shared_calls_own() -> None:
    upstream = GatedUpstream()
    upstream.errors.append(DeadlineExceeded("leader ran out", reason="UPSTREAM_TIMEOUT"))
    handler = Coalesce(CoalesceConfig()).wrap(RECS, upstream)
    leader = asyncio.ensure_future(handler(make_call(request(), timeout=5)))
    await upstream.entered.wait()
    follower = asyncio.ensure_future(handler(make_call(request(), timeout=50)))
    await asyncio.sleep(0)  # one loop turn: the follower joins the flight
    upstream.gate.set()
    with pytest.raises(DeadlineExceeded):
        await leader
    assert (await follower).recommendation_id == "answer-2"  # it tried again in its own time
    assert upstream.calls == 2


def test_only_idempotent_operations_coalesce() -> None:
    async def inner(call: Call) -> Message:
        raise AssertionError

    stage = Coalesce(CoalesceConfig())
    assert stage.wrap(OPS["CreateBatchInferenceJob"], inner) is inner
    assert stage.wrap(OPS["ListBatchInferenceJobs"], inner) is not inner
    assert Coalesce(CoalesceConfig(enabled=False)).wrap(RECS, inner) is inner


async def test_a_miss_without_time_for_a_round_trip_is_refused_before_any_shared_call() -> None:
    """The budget stage in front of coalescing: with less than the minimum left the verdict
    is "deadline passed before sending", and nothing upstream (or shared) is started."""
    upstream = GatedUpstream()
    handler = Budget(0.002).wrap(RECS, Coalesce(CoalesceConfig()).wrap(RECS, upstream))
    with pytest.raises(DeadlineExceeded) as caught:
        await handler(make_call(request(), timeout=0.001))
    assert caught.value.reason == "DEADLINE_EXCEEDED"
    assert upstream.calls == 0
    upstream.gate.set()
    answer = await handler(make_call(request(), timeout=1.0))  # enough time: passes through
    assert upstream.calls == 1
    assert answer.recommendation_id == "answer-1"
