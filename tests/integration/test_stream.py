"""StreamRecommendations end to end: ids, half-close, cancellation, a consumer that stalls."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2
from mlgw.batch.v1 import batch_pb2, batch_pb2_grpc
from mlgw.personalize_runtime.v1 import personalize_runtime_pb2 as rt

from gateway.metrics import cache_metrics
from gateway.supervisor import free_port
from tests.integration import overload_support
from tests.integration.cache_support import RANKING, admin, patch_faults
from tests.integration.overload_support import DEMO, GatewayStarter
from tests.support import error_info, eventually, gateway_process, process_config

start_gateway = overload_support.start_gateway
ACTIONS = "arn:aws:personalize:us-east-1:000000000000:campaign/actions"

Request = batch_pb2.StreamRecommendationsRequest
Entry = batch_pb2.StreamRecommendationsEntry


def message(*entries: Entry) -> Request:
    return Request(entries=entries)


async def results_of(call: Any) -> list[batch_pb2.StreamRecommendationsResult]:
    return [result async for response in call for result in response.results]


def mixed(i: int) -> Entry:
    """Request `i`: the three operations in turn, every seventh one invalid."""
    if i % 7 == 6:
        return Entry(id=f"r{i}", get_recommendations=rt.GetRecommendationsRequest(user_id="x"))
    kind = i % 3
    user = f"user-{i % 40}"
    if kind == 0:
        return Entry(
            id=f"r{i}",
            get_recommendations=rt.GetRecommendationsRequest(campaign_arn=DEMO, user_id=user),
        )
    if kind == 1:
        ranking = rt.GetPersonalizedRankingRequest(
            campaign_arn=RANKING, user_id=user, input_list=["i1", "i2", f"i{i}"]
        )
        return Entry(id=f"r{i}", get_personalized_ranking=ranking)
    actions = rt.GetActionRecommendationsRequest(campaign_arn=ACTIONS, user_id=user)
    return Entry(id=f"r{i}", get_action_recommendations=actions)


def recs(i: int) -> Entry:
    request = rt.GetRecommendationsRequest(campaign_arn=DEMO, user_id=f"user-{i}")
    return Entry(id=f"r{i}", get_recommendations=request)


def stub(stubs: Any) -> batch_pb2_grpc.BatchServiceStub:
    return batch_pb2_grpc.BatchServiceStub(stubs.channel)


async def test_every_id_gets_exactly_one_result_and_half_close_ends_ok(
    start_gateway: GatewayStarter, emulator: Any
) -> None:
    _, stubs = await start_gateway(batch={"stream_max_in_flight": 8})
    call = stub(stubs).StreamRecommendations(timeout=30)
    for first in range(0, 300, 7):  # calls packed 7 to a message (the last one shorter)
        await call.write(message(*(mixed(i) for i in range(first, min(300, first + 7)))))
    await call.done_writing()  # half-close: the gateway finishes what is in flight
    results = await results_of(call)
    assert await call.code() == grpc.StatusCode.OK
    assert Counter(r.id for r in results) == Counter(f"r{i}" for i in range(300))
    by_id = {r.id: r for r in results}
    for i in range(300):
        result = by_id[f"r{i}"]
        expected = mixed(i).WhichOneof("request")
        if i % 7 == 6:
            assert result.WhichOneof("result") == "error"
            assert result.error.code == code_pb2.INVALID_ARGUMENT
        else:
            assert result.WhichOneof("result") == expected, result


async def test_a_request_without_a_call_gets_an_invalid_argument_result(
    start_gateway: GatewayStarter, emulator: Any
) -> None:
    _, stubs = await start_gateway()
    call = stub(stubs).StreamRecommendations(timeout=10)
    await call.write(message(Entry(id="empty")))
    await call.done_writing()
    (result,) = await results_of(call)
    assert result.id == "empty"
    assert result.error.code == code_pb2.INVALID_ARGUMENT
    info = error_details_pb2.ErrorInfo()
    assert [box.Unpack(info) for box in result.error.details].count(True) == 1
    assert info.reason == "INVALID_REQUEST"


async def test_an_undecodable_request_ends_the_stream_with_invalid_argument(
    start_gateway: GatewayStarter, emulator: Any
) -> None:
    _, stubs = await start_gateway()
    raw = stubs.channel.stream_stream("/mlgw.batch.v1.BatchService/StreamRecommendations")
    call = raw(timeout=10)
    await call.write(b"\xff\xff\xff")  # not a StreamRecommendationsRequest
    with pytest.raises(grpc.aio.AioRpcError) as ended:
        async for _ in call:
            pass
    assert ended.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(ended.value).reason == "MALFORMED_REQUEST"


async def test_a_message_over_the_entry_limit_ends_the_stream(
    start_gateway: GatewayStarter, emulator: Any
) -> None:
    _, stubs = await start_gateway(batch={"max_entries": 3})
    call = stub(stubs).StreamRecommendations(timeout=10)
    await call.write(message(*(recs(i) for i in range(4))))
    with pytest.raises(grpc.aio.AioRpcError) as ended:
        await results_of(call)
    assert ended.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(ended.value).reason == "BATCH_TOO_LARGE"


async def test_half_close_finishes_entries_still_upstream(
    start_gateway: GatewayStarter, emulator: Any
) -> None:
    await patch_faults(emulator, {"latency": {"GetRecommendations": {"fixed_ms": 300}}})
    _, stubs = await start_gateway()
    call = stub(stubs).StreamRecommendations(timeout=10)
    for i in range(5):
        await call.write(message(recs(i)))  # one call per message
    await call.done_writing()
    results = await results_of(call)
    assert await call.code() == grpc.StatusCode.OK
    assert sorted(r.id for r in results) == [f"r{i}" for i in range(5)]
    assert all(r.HasField("get_recommendations") for r in results)


async def test_cancelling_a_stream_abandons_its_unshared_upstream_calls(
    start_gateway: GatewayStarter, emulator: Any
) -> None:
    await patch_faults(emulator, {"latency": {"GetRecommendations": {"fixed_ms": 3000}}})
    _, stubs = await start_gateway()
    call = stub(stubs).StreamRecommendations(timeout=30)
    for i in range(4):
        await call.write(message(recs(i)))

    async def upstream_in_flight() -> bool:
        return int((await admin(emulator, "GET", "stats"))["in_flight"]) >= 4

    await eventually(upstream_in_flight)
    call.cancel()

    async def abandoned() -> bool:
        stats = await admin(emulator, "GET", "stats")
        return int(stats["abandoned"].get("GetRecommendations", 0)) == 4

    await eventually(abandoned)
    assert await call.code() == grpc.StatusCode.CANCELLED


async def test_cancelling_a_stream_keeps_upstream_work_another_caller_shares(
    start_gateway: GatewayStarter, emulator: Any
) -> None:
    await patch_faults(emulator, {"latency": {"GetRecommendations": {"fixed_ms": 1000}}})
    _, stubs = await start_gateway()
    call = stub(stubs).StreamRecommendations(timeout=30)
    await call.write(message(recs(0)))

    async def upstream_in_flight() -> bool:
        return int((await admin(emulator, "GET", "stats"))["in_flight"]) >= 1

    await eventually(upstream_in_flight)
    counted = cache_metrics("GetRecommendations")  # this process's counters: a baseline
    joined = counted.coalesced
    unary = stubs.runtime.GetRecommendations(recs(0).get_recommendations, timeout=10)
    await eventually(lambda: counted.coalesced > joined)  # the unary call shares it
    call.cancel()
    answer = await unary  # the shared upstream call went on for the unary caller
    assert len(answer.item_list) == 25
    stats = await admin(emulator, "GET", "stats")
    assert stats["calls"]["GetRecommendations"] == 1
    assert stats["abandoned"].get("GetRecommendations", 0) == 0


# ---- a consumer that stops reading: a real gateway process, its RSS and its metrics ---------

LIMIT = 16
OFFERED = 10_000
#: Sampled at each request the gateway reads from a stream: its count is the reads.
READS = "mlgw_stream_entries_in_flight_per_stream"


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def _metric(port: int, name: str) -> float:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/metrics") as response,
    ):
        text = await response.text()
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_a_stalled_consumer_stops_the_gateways_reads_and_bounds_its_memory(
    emulator: Any, tmp_path: Path
) -> None:
    metrics_port = free_port()
    extra = f"[batch]\nstream_max_in_flight = {LIMIT}\n"
    config = process_config(emulator.endpoint_url, extra)
    async with (
        gateway_process(config, tmp_path, "--metrics-port", str(metrics_port)) as gateway,
        grpc.aio.insecure_channel(gateway.target) as channel,
    ):
        pid = gateway.process.pid
        # Warm the cache so entries answer at once: the only brake left is the consumer.
        warm = batch_pb2.BatchGetRecommendationsRequest(
            requests=[
                rt.GetRecommendationsRequest(campaign_arn=DEMO, user_id=f"u{i}", num_results=100)
                for i in range(100)
            ]
        )
        await batch_pb2_grpc.BatchServiceStub(channel).BatchGetRecommendations(warm, timeout=30)
        before = _rss_bytes(pid)
        call = batch_pb2_grpc.BatchServiceStub(channel).StreamRecommendations(timeout=120)

        async def offer() -> None:
            for i in range(OFFERED):
                request = rt.GetRecommendationsRequest(
                    campaign_arn=DEMO, user_id=f"u{i % 100}", num_results=100
                )
                await call.write(message(Entry(id=str(i), get_recommendations=request)))
            await call.done_writing()

        writer = asyncio.ensure_future(offer())
        in_flight = "mlgw_stream_entries_in_flight"

        async def stalled() -> bool:
            return await _metric(metrics_port, in_flight) >= LIMIT

        # Nobody reads: once the results fill the transport's buffers, the gateway holds
        # LIMIT entries and reads no more requests (those the client could still write wait
        # in the HTTP/2 receive window, which bounds them).
        await eventually(stalled, within=60.0)
        reads = await _metric(metrics_port, f"{READS}_count")
        growth = _rss_bytes(pid) - before
        assert reads < OFFERED
        assert await _metric(metrics_port, in_flight) == LIMIT
        assert await _metric(metrics_port, f"{READS}_count") == reads
        assert growth < 30 * 1024 * 1024, growth
        # Reading again drains everything: no id lost, none twice.
        ids = Counter(result.id for result in await results_of(call))
        await writer
        assert await call.code() == grpc.StatusCode.OK
        assert ids == Counter(str(i) for i in range(OFFERED))
        assert await _metric(metrics_port, "mlgw_stream_backpressure_wait_seconds_count") >= 1
        assert await _metric(metrics_port, in_flight) == 0


@pytest.fixture(autouse=True)
def _quiet_grpc_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("ERROR", logger="gateway.rpc")
