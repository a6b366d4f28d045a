"""A gateway process killed with SIGKILL mid-queue and restarted: nothing lost, nothing doubled."""

from __future__ import annotations

import asyncio
import collections
from pathlib import Path

import grpc
from mlgw.jobs.v1 import jobs_pb2

from tests.integration.jobs_support import (
    JobStubs,
    jobs_toml,
    metadata,
    personalize_job,
    slow_emulator,
)
from tests.support import eventually, gateway_process, process_config

S = jobs_pb2.JobState


async def test_sigkill_mid_queue_then_restart_resumes(tmp_path: Path) -> None:
    async with slow_emulator(step=0.2) as emulator:
        config = process_config(emulator.endpoint_url, jobs_toml(tmp_path / "state"))
        async with (
            gateway_process(config, tmp_path, "--metrics-port", "0", name="first") as first,
            grpc.aio.insecure_channel(first.target) as channel,
        ):
            stubs = JobStubs(channel)
            ops = [
                await stubs.submit(personalize_job(f"killed-{i}"), request_id=f"rid-{i}")
                for i in range(8)
            ]
            await eventually(
                lambda: len(emulator.personalize_jobs.list({})["batchInferenceJobs"]) >= 3
            )
            first.process.kill()  # SIGKILL: no drain, no clean close of the store
            await first.process.wait()
        async with (
            gateway_process(config, tmp_path, "--metrics-port", "0", name="second") as second,
            grpc.aio.insecure_channel(second.target) as channel,
        ):
            stubs = JobStubs(channel)
            # Replays after the restart find the operations accepted before it.
            replayed = [
                await stubs.submit(personalize_job(f"killed-{i}"), request_id=f"rid-{i}")
                for i in range(8)
            ]
            assert [op.name for op in replayed] == [op.name for op in ops]
            done = await asyncio.gather(*(stubs.wait_done(op.name, within=30) for op in ops))
    assert [metadata(op).state for op in done] == [S.JOB_STATE_SUCCEEDED] * 8
    jobs = emulator.personalize_jobs.list({})["batchInferenceJobs"]
    assert collections.Counter(j["jobName"] for j in jobs) == {f"killed-{i}": 1 for i in range(8)}
    assert {metadata(op).job_id for op in done} == {j["batchInferenceJobArn"] for j in jobs}


async def test_two_workers_share_one_sqlite_store(tmp_path: Path) -> None:
    """`--workers 2`: two processes on one state directory, one queue, each job created once."""
    async with slow_emulator(step=0.1) as emulator:
        config = process_config(emulator.endpoint_url, jobs_toml(tmp_path / "state"))
        async with gateway_process(config, tmp_path, "--workers", "2", "--metrics-port", "0") as gw:
            ops = []
            for i in range(8):  # a channel each: SO_REUSEPORT spreads connections
                async with grpc.aio.insecure_channel(gw.target) as channel:
                    ops.append(await JobStubs(channel).submit(personalize_job(f"worker-{i}")))
            async with grpc.aio.insecure_channel(gw.target) as channel:
                stubs = JobStubs(channel)
                done = await asyncio.gather(*(stubs.wait_done(op.name, within=30) for op in ops))
    assert [metadata(op).state for op in done] == [S.JOB_STATE_SUCCEEDED] * 8
    jobs = emulator.personalize_jobs.list({})["batchInferenceJobs"]
    assert collections.Counter(j["jobName"] for j in jobs) == {f"worker-{i}": 1 for i in range(8)}
    assert emulator.stats()["errors"].get("CreateBatchInferenceJob", {}) == {}
