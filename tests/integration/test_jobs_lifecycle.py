"""Each backend's endings through the real wire: status -> normalized state -> result or error;
ListOperations' filter; bad input to the job RPCs."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.longrunning import operations_pb2
from google.protobuf import duration_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from mlgw.jobs.v1 import jobs_pb2

from gateway.jobs.states import STATUS_TABLE
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
from tests.support import details, error_info, eventually

__all__ = ["jobs_gateway"]

S = jobs_pb2.JobState
BACKEND = {
    jobs_pb2.BACKEND_PERSONALIZE: "personalize",
    jobs_pb2.BACKEND_MACHINE_LEARNING: "machinelearning",
    jobs_pb2.BACKEND_BEDROCK: "bedrock",
}

#: (request, the final backend status, its state, whether the operation has a response).
#: The emulator's markers (in an input path) choose the ending.
ENDINGS: list[tuple[Message, str, int, bool]] = [
    (personalize_job("ends-active"), "ACTIVE", S.JOB_STATE_SUCCEEDED, True),
    (personalize_job("ends-failed", "s3://bucket/fail.json"), "CREATE FAILED", S.JOB_STATE_FAILED,
     False),
    (aml_job("bp-completed"), "COMPLETED", S.JOB_STATE_SUCCEEDED, True),
    (aml_job("bp-failed", "ds-fail"), "FAILED", S.JOB_STATE_FAILED, False),
    (bedrock_job("ends-completed"), "Completed", S.JOB_STATE_SUCCEEDED, True),
    (bedrock_job("ends-partial", "s3://bucket/partial.jsonl"), "PartiallyCompleted",
     S.JOB_STATE_PARTIALLY_SUCCEEDED, True),
    (bedrock_job("ends-failed", "s3://bucket/fail.jsonl"), "Failed", S.JOB_STATE_FAILED, False),
    (bedrock_job("ends-expired", "s3://bucket/expire.jsonl"), "Expired", S.JOB_STATE_EXPIRED,
     False),
]  # fmt: skip
_REASONS = {S.JOB_STATE_FAILED: "JOB_FAILED", S.JOB_STATE_EXPIRED: "JOB_EXPIRED"}


async def _watch(stubs: JobStubs, name: str) -> list[jobs_pb2.JobMetadata]:
    request = jobs_pb2.WatchOperationRequest(name=name)
    return [metadata(r.operation) async for r in stubs.jobs.WatchOperation(request)]


async def test_every_ending_of_every_backend(jobs_gateway: JobGatewayFactory) -> None:
    _, stubs = await jobs_gateway()
    ops = [await stubs.submit(request) for request, *_ in ENDINGS]
    watched = await asyncio.gather(*(_watch(stubs, op.name) for op in ops))
    for (_, status, state, succeeds), seen, op in zip(ENDINGS, watched, ops, strict=True):
        # Every status on the way maps as the table says.
        for meta in seen:
            if meta.backend_status:
                assert STATUS_TABLE[BACKEND[meta.backend]][meta.backend_status] == meta.state
        assert (seen[-1].backend_status, seen[-1].state) == (status, state)
        final = await stubs.get(op.name)
        assert final.done
        assert final.HasField("response") is succeeds
        if not succeeds:
            assert final.error.message, "the backend's message passes through"
            (info,) = [
                d for d in final.error.details if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR)
            ]
            unpacked = error_details_pb2.ErrorInfo()
            info.Unpack(unpacked)
            assert unpacked.reason == _REASONS[state]
            assert unpacked.metadata["backendStatus"] == status
        assert seen[-1].HasField("end_time")
        assert seen[-1].HasField("submit_time")
        assert seen[-1].job_id


async def test_list_operations_filters_by_backend_and_state(
    jobs_gateway: JobGatewayFactory,
) -> None:
    _, stubs = await jobs_gateway()
    ops = [
        await stubs.submit(request)
        for request in (personalize_job("listed"), aml_job("bp-listed"), bedrock_job("listed"))
    ]
    await asyncio.gather(*(stubs.wait_done(op.name) for op in ops))

    async def names(text: str, page_size: int = 0) -> list[str]:
        out, token = [], ""
        while True:
            page = await stubs.operations.ListOperations(
                operations_pb2.ListOperationsRequest(
                    name="operations", filter=text, page_size=page_size, page_token=token
                )
            )
            out += [op.name for op in page.operations]
            token = page.next_page_token
            if not token:
                return out

    assert await names("") == [op.name for op in ops]
    assert await names("", page_size=1) == [op.name for op in ops]
    assert await names('backend = "bedrock"') == [ops[2].name]
    assert await names("backend=machinelearning AND state=succeeded") == [ops[1].name]
    assert await names("state = JOB_STATE_RUNNING") == []


@pytest.mark.parametrize(
    ("call", "code", "reason", "field"),
    [
        ("filter", grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST", "filter"),
        ("get", grpc.StatusCode.NOT_FOUND, "OPERATION_NOT_FOUND", None),
        ("no-request", grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST", "request"),
        ("bad-request", grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST", "request.job_name"),
        ("delete-unfinished", grpc.StatusCode.FAILED_PRECONDITION, "OPERATION_NOT_DONE", None),
    ],
)
async def test_bad_input_is_a_clear_error(
    jobs_gateway: JobGatewayFactory,
    call: str,
    code: grpc.StatusCode,
    reason: str,
    field: str | None,
) -> None:
    _, stubs = await jobs_gateway(max_active={"personalize": 1})
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _bad_call(stubs, call)
    assert caught.value.code() == code
    assert error_info(caught.value).reason == reason
    if field is not None:
        (bad,) = details(caught.value, error_details_pb2.BadRequest)
        assert [v.field for v in bad.field_violations] == [field]


async def _bad_call(stubs: JobStubs, call: str) -> None:
    ops = stubs.operations
    if call == "filter":
        await ops.ListOperations(operations_pb2.ListOperationsRequest(filter="owner = me"))
    elif call == "get":
        await stubs.get("operations/nope")
    elif call == "no-request":
        await stubs.jobs.SubmitBatchInferenceJob(jobs_pb2.SubmitBatchInferenceJobRequest())
    elif call == "bad-request":
        await stubs.submit(personalize_job("bad name with spaces"))
    else:
        op = await stubs.submit(personalize_job("not-deletable"))
        await ops.DeleteOperation(operations_pb2.DeleteOperationRequest(name=op.name))


async def test_wait_returns_at_its_timeout_and_delete_forgets(
    jobs_gateway: JobGatewayFactory,
) -> None:
    async with slow_emulator(step=1.0) as emulator:
        _, stubs = await jobs_gateway(emulator)
        op = await stubs.submit(bedrock_job("waited"))
        timeout = duration_pb2.Duration(nanos=100_000_000)
        early = await stubs.operations.WaitOperation(
            operations_pb2.WaitOperationRequest(name=op.name, timeout=timeout)
        )
        assert not early.done  # AIP-151: Wait may return before the operation is done
        await stubs.operations.CancelOperation(operations_pb2.CancelOperationRequest(name=op.name))
        await stubs.wait_done(op.name)
    await stubs.operations.DeleteOperation(operations_pb2.DeleteOperationRequest(name=op.name))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stubs.get(op.name)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_finished_operations_are_forgotten_after_retention(
    jobs_gateway: JobGatewayFactory,
) -> None:
    _, stubs = await jobs_gateway(retention_seconds=1.0)
    op = await stubs.wait_done((await stubs.submit(aml_job("bp-retained"))).name)
    assert op.done

    async def forgotten() -> bool:
        try:
            await stubs.get(op.name)
        except grpc.aio.AioRpcError as exc:
            return error_info(exc).reason == "OPERATION_NOT_FOUND"
        return False

    await eventually(forgotten)
