"""Two gateway processes on one Redis share one queue and one set of operations."""

from __future__ import annotations

import asyncio
import collections
import contextlib
from pathlib import Path

import grpc
import pytest
from mlgw.jobs.v1 import jobs_pb2
from redis.asyncio import Redis

from gateway.emulator import Emulator
from tests.integration.jobs_support import (
    REDIS_URL,
    JobStubs,
    jobs_toml,
    metadata,
    personalize_job,
    redis_prefix,
    slow_emulator,
)

__all__ = ["redis_prefix"]  # the fixture
from tests.support import eventually, gateway_process, process_config

S = jobs_pb2.JobState
LIMIT = 3  # below the emulator's 5: a replica that ignored the other would show above it


async def _sample_active(emulator: Emulator, peak: list[int]) -> None:
    """The most Personalize jobs pending or in progress at once, as the emulator sees them."""
    while True:
        jobs = emulator.personalize_jobs.list({})["batchInferenceJobs"]
        peak[0] = max(peak[0], sum(j["status"] in ("PENDING", "IN PROGRESS") for j in jobs))
        await asyncio.sleep(0.005)


@pytest.mark.redis
async def test_two_replicas_share_one_queue(tmp_path: Path, redis_prefix: str) -> None:
    async with slow_emulator(step=0.1) as emulator:
        extra = (
            f'[redis]\nurl = "{REDIS_URL}"\n'
            + jobs_toml(tmp_path / "unused", key_prefix=f'"{redis_prefix}"',
                        max_active={"personalize": LIMIT})
        )  # fmt: skip
        config = process_config(emulator.endpoint_url, extra)
        peak = [0]
        async with (
            gateway_process(config, tmp_path, "--metrics-port", "0", name="a") as a,
            gateway_process(config, tmp_path, "--metrics-port", "0", name="b") as b,
            grpc.aio.insecure_channel(a.target) as to_a,
            grpc.aio.insecure_channel(b.target) as to_b,
        ):
            replicas = [JobStubs(to_a), JobStubs(to_b)]
            sampler = asyncio.create_task(_sample_active(emulator, peak))
            ops = [
                await replicas[i % 2].submit(personalize_job(f"shared-{i}"), request_id=f"r{i}")
                for i in range(8)
            ]
            # Either replica answers for every operation, and replays across replicas agree.
            again = await replicas[1].submit(personalize_job("shared-0"), request_id="r0")
            assert again.name == ops[0].name
            done = await asyncio.gather(
                *(replicas[(i + 1) % 2].wait_done(op.name, within=30) for i, op in enumerate(ops))
            )
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
        warned = a.log.read_text()
    assert [metadata(op).state for op in done] == [S.JOB_STATE_SUCCEEDED] * 8
    assert 0 < peak[0] <= LIMIT
    jobs = emulator.personalize_jobs.list({})["batchInferenceJobs"]
    assert collections.Counter(j["jobName"] for j in jobs) == {f"shared-{i}": 1 for i in range(8)}
    stats = emulator.stats()
    assert stats["calls"]["CreateBatchInferenceJob"] == 8
    assert stats["errors"].get("CreateBatchInferenceJob", {}) == {}
    # The test Redis runs without AOF: the gateway says what that costs.
    assert "redis persistence is off" in warned


@pytest.mark.redis
async def test_a_replica_killed_mid_queue_hands_its_queue_to_the_other(
    tmp_path: Path, redis_prefix: str
) -> None:
    """The replica submitting the queue (the dispatch lease's holder) is SIGKILLed with jobs
    still queued: the other takes the queue over once the lease expires, and every job is
    created upstream exactly once and ends succeeded."""
    async with slow_emulator(step=0.1) as emulator:
        extra = (
            f'[redis]\nurl = "{REDIS_URL}"\n'
            + jobs_toml(tmp_path / "unused", key_prefix=f'"{redis_prefix}"',
                        max_active={"personalize": LIMIT})
        )  # fmt: skip
        config = process_config(emulator.endpoint_url, extra)
        async with (
            gateway_process(config, tmp_path, "--metrics-port", "0", name="a") as a,
            gateway_process(config, tmp_path, "--metrics-port", "0", name="b") as b,
            grpc.aio.insecure_channel(a.target) as to_a,
            grpc.aio.insecure_channel(b.target) as to_b,
        ):
            replicas = [JobStubs(to_a), JobStubs(to_b)]
            ops = [
                await replicas[i % 2].submit(personalize_job(f"handover-{i}"), request_id=f"h{i}")
                for i in range(8)
            ]
            holder = await _dispatcher(redis_prefix)
            killed = 0 if holder == a.process.pid else 1
            assert holder == (a, b)[killed].process.pid
            (a, b)[killed].process.kill()  # SIGKILL: its lease is left to expire
            await (a, b)[killed].process.wait()
            survivor = replicas[1 - killed]
            done = await asyncio.gather(*(survivor.wait_done(op.name, within=30) for op in ops))
    assert [metadata(op).state for op in done] == [S.JOB_STATE_SUCCEEDED] * 8
    jobs = emulator.personalize_jobs.list({})["batchInferenceJobs"]
    assert collections.Counter(j["jobName"] for j in jobs) == {f"handover-{i}": 1 for i in range(8)}
    assert emulator.stats()["calls"]["CreateBatchInferenceJob"] == 8


async def _dispatcher(prefix: str) -> int:
    """The pid of the process holding Personalize's dispatch lease (`host:pid:nonce`)."""
    client = Redis.from_url(REDIS_URL)
    key = f"{prefix}{{jobs}}:lease:dispatch:personalize"
    found: list[bytes] = []
    try:

        async def held() -> bool:
            value = await client.get(key)
            if value is not None:
                found.append(value)
            return value is not None

        await eventually(held)
    finally:
        await client.aclose()
    return int(found[-1].decode().split(":")[1])
