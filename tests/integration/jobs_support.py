"""Helpers of the job tests: gateways with a job store in the test's directory and fast
polling, stubs, and one valid create request per backend."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.longrunning import operations_pb2, operations_pb2_grpc
from google.protobuf.message import Message
from mlgw.bedrock.v1 import bedrock_pb2 as bedrock
from mlgw.jobs.v1 import jobs_pb2, jobs_pb2_grpc
from mlgw.machinelearning.v1 import machinelearning_pb2 as aml
from mlgw.personalize.v1 import personalize_pb2 as personalize
from redis.asyncio import Redis

from gateway.emulator import Emulator
from gateway.emulator.config import parse_config
from gateway.server import Gateway
from tests.integration.conftest import SIGNING_KEYS, TEST_CREDENTIALS
from tests.integration.overload_support import config
from tests.integration.requests import ARN, ROLE

#: Jobs move every 50 ms in the emulator (tests/conftest.py): poll about as often.
FAST_JOBS = {
    "poll_initial_seconds": 0.05,
    "poll_multiplier": 1.5,
    "poll_max_seconds": 0.2,
    "dispatch_interval_seconds": 0.05,
    "lease_seconds": 1.0,
}
SOLUTION_VERSION = f"{ARN}:solution/demo/1"


def jobs_toml(state_dir: Path, **jobs: Any) -> str:
    """The `[jobs]` table of a gateway process (fast polling, the test's state directory)."""
    settings = {**FAST_JOBS, **jobs}
    lines = [f'state_dir = "{state_dir}"']
    for key, value in settings.items():
        if isinstance(value, dict):
            continue
        lines.append(f"{key} = {value}")
    out = "[jobs]\n" + "\n".join(lines) + "\n"
    for key, value in settings.items():
        if isinstance(value, dict):
            out += f"[jobs.{key}]\n" + "".join(f"{k} = {v}\n" for k, v in value.items())
    return out


def personalize_job(
    name: str, path: str = "s3://bucket/in.json"
) -> personalize.CreateBatchInferenceJobRequest:
    return personalize.CreateBatchInferenceJobRequest(
        job_name=name,
        solution_version_arn=SOLUTION_VERSION,
        job_input=personalize.BatchInferenceJobInput(
            s3_data_source=personalize.S3DataConfig(path=path)
        ),
        job_output=personalize.BatchInferenceJobOutput(
            s3_data_destination=personalize.S3DataConfig(path="s3://bucket/out/")
        ),
        role_arn=ROLE,
    )


def bedrock_job(
    name: str, uri: str = "s3://bucket/in.jsonl"
) -> bedrock.CreateModelInvocationJobRequest:
    return bedrock.CreateModelInvocationJobRequest(
        job_name=name,
        role_arn=ROLE,
        model_id="anthropic.claude-3-haiku-20240307-v1:0",
        input_data_config=bedrock.ModelInvocationJobInputDataConfig(
            s3_input_data_config=bedrock.ModelInvocationJobS3InputDataConfig(s3_uri=uri)
        ),
        output_data_config=bedrock.ModelInvocationJobOutputDataConfig(
            s3_output_data_config=bedrock.ModelInvocationJobS3OutputDataConfig(
                s3_uri="s3://bucket/out/"
            )
        ),
    )


def aml_job(prediction_id: str, source: str = "ds-1") -> aml.CreateBatchPredictionRequest:
    return aml.CreateBatchPredictionRequest(
        batch_prediction_id=prediction_id,
        ml_model_id="ml-1",
        batch_prediction_data_source_id=source,
        output_uri="s3://bucket/out/",
    )


class JobStubs:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.channel = channel
        self.jobs = jobs_pb2_grpc.JobsServiceStub(channel)
        self.operations = operations_pb2_grpc.OperationsStub(channel)

    async def submit(self, request: Message, request_id: str = "") -> operations_pb2.Operation:
        if isinstance(request, personalize.CreateBatchInferenceJobRequest):
            return await self.jobs.SubmitBatchInferenceJob(
                jobs_pb2.SubmitBatchInferenceJobRequest(request=request, request_id=request_id)
            )
        if isinstance(request, aml.CreateBatchPredictionRequest):
            return await self.jobs.SubmitBatchPrediction(
                jobs_pb2.SubmitBatchPredictionRequest(request=request, request_id=request_id)
            )
        return await self.jobs.SubmitModelInvocationJob(
            jobs_pb2.SubmitModelInvocationJobRequest(request=request, request_id=request_id)
        )

    async def get(self, name: str) -> operations_pb2.Operation:
        return await self.operations.GetOperation(operations_pb2.GetOperationRequest(name=name))

    async def wait_done(self, name: str, within: float = 20.0) -> operations_pb2.Operation:
        """WaitOperation until done (each call may return early, AIP-151)."""
        op = await self.get(name)
        while not op.done:
            op = await self.operations.WaitOperation(
                operations_pb2.WaitOperationRequest(name=name), timeout=within
            )
        return op


def metadata(op: operations_pb2.Operation) -> jobs_pb2.JobMetadata:
    meta = jobs_pb2.JobMetadata()
    assert op.metadata.Unpack(meta)
    return meta


@asynccontextmanager
async def slow_emulator(step: float = 0.5, **jobs: Any) -> AsyncIterator[Emulator]:
    """An emulator whose jobs move every `step` seconds (time to act on a running job), with
    `jobs` as its `[jobs]` settings."""
    config = parse_config({"auth": {"credentials": SIGNING_KEYS}, "jobs": jobs})
    async with Emulator(config, job_step_seconds=step) as emu:
        yield emu


REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """A fresh Redis key prefix for a job store, its keys deleted afterwards."""
    prefix = f"test:jobs:{uuid.uuid4().hex}:"
    yield prefix
    await drop_keys(prefix)


async def drop_keys(prefix: str) -> None:
    client = Redis.from_url(REDIS_URL)
    keys = await client.keys(f"{prefix}*")
    if keys:
        await client.delete(*keys)
    await client.aclose()


JobGatewayFactory = Callable[..., Awaitable[tuple[Gateway, JobStubs]]]


@pytest.fixture
async def jobs_gateway(emulator: Emulator, tmp_path: Path) -> AsyncIterator[JobGatewayFactory]:
    """`await jobs_gateway(emu=None, **jobs_settings)`: a started in-process gateway (in front
    of `emu`, else the test's emulator) whose job store is in the test's directory, and stubs
    on one channel to it."""
    started: list[tuple[Gateway, grpc.aio.Channel]] = []

    async def make(emu: Emulator | None = None, **jobs: Any) -> tuple[Gateway, JobStubs]:
        upstream = (emu or emulator).endpoint_url
        settings = {"state_dir": str(tmp_path / "state"), **FAST_JOBS, **jobs}
        gw = Gateway(config(upstream, jobs=settings), credentials=TEST_CREDENTIALS)
        await gw.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{gw.port}")
        started.append((gw, channel))
        return gw, JobStubs(channel)

    try:
        yield make
    finally:
        for gw, channel in started:
            await channel.close()
            await gw.stop(0)
