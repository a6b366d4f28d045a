"""Batch RPCs end to end: per-entry results in order, through the same pipeline as unary calls."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2, status_pb2
from mlgw.batch.v1 import batch_pb2, batch_pb2_grpc
from mlgw.personalize_runtime.v1 import personalize_runtime_pb2 as rt

from tests.integration import overload_support
from tests.integration.cache_support import RANKING, patch_faults, upstream_calls
from tests.integration.overload_support import DEMO, GatewayStarter, call, recommendations
from tests.integration.test_overload import waiting
from tests.support import ROOT, details, error_info, eventually

start_gateway = overload_support.start_gateway
README = ROOT / "README.md"
#: Tests whose batches end at their deadline answer it with a margin that a 2-core machine
#: shared with other work keeps (the default 5 ms is about the edge, tests/integration/
#: test_deadlines.py; here the batch's answer must beat the client's deadline).
BUSY_MACHINE_MARGIN = {"deadline_margin_seconds": 0.1}
MISSING = "arn:aws:personalize:us-east-1:000000000000:campaign/does-not-exist"


def batch_stub(stubs: Any) -> batch_pb2_grpc.BatchServiceStub:
    return batch_pb2_grpc.BatchServiceStub(stubs.channel)


def entry_details(status: status_pb2.Status, kind: type[Any]) -> list[Any]:
    found = []
    for box in status.details:
        message = kind()
        if box.Unpack(message):
            found.append(message)
    return found


def recs(user: str, **fields: Any) -> rt.GetRecommendationsRequest:
    return rt.GetRecommendationsRequest(campaign_arn=DEMO, user_id=user, **fields)


async def test_mixed_entries_answer_in_order_each_with_its_own_status(
    start_gateway: GatewayStarter, emulator: Any
) -> None:
    _, stubs = await start_gateway()
    requests = [
        recs("u1"),
        rt.GetRecommendationsRequest(user_id="u2"),  # no campaign nor recommender: invalid
        rt.GetRecommendationsRequest(campaign_arn=MISSING, user_id="u3"),  # unknown campaign
        recs("u4", num_results=3),
        recs("u5", num_results=501),  # over the documented maximum
    ]
    reply = await batch_stub(stubs).BatchGetRecommendations(
        batch_pb2.BatchGetRecommendationsRequest(requests=requests), timeout=10
    )
    assert len(reply.results) == len(requests)
    kinds = [r.WhichOneof("result") for r in reply.results]
    assert kinds == ["response", "error", "error", "response", "error"]
    assert len(reply.results[0].response.item_list) == 25
    assert len(reply.results[3].response.item_list) == 3
    codes = [r.error.code for r in reply.results if r.HasField("error")]
    assert codes == [code_pb2.INVALID_ARGUMENT, code_pb2.NOT_FOUND, code_pb2.INVALID_ARGUMENT]
    for result in reply.results:
        if result.HasField("error"):
            infos = entry_details(result.error, error_details_pb2.ErrorInfo)
            assert len(infos) == 1  # AIP-193: exactly one ErrorInfo, as a unary call gets
    bad = entry_details(reply.results[4].error, error_details_pb2.BadRequest)
    assert [v.field for v in bad[0].field_violations] == ["num_results"]
    # The same bad request, unary, gets the same status.
    with pytest.raises(grpc.aio.AioRpcError) as unary:
        await stubs.runtime.GetRecommendations(requests[4], timeout=5)
    assert unary.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (
        error_info(unary.value).reason
        == entry_details(reply.results[4].error, error_details_pb2.ErrorInfo)[0].reason
    )
    assert reply.results[0].metadata["mlgw-cache"] == "miss"


async def test_a_batch_over_the_limit_is_refused_whole(
    start_gateway: GatewayStarter, emulator: Any
) -> None:
    _, stubs = await start_gateway(batch={"max_entries": 5})
    request = batch_pb2.BatchGetRecommendationsRequest(requests=[recs(f"u{i}") for i in range(6)])
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await batch_stub(stubs).BatchGetRecommendations(request, timeout=5)
    error = refused.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "at most 5 entries" in (error.details() or "")
    info = error_info(error)
    assert info.reason == "BATCH_TOO_LARGE"
    assert info.metadata["maxEntries"] == "5"
    bad = details(error, error_details_pb2.BadRequest)
    assert bad[0].field_violations[0].field == "requests"
    assert await upstream_calls(emulator) == 0


async def test_a_thousand_entries_for_fifty_users_make_at_most_fifty_upstream_calls(
    start_gateway: GatewayStarter, emulator: Any, emulator_client: Any
) -> None:
    _, stubs = await start_gateway()
    users = [f"user-{i % 50}" for i in range(1000)]
    requests = [recs(user) for user in users]
    reply = await batch_stub(stubs).BatchGetRecommendations(
        batch_pb2.BatchGetRecommendationsRequest(requests=requests), timeout=30
    )
    assert len(reply.results) == 1000
    assert all(r.HasField("response") for r in reply.results)
    assert await upstream_calls(emulator) <= 50
    # Every entry is its user's answer: the same items as a direct call, in order.
    runtime = await emulator_client("personalize-runtime")
    for user in ("user-0", "user-17", "user-49"):
        direct = await runtime.get_recommendations(campaignArn=DEMO, userId=user)
        want = [item["itemId"] for item in direct["itemList"]]
        for result, entry_user in zip(reply.results, users, strict=True):
            if entry_user == user:
                assert [i.item_id for i in result.response.item_list] == want


async def test_the_batch_deadline_bounds_every_entry_and_hits_cost_no_upstream_call(
    start_gateway: GatewayStarter, emulator: Any
) -> None:
    from gateway import metrics

    _, stubs = await start_gateway(upstream=BUSY_MACHINE_MARGIN)
    stub = batch_stub(stubs)
    warm = batch_pb2.BatchGetRecommendationsRequest(requests=[recs("u1"), recs("u2")])
    await stub.BatchGetRecommendations(warm, timeout=10)
    again = await stub.BatchGetRecommendations(warm, timeout=10)
    assert [r.metadata["mlgw-cache"] for r in again.results] == ["hit", "hit"]
    assert await upstream_calls(emulator) == 2  # the hits made none
    await patch_faults(emulator, {"latency": {"GetRecommendations": {"fixed_ms": 3000}}})
    mixed = batch_pb2.BatchGetRecommendationsRequest(requests=[recs("u1"), recs("slow")])
    reply = await stub.BatchGetRecommendations(mixed, timeout=1.0)  # the RPC answers in time
    assert reply.results[0].HasField("response")
    late = reply.results[1].error
    assert late.code == code_pb2.DEADLINE_EXCEEDED
    (info,) = entry_details(late, error_details_pb2.ErrorInfo)
    assert info.reason == "UPSTREAM_TIMEOUT"
    text = metrics.exposition().decode()
    assert 'mlgw_batch_entries_count{method="BatchGetRecommendations"}' in text
    assert (
        'mlgw_fanout_entries_total{code="DEADLINE_EXCEEDED",operation="GetRecommendations",'
        'shape="batch"}' in text
    )


async def test_entries_merge_exactly_like_concurrent_unary_calls(
    start_gateway: GatewayStarter, emulator: Any, emulator_client: Any
) -> None:
    _, stubs = await start_gateway(merge={"window_ms": 200})
    lists = [[f"i{n}" for n in range(1, 60)], ["i7", "i250", "never-seen"], ["i42", "i3"]]
    requests = [
        rt.GetPersonalizedRankingRequest(campaign_arn=RANKING, user_id="u7", input_list=items)
        for items in lists
    ]
    reply = await batch_stub(stubs).BatchGetPersonalizedRanking(
        batch_pb2.BatchGetPersonalizedRankingRequest(requests=requests), timeout=10
    )
    assert await upstream_calls(emulator, "GetPersonalizedRanking") == 1
    assert [r.metadata["mlgw-merged"] for r in reply.results] == ["3"] * 3
    runtime = await emulator_client("personalize-runtime")
    for items, result in zip(lists, reply.results, strict=True):
        direct = await runtime.get_personalized_ranking(
            campaignArn=RANKING, userId="u7", inputList=items
        )
        want = [(i["itemId"], i.get("score", 0.0)) for i in direct["personalizedRanking"]]
        got = [(i.item_id, i.score) for i in result.response.personalized_ranking]
        assert [name for name, _ in got] == [name for name, _ in want]
        assert all(
            math.isclose(a, b, rel_tol=1e-9) for (_, a), (_, b) in zip(got, want, strict=True)
        )


async def test_under_three_times_overload_every_entry_is_answered(
    start_gateway: GatewayStarter, emulator: Any
) -> None:
    # 20 tokens/s for a 3 s batch deadline: about 60 entries fit, 180 are offered.
    _, stubs = await start_gateway(
        limits={"resources": {DEMO: {"rate": 20, "burst": 5}}}, upstream=BUSY_MACHINE_MARGIN
    )
    requests = [recommendations(i) for i in range(180)]
    reply = await batch_stub(stubs).BatchGetRecommendations(
        batch_pb2.BatchGetRecommendationsRequest(requests=requests), timeout=3
    )
    assert len(reply.results) == 180  # none lost
    ok = [r for r in reply.results if r.HasField("response")]
    shed = [r.error for r in reply.results if r.HasField("error")]
    assert ok
    assert shed
    for status in shed:
        assert status.code == code_pb2.RESOURCE_EXHAUSTED, status
        assert entry_details(status, error_details_pb2.RetryInfo), status
        assert len(entry_details(status, error_details_pb2.ErrorInfo)) == 1
    assert await upstream_calls(emulator) == len(ok)


async def test_a_big_batch_does_not_delay_interactive_calls_when_tokens_are_scarce(
    start_gateway: GatewayStarter, emulator: Any
) -> None:
    gateway, stubs = await start_gateway(
        limits={"resources": {DEMO: {"rate": 20, "burst": 1}}, "standing_queue_seconds": 60},
        upstream=BUSY_MACHINE_MARGIN,
    )
    batch = asyncio.ensure_future(
        batch_stub(stubs).BatchGetRecommendations(
            batch_pb2.BatchGetRecommendationsRequest(
                requests=[recommendations(i) for i in range(1000)]
            ),
            timeout=8,
        )
    )
    # Once the batch's entries queue for tokens (64 at once: over 3 s of tokens)...
    await eventually(lambda: waiting(gateway) >= 32, within=5.0)
    # ...interactive calls with a 1 s deadline still get theirs: they go first.
    for i in range(5):
        outcome = await call(stubs.runtime.GetRecommendations, recommendations(5000 + i), 1.0)
        assert outcome.code == "OK", outcome
    assert not batch.done()
    reply = await batch
    assert len(reply.results) == 1000
    assert all(
        r.HasField("response") or r.error.code == code_pb2.RESOURCE_EXHAUSTED for r in reply.results
    )


async def test_two_concurrent_batches_share_scarce_tokens_fairly(
    start_gateway: GatewayStarter, emulator: Any
) -> None:
    # 20 tokens/s for 4 s: about 80 of the 400 entries can be served.
    gateway, stubs = await start_gateway(
        limits={"resources": {DEMO: {"rate": 20, "burst": 1}}, "standing_queue_seconds": 60},
        upstream=BUSY_MACHINE_MARGIN,
    )

    def batch(first: int) -> Any:
        requests = [recommendations(first + i) for i in range(200)]
        return batch_stub(stubs).BatchGetRecommendations(
            batch_pb2.BatchGetRecommendationsRequest(requests=requests), timeout=4
        )

    early = asyncio.ensure_future(batch(0))
    # The first batch queues its 64 entries before the second one arrives...
    await eventually(lambda: waiting(gateway) >= 60, within=5.0)
    late = asyncio.ensure_future(batch(1000))
    replies = await asyncio.gather(early, late)
    ok = [sum(r.HasField("response") for r in reply.results) for reply in replies]
    # ...yet they take turns at the tokens: neither gets much more than half.
    assert min(ok) >= 0.35 * sum(ok), ok
    assert all(len(reply.results) == 200 for reply in replies)
    assert await upstream_calls(emulator) == sum(ok)


@pytest.fixture(autouse=True)
def _quiet_grpc_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("ERROR", logger="gateway.rpc")


async def test_the_readme_example_runs_against_a_gateway(
    start_gateway: GatewayStarter, emulator: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway, _ = await start_gateway()
    section = README.read_text().split("## Batch and streaming RPCs")[1].split("\n## ")[0]
    code = section.split("```python\n")[1].split("```")[0]
    code = code.replace("127.0.0.1:50051", f"127.0.0.1:{gateway.port}")
    code = code.replace("asyncio.run(main())", "")
    namespace: dict[str, Any] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    await namespace["main"]()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("u1 ['")  # u1's recommended items
    assert lines[3] == "['2', '2']"  # the two rankings merged into one upstream call
    assert lines[4].startswith("['")  # the actions
    assert sorted(line.split()[:2] for line in lines[5:]) == [
        ["0", "get_recommendations"],
        ["1", "get_recommendations"],
        ["2", "get_recommendations"],
    ]
