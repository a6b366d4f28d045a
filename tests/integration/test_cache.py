"""The cache, end to end: real gateway, real emulator, upstream calls counted by the emulator."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from mlgw.personalize.v1 import personalize_pb2
from mlgw.personalize_runtime.v1 import personalize_runtime_pb2 as rt

from gateway import metrics
from tests.integration.cache_support import (
    MISSING,
    POPULAR,
    PREFIX,
    admin,
    answer,
    config,
    eventually,
    patch_faults,
    recs,
    serving,
    upstream_calls,
)

SAMPLE = metrics.REGISTRY.get_sample_value


def lookups(result: str, tier: str, op: str = "GetRecommendations") -> float:
    labels = {"operation": op, "result": result, "tier": tier}
    return SAMPLE("mlgw_cache_lookups_total", labels) or 0.0


async def test_a_repeated_request_is_answered_from_the_cache(emulator: Any) -> None:
    hits_before = lookups("hit", "local")
    saved_before = SAMPLE(
        "mlgw_upstream_calls_saved_total", {"operation": "GetRecommendations", "by": "cache"}
    )
    async with serving(config(emulator.endpoint_url)) as stubs:
        first, first_meta = await answer(stubs.runtime.GetRecommendations(recs()))
        second, second_meta = await answer(stubs.runtime.GetRecommendations(recs()))
        other, other_meta = await answer(stubs.runtime.GetRecommendations(recs("u2")))
    assert await upstream_calls(emulator) == 2  # u1 once, u2 once
    assert first_meta["mlgw-cache"] == "miss"
    assert second_meta["mlgw-cache"] == "hit"
    assert second_meta["mlgw-cache-tier"] == "local"
    assert 0.0 <= float(second_meta["mlgw-cache-age"]) < 5.0
    assert other_meta["mlgw-cache"] == "miss"
    # recommendationId is returned as cached: the same id for both answers.
    assert second == first
    assert second.recommendation_id == first.recommendation_id
    assert len(first.item_list) == 25
    assert other.item_list != first.item_list
    assert lookups("hit", "local") == hits_before + 1
    saved = SAMPLE(
        "mlgw_upstream_calls_saved_total", {"operation": "GetRecommendations", "by": "cache"}
    )
    assert saved is not None
    assert saved >= (saved_before or 0.0) + 1
    assert (SAMPLE("mlgw_cache_bytes") or 0.0) > 0


async def test_default_and_explicit_num_results_share_an_entry(emulator: Any) -> None:
    async with serving(config(emulator.endpoint_url)) as stubs:
        await stubs.runtime.GetRecommendations(recs())
        _, meta = await answer(stubs.runtime.GetRecommendations(recs(num_results=25)))
        _, other = await answer(stubs.runtime.GetRecommendations(recs(num_results=24)))
    assert meta["mlgw-cache"] == "hit"
    assert other["mlgw-cache"] == "miss"
    assert await upstream_calls(emulator) == 2


async def test_cache_control_request_metadata(emulator: Any) -> None:
    async with serving(config(emulator.endpoint_url)) as stubs:
        get = stubs.runtime.GetRecommendations
        _, meta = await answer(get(recs(), metadata=(("cache-control", "no-store"),)))
        assert meta == {"mlgw-cache": "bypass"}
        _, meta = await answer(get(recs()))
        assert meta["mlgw-cache"] == "miss"  # no-store stored nothing
        assert await upstream_calls(emulator) == 2
        _, meta = await answer(get(recs(), metadata=(("cache-control", "no-cache"),)))
        assert meta["mlgw-cache"] == "miss"
        assert await upstream_calls(emulator) == 3  # revalidated upstream...
        _, meta = await answer(get(recs()))
        assert meta["mlgw-cache"] == "hit"  # ...and stored
        _, meta = await answer(get(recs(), metadata=(("cache-control", "max-age=0"),)))
        assert meta["mlgw-cache"] == "miss"
        _, meta = await answer(get(recs(), metadata=(("cache-control", "max-age=60"),)))
        assert meta["mlgw-cache"] == "hit"
    assert await upstream_calls(emulator) == 4


async def test_answers_without_a_user_live_longer(emulator: Any) -> None:
    cfg = config(
        emulator.endpoint_url,
        cache={
            "user_ttl_seconds": 0.05,
            "shared_ttl_seconds": 60,
            "stale_while_revalidate_seconds": 0,
        },
    )
    popular = recs(campaign_arn=POPULAR)
    popular.ClearField("user_id")
    async with serving(cfg) as stubs:
        get = stubs.runtime.GetRecommendations
        await get(popular)
        await get(recs())

        async def user_entry_expired() -> bool:
            _, meta = await answer(get(recs()))
            return meta["mlgw-cache"] == "miss"

        await eventually(user_entry_expired)
        _, meta = await answer(get(popular))
    assert meta["mlgw-cache"] == "hit"
    assert (await admin_calls_by_arn(emulator))[POPULAR] == 1


async def admin_calls_by_arn(emulator: Any) -> dict[str, int]:
    stats = await admin(emulator, "GET", "stats")
    return {arn: sum(ops.values()) for arn, ops in stats["calls_by_arn"].items()}


async def test_stale_while_revalidate_refreshes_once_in_the_background(emulator: Any) -> None:
    cfg = config(
        emulator.endpoint_url,
        cache={
            "user_ttl_seconds": 0.1,
            "stale_while_revalidate_seconds": 60,
            "stale_if_error_seconds": 0,
        },
    )
    async with serving(cfg) as stubs:
        get = stubs.runtime.GetRecommendations
        first = await get(recs())
        # Hold the background refresh in flight while stale answers are served.
        await patch_faults(emulator, {"latency": {"GetRecommendations": {"fixed_ms": 300}}})

        async def stale() -> bool:
            _, meta = await answer(get(recs()))
            return meta["mlgw-cache"] == "stale"

        await eventually(stale)
        burst = [get(recs()) for _ in range(20)]
        metas = [await answer(call) for call in burst]
        assert all(meta["mlgw-cache-stale"] == "while-revalidate" for _, meta in metas)
        assert all(response == first for response, _ in metas)
        assert await upstream_calls(emulator) == 2  # one refresh for all the stale answers

        async def refreshed() -> bool:
            _, meta = await answer(get(recs()))
            return meta["mlgw-cache"] == "hit"

        await eventually(refreshed)
    assert await upstream_calls(emulator) == 2


async def test_stale_if_error_hides_throttling(emulator: Any) -> None:
    cfg = config(
        emulator.endpoint_url,
        cache={
            "user_ttl_seconds": 0.1,
            "stale_while_revalidate_seconds": 0,
            "stale_if_error_seconds": 60,
        },
    )
    async with serving(cfg) as stubs:
        get = stubs.runtime.GetRecommendations
        first = await get(recs())
        await patch_faults(
            emulator, {"errors": {"GetRecommendations": {"ThrottlingException": 1.0}}}
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await get(recs("someone-else"))  # nothing cached to fall back on
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED

        async def stale() -> bool:
            response, meta = await answer(get(recs()))
            assert response == first
            return meta["mlgw-cache"] == "stale"

        await eventually(stale)
        _, meta = await answer(get(recs()))
    assert meta["mlgw-cache-stale"] == "if-error"
    stats = await admin(emulator, "GET", "stats")
    assert stats["injected"]["GetRecommendations"]["ThrottlingException"] >= 1


async def test_resource_not_found_is_remembered_briefly(emulator: Any) -> None:
    async with serving(config(emulator.endpoint_url)) as stubs:
        errors = []
        for _ in range(3):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stubs.runtime.GetRecommendations(recs(campaign_arn=MISSING))
            errors.append(caught.value)
    assert [e.code() for e in errors] == [grpc.StatusCode.NOT_FOUND] * 3
    assert await upstream_calls(emulator) == 1
    status = rpc_status.from_call(errors[-1])
    assert status is not None
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    assert info.reason == "RESOURCE_NOT_FOUND"
    assert info.metadata["cache"] == "hit"


async def test_job_descriptions_are_cached(emulator: Any, emulator_client: Any) -> None:
    personalize = await emulator_client("personalize")
    created = await personalize.create_batch_inference_job(
        jobName="cached-job",
        solutionVersionArn=f"{PREFIX}:solution/demo/1",
        jobInput={"s3DataSource": {"path": "s3://bucket/in.json"}},
        jobOutput={"s3DataDestination": {"path": "s3://bucket/out/"}},
        roleArn="arn:aws:iam::000000000000:role/personalize",
    )
    request = personalize_pb2.DescribeBatchInferenceJobRequest(
        batch_inference_job_arn=created["batchInferenceJobArn"]
    )
    async with serving(config(emulator.endpoint_url)) as stubs:
        first, _ = await answer(stubs.personalize.DescribeBatchInferenceJob(request))
        second, meta = await answer(stubs.personalize.DescribeBatchInferenceJob(request))
    assert meta["mlgw-cache"] == "hit"
    assert second == first
    assert first.batch_inference_job.job_name == "cached-job"
    assert await upstream_calls(emulator, "DescribeBatchInferenceJob") == 1


async def test_operations_that_change_state_are_never_cached(emulator: Any) -> None:
    request = personalize_pb2.ListBatchInferenceJobsRequest()
    async with serving(config(emulator.endpoint_url)) as stubs:
        for _ in range(2):
            _, meta = await answer(stubs.personalize.ListBatchInferenceJobs(request))
            assert "mlgw-cache" not in meta
    assert await upstream_calls(emulator, "ListBatchInferenceJobs") == 2


async def test_invalid_requests_are_rejected_though_the_cache_comes_first(emulator: Any) -> None:
    invalid = rt.GetRecommendationsRequest(user_id="u1")  # neither campaign nor recommender
    async with serving(config(emulator.endpoint_url)) as stubs:
        for _ in range(2):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stubs.runtime.GetRecommendations(invalid)
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        _, meta = await answer(stubs.runtime.GetRecommendations(recs()))
        _, meta = await answer(stubs.runtime.GetRecommendations(recs()))
    assert meta["mlgw-cache"] == "hit"  # a valid request's hit skipped the validator
    assert await upstream_calls(emulator) == 1


async def test_a_job_not_found_is_not_remembered_across_its_creation(stubs: Any) -> None:
    """Negative caching is for unknown campaigns/filters; a job may appear the next moment."""
    from tests.integration.requests import VALID

    describe = personalize_pb2.DescribeBatchInferenceJobRequest(
        batch_inference_job_arn=f"{PREFIX}:batch-inference-job/job-1"
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stubs.personalize.DescribeBatchInferenceJob(describe, timeout=5)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    created = await stubs.personalize.CreateBatchInferenceJob(
        VALID["CreateBatchInferenceJob"], timeout=5
    )
    assert created.batch_inference_job_arn == describe.batch_inference_job_arn
    found = await stubs.personalize.DescribeBatchInferenceJob(describe, timeout=5)
    assert found.batch_inference_job.job_name == "job-1"
