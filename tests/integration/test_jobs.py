"""Batch jobs as long-running operations, against the real gateway and emulator."""

from __future__ import annotations

import asyncio
import collections

import grpc
import pytest
from google.longrunning import operations_pb2
from mlgw.jobs.v1 import jobs_pb2
from mlgw.machinelearning.v1 import machinelearning_pb2 as aml_pb2
from mlgw.personalize.v1 import personalize_pb2 as personalize

from gateway.emulator import Emulator
from gateway.upstream.mapping import to_aws
from tests.integration.jobs_support import (
    JobGatewayFactory,
    JobStubs,
    aml_job,
    bedrock_job,
    jobs_gateway,
    metadata,
    personalize_job,
    slow_emulator,
)
from tests.support import error_info, eventually

__all__ = ["jobs_gateway"]  # the fixture

S = jobs_pb2.JobState


async def test_eight_personalize_jobs_against_the_limit_of_five(
    emulator: Emulator, jobs_gateway: JobGatewayFactory
) -> None:
    _, stubs = await jobs_gateway()
    ops = [await stubs.submit(personalize_job(f"eight-{i}")) for i in range(8)]
    # Accepted at once, every one, whatever the backend's quota.
    assert [metadata(op).state for op in ops] == [S.JOB_STATE_QUEUED] * 8
    done = await asyncio.gather(*(stubs.wait_done(op.name) for op in ops))
    for op in done:
        result = personalize.DescribeBatchInferenceJobResponse()
        assert op.response.Unpack(result), op
        assert result.batch_inference_job.status == "ACTIVE"
        assert metadata(op).state == S.JOB_STATE_SUCCEEDED
    jobs = emulator.personalize_jobs.list({})["batchInferenceJobs"]
    names = collections.Counter(j["jobName"] for j in jobs)
    assert names == {f"eight-{i}": 1 for i in range(8)}
    # Slots were counted from the backend's listing: no create was refused for the quota,
    # and each job was created by exactly one successful call.
    stats = emulator.stats()
    assert stats["errors"].get("CreateBatchInferenceJob", {}) == {}
    assert stats["calls"]["CreateBatchInferenceJob"] == 8


async def test_request_id_replay_returns_the_same_operation_across_a_restart(
    emulator: Emulator, jobs_gateway: JobGatewayFactory
) -> None:
    gateway, stubs = await jobs_gateway()
    first = await stubs.submit(personalize_job("replayed"), request_id="7f1c-replay")
    again = await stubs.submit(personalize_job("replayed"), request_id="7f1c-replay")
    assert again.name == first.name
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stubs.submit(personalize_job("another"), request_id="7f1c-replay")
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert error_info(caught.value).reason == "REQUEST_ID_REUSED"
    await stubs.wait_done(first.name)
    await gateway.stop(0)
    _, restarted = await jobs_gateway()
    after = await restarted.submit(personalize_job("replayed"), request_id="7f1c-replay")
    assert after.name == first.name
    assert after.done
    assert emulator.stats()["calls"]["CreateBatchInferenceJob"] == 1


async def test_watchers_share_one_poller(jobs_gateway: JobGatewayFactory) -> None:
    """100 watchers of one job cost the upstream what one watcher of another job costs."""
    async with slow_emulator(step=0.2) as emulator:
        await _watchers_share_one_poller(emulator, jobs_gateway)


async def _watchers_share_one_poller(emulator: Emulator, jobs_gateway: JobGatewayFactory) -> None:
    _, stubs = await jobs_gateway(emulator)

    async def watch(name: str) -> list[int]:
        request = jobs_pb2.WatchOperationRequest(name=name)
        return [metadata(r.operation).state async for r in stubs.jobs.WatchOperation(request)]

    alone = await stubs.submit(bedrock_job("watched-alone"))
    crowded = await stubs.submit(bedrock_job("watched-crowded"))
    seen = await asyncio.gather(watch(alone.name), *(watch(crowded.name) for _ in range(100)))
    for states in seen:
        assert states[-1] == S.JOB_STATE_SUCCEEDED
        assert states == sorted(states)  # forward only (progress repeats a state)
    arns = [metadata(await stubs.get(op.name)).job_id for op in (alone, crowded)]
    by_arn = emulator.stats()["calls_by_arn"]
    one, hundred = (by_arn[arn]["GetModelInvocationJob"] for arn in arns)
    assert hundred <= one + 1, (one, hundred)


async def test_python_api_core_polls_an_operation_to_its_result(
    jobs_gateway: JobGatewayFactory,
) -> None:
    from google.api_core import operation, operations_v1
    from google.api_core.future import polling

    gateway, stubs = await jobs_gateway()
    op = await stubs.submit(aml_job("bp-api-core"))

    def poll_with_api_core() -> tuple[object, object]:
        channel = grpc.insecure_channel(f"127.0.0.1:{gateway.port}")
        try:
            client = operations_v1.OperationsClient(channel)
            future = operation.from_gapic(
                op,
                client,
                aml_pb2.GetBatchPredictionResponse,
                metadata_type=jobs_pb2.JobMetadata,
                # python-api-core's own polling policy, only faster (the emulator's jobs are).
                polling=polling.DEFAULT_POLLING.with_delay(initial=0.05, maximum=0.2),
            )
            return future.result(timeout=30), future.metadata
        finally:
            channel.close()

    result, meta = await asyncio.to_thread(poll_with_api_core)
    assert isinstance(result, aml_pb2.GetBatchPredictionResponse)
    assert result.status == aml_pb2.ENTITY_STATUS_COMPLETED
    assert isinstance(meta, jobs_pb2.JobMetadata)
    assert meta.state == S.JOB_STATE_SUCCEEDED
    assert meta.total_record_count > 0


async def test_cancel_a_queued_and_a_running_bedrock_job(
    jobs_gateway: JobGatewayFactory,
) -> None:
    async with slow_emulator() as emulator:
        await _cancel_queued_and_running(emulator, jobs_gateway)


async def _cancel_queued_and_running(emulator: Emulator, jobs_gateway: JobGatewayFactory) -> None:
    _, stubs = await jobs_gateway(emulator, max_active={"bedrock": 1})
    running = await stubs.submit(bedrock_job("cancel-running", "s3://bucket/slow.jsonl"))
    queued = await stubs.submit(bedrock_job("cancel-queued"))
    await eventually(
        lambda: _state(
            stubs, running.name, S.JOB_STATE_VALIDATING, S.JOB_STATE_SCHEDULED, S.JOB_STATE_RUNNING
        )
    )
    assert metadata(await stubs.get(queued.name)).queue_position == 1
    await stubs.operations.CancelOperation(operations_pb2.CancelOperationRequest(name=queued.name))
    await stubs.operations.CancelOperation(operations_pb2.CancelOperationRequest(name=running.name))
    for name in (queued.name, running.name):
        op = await stubs.wait_done(name)
        assert op.error.code == grpc.StatusCode.CANCELLED.value[0], op
        assert metadata(op).state == S.JOB_STATE_CANCELLED
    assert metadata(await stubs.get(running.name)).backend_status == "Stopped"
    assert metadata(await stubs.get(queued.name)).job_id == ""  # never created upstream
    assert emulator.stats()["calls"]["CreateModelInvocationJob"] == 1
    assert emulator.stats()["calls"]["StopModelInvocationJob"] == 1


async def test_a_created_personalize_job_cannot_be_cancelled(
    jobs_gateway: JobGatewayFactory,
) -> None:
    async with slow_emulator() as emulator:
        _, stubs = await jobs_gateway(emulator)
        op = await stubs.submit(personalize_job("uncancellable"))
        await _refused_cancel(stubs, op.name)


async def _refused_cancel(stubs: JobStubs, name: str) -> None:
    op = await stubs.get(name)
    await eventually(
        lambda: _state(
            stubs, op.name, S.JOB_STATE_VALIDATING, S.JOB_STATE_RUNNING, S.JOB_STATE_SUCCEEDED
        )
    )
    if (await stubs.get(op.name)).done:
        pytest.fail("the job finished before the cancel: lengthen the emulator's steps")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stubs.operations.CancelOperation(operations_pb2.CancelOperationRequest(name=op.name))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_info(caught.value).reason == "JOB_NOT_CANCELLABLE"
    assert "Amazon Personalize cannot stop" in (caught.value.details() or "")


async def _state(stubs: JobStubs, name: str, *states: int) -> bool:
    return metadata(await stubs.get(name)).state in states


async def test_a_bedrock_quota_error_keeps_the_job_queued(
    jobs_gateway: JobGatewayFactory,
) -> None:
    """No limit of ours for Bedrock: its ServiceQuotaExceededException alone queues a job."""
    async with slow_emulator(step=0.05, bedrock_max_active=1) as emulator:
        _, stubs = await jobs_gateway(emulator)
        ops = [await stubs.submit(bedrock_job(f"quota-{i}")) for i in range(2)]
        done = await asyncio.gather(*(stubs.wait_done(op.name) for op in ops))
    assert [metadata(op).state for op in done] == [S.JOB_STATE_SUCCEEDED] * 2
    stats = emulator.stats()
    refused = stats["errors"]["CreateModelInvocationJob"]
    assert set(refused) == {"ServiceQuotaExceededException"}
    assert (
        stats["calls"]["CreateModelInvocationJob"] - refused["ServiceQuotaExceededException"] == 2
    )


async def test_an_existing_personalize_job_of_the_same_name_is_adopted_or_refused(
    emulator: Emulator, jobs_gateway: JobGatewayFactory
) -> None:
    """Personalize's create has no token: the name is the key. A job of that name with the
    same parameters (as a crash between create and commit leaves) is adopted, not created
    again; one with other parameters fails the operation."""
    _, stubs = await jobs_gateway()
    emulator.personalize_jobs.create(to_aws(personalize_job("adopted")))
    emulator.personalize_jobs.create(to_aws(personalize_job("taken", "s3://bucket/other.json")))
    adopted = await stubs.wait_done((await stubs.submit(personalize_job("adopted"))).name)
    refused = await stubs.wait_done((await stubs.submit(personalize_job("taken"))).name)
    assert metadata(adopted).state == S.JOB_STATE_SUCCEEDED
    assert metadata(adopted).job_id.endswith("/adopted")
    assert metadata(refused).state == S.JOB_STATE_FAILED
    assert refused.error.code == grpc.StatusCode.ALREADY_EXISTS.value[0]
    assert "other parameters" in refused.error.message
    assert "CreateBatchInferenceJob" not in emulator.stats()["calls"]  # neither was created


async def test_an_upstream_key_in_use_by_another_request_is_refused(
    jobs_gateway: JobGatewayFactory,
) -> None:
    async with slow_emulator() as emulator:
        _, stubs = await jobs_gateway(emulator)
        await stubs.submit(aml_job("bp-shared", "ds-1"))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stubs.submit(aml_job("bp-shared", "ds-2"))
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert error_info(caught.value).reason == "JOB_KEY_IN_USE"


async def test_jobs_started_by_others_hold_slots(jobs_gateway: JobGatewayFactory) -> None:
    """Slots are counted from the backend's listing: 5 jobs someone else started keep ours
    queued (no create refused for the quota) until one of theirs ends."""
    async with slow_emulator(step=0.2) as emulator:
        _, stubs = await jobs_gateway(emulator)
        for i in range(5):
            emulator.personalize_jobs.create(to_aws(personalize_job(f"theirs-{i}")))
        op = await stubs.submit(personalize_job("ours"))
        assert metadata(op).queue_position == 1
        done = await stubs.wait_done(op.name)
        jobs = {j["jobName"]: j for j in emulator.personalize_jobs.list({})["batchInferenceJobs"]}
    assert metadata(done).state == S.JOB_STATE_SUCCEEDED
    first_end = min(j["lastUpdatedDateTime"] for n, j in jobs.items() if n.startswith("theirs"))
    assert jobs["ours"]["creationDateTime"] >= first_end
    assert emulator.stats()["errors"].get("CreateBatchInferenceJob", {}) == {}
