"""The fan-out mechanics (gateway/fanout.py) and the per-call context (pipeline/call.py)."""

from __future__ import annotations

import asyncio

import pytest
from mlgw.personalize_runtime.v1 import personalize_runtime_pb2 as rt

from gateway import metrics
from gateway.fanout import Flow, fan_out
from gateway.operations import OPERATIONS, Priority
from gateway.pipeline.call import Call, Context, Shape
from tests.support import eventually

RECS = next(op for op in OPERATIONS if op.name == "GetRecommendations")
RANK = next(op for op in OPERATIONS if op.name == "GetPersonalizedRanking")


async def spin(times: int = 50) -> None:
    """Let every ready task run (no time passes)."""
    for _ in range(times):
        await asyncio.sleep(0)


async def test_fan_out_keeps_order_and_its_concurrency_limit() -> None:
    running = peak = 0

    async def run(item: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        for _ in range(item % 5):  # entries finish out of order
            await asyncio.sleep(0)
        running -= 1
        return item * 10

    assert await fan_out(list(range(100)), run, 7) == [i * 10 for i in range(100)]
    assert peak == 7


async def test_cancelling_a_fan_out_cancels_its_entries() -> None:
    started, cancelled = 0, 0

    async def run(_: int) -> int:
        nonlocal started, cancelled
        started += 1
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled += 1
            raise
        return 0

    task = asyncio.ensure_future(fan_out(list(range(10)), run, 4))
    await eventually(lambda: started == 4)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cancelled == 4


class Stream:
    """A fake stream: `read` yields `count` items (`per_read` at a time) then EOF; `write`
    waits for `gate`."""

    def __init__(self, count: int, per_read: int = 1) -> None:
        self.count = count
        self.per_read = per_read
        self.writes = 0
        self.reads = 0
        self.written: list[int] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def read(self) -> list[int] | None:
        if self.reads == self.count:
            return None
        first = self.reads
        self.reads = min(self.count, first + self.per_read)
        return list(range(first, self.reads))

    async def write(self, results: list[int]) -> None:
        await self.gate.wait()
        self.writes += 1
        self.written.extend(results)


async def echo(item: int) -> int:
    for _ in range(item % 3):
        await asyncio.sleep(0)
    return item


async def test_a_flow_answers_every_item_once_then_ends_on_half_close() -> None:
    stream = Stream(200)
    await Flow(stream.read, echo, stream.write, 8, metrics.STREAM).run()
    assert sorted(stream.written) == list(range(200))
    assert stream.written != list(range(200))  # as they complete, not in order


async def test_a_flow_packs_the_results_that_complete_during_a_write() -> None:
    stream = Stream(300, per_read=50)
    await Flow(stream.read, echo, stream.write, 64, metrics.STREAM).run()
    assert sorted(stream.written) == list(range(300))
    assert stream.writes < 300  # several results per message when they come together


async def test_a_read_of_many_entries_waits_for_a_slot_for_each() -> None:
    stream = Stream(100, per_read=10)
    stream.gate.clear()
    flow = asyncio.ensure_future(Flow(stream.read, echo, stream.write, 4, metrics.STREAM).run())
    await eventually(lambda: stream.reads == 10)
    await spin()
    assert stream.reads == 10  # the first message's other entries wait for slots
    stream.gate.set()
    await flow
    assert sorted(stream.written) == list(range(100))


async def test_a_flow_stops_reading_while_its_writes_are_blocked() -> None:
    stream = Stream(1000)
    stream.gate.clear()  # the client stopped reading
    flow = asyncio.ensure_future(Flow(stream.read, echo, stream.write, 4, metrics.STREAM).run())
    await eventually(lambda: stream.reads == 4)
    await spin()
    assert stream.reads == 4  # no slot comes back, so nothing more is read
    stream.gate.set()
    await flow
    assert sorted(stream.written) == list(range(1000))


async def test_a_flow_with_nothing_to_read_ends_at_once() -> None:
    stream = Stream(0)
    await Flow(stream.read, echo, stream.write, 4, metrics.STREAM).run()
    assert stream.written == []


async def test_cancelling_a_flow_cancels_the_entries_in_flight() -> None:
    stream = Stream(10)
    cancelled = 0

    async def forever(_: int) -> int:
        nonlocal cancelled
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled += 1
            raise
        return 0

    flow = asyncio.ensure_future(Flow(stream.read, forever, stream.write, 3, metrics.STREAM).run())
    await eventually(lambda: stream.reads == 3)
    await spin()
    flow.cancel()
    with pytest.raises(asyncio.CancelledError):
        await flow
    assert cancelled == 3


async def test_a_failed_read_ends_the_flow_with_its_error() -> None:
    async def read() -> list[int] | None:
        raise ValueError("undecodable")

    with pytest.raises(ValueError, match="undecodable"):
        await Flow(read, echo, Stream(0).write, 3, metrics.STREAM).run()


async def test_a_failed_read_waits_for_the_write_in_flight_and_starts_no_other() -> None:
    # Found by the live fuzz: the read's error cancelled the writer mid-write, the edge's
    # error status then collided with that write in grpc's core, and the caller got a bare
    # INTERNAL instead of MALFORMED_REQUEST.
    stream = Stream(2)
    stream.gate.clear()  # the first result's write is in flight
    malformed = asyncio.Event()

    async def read() -> list[int] | None:
        items = await stream.read()
        if items is None:
            await malformed.wait()
            raise ValueError("undecodable")
        return items

    flow = asyncio.ensure_future(Flow(read, echo, stream.write, 8, metrics.STREAM).run())
    await eventually(lambda: stream.reads == 2)
    malformed.set()
    await spin()
    assert not flow.done()  # the write has not returned: the error waits for it
    stream.gate.set()
    with pytest.raises(ValueError, match="undecodable"):
        await flow
    assert stream.writes == 1  # the results done meanwhile were not written after the error


# ---- the per-RPC context and derived calls -------------------------------------------------


def test_the_context_is_parsed_once_from_the_metadata() -> None:
    metadata = {"mlgw-priority": " Batch ", "x-request-id": "r-1", "cache-control": "max-age=5"}
    context = Context.parse(metadata, 12.0)
    assert context.priority is Priority.BATCH
    assert context.request_id == "r-1"
    assert context.cache is not None
    assert context.cache.max_age == 5.0
    assert context.shape is Shape.UNARY
    plain = Context.parse({"mlgw-priority": "urgent"}, 1.0)
    assert plain.priority is None  # unknown lane: the operation's own
    assert plain.cache is None  # no directives: the cache's fast path


def test_a_batch_context_keeps_batch_priority_whatever_the_metadata_says() -> None:
    context = Context.parse({"mlgw-priority": "interactive"}, 1.0, Shape.BATCH, Priority.BATCH)
    assert context.priority is Priority.BATCH


async def test_a_derived_call_inherits_the_context_but_not_the_answer_metadata() -> None:
    context = Context.parse({"cache-control": "no-cache"}, 100.0, Shape.STREAM, Priority.BATCH)
    request = rt.GetRecommendationsRequest(campaign_arn="arn:c", user_id="u")
    parent = Call.at_edge(RECS, request, context, deadline=50.0)
    parent.reply_metadata.append(("mlgw-cache", "miss"))
    params = parent.params
    child = parent.derive()
    assert child.context is context
    assert (child.op, child.request, child.deadline) == (RECS, request, 50.0)
    assert child.reply_metadata == []
    assert child.params is params  # the same request is not converted twice
    other = rt.GetPersonalizedRankingRequest(campaign_arn="arn:r", user_id="u")
    listing = parent.derive(op=RANK, request=other, deadline=60.0)
    assert (listing.op, listing.deadline, listing.context) == (RANK, 60.0, context)
    assert listing.params["campaignArn"] == "arn:r"
    given = parent.derive(params={"maxResults": 100})
    assert given.params == {"maxResults": 100}
