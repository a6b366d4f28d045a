"""Batch jobs as long-running operations: the three targets of the job service.

    .venv/bin/python -m tests.bench.bench_jobs [--kill-runs 20] [--watch-rounds 3] [--slot-runs 8]

1. `kill`: a queued workload (8 Personalize jobs against the quota of 5) with the gateway
   process killed by SIGKILL at a random moment, restarted, and every submit replayed with its
   request_id (what a client does when its call fails). Over `--kill-runs` runs: accepted jobs
   lost (an operation the first process answered that the second does not finish) and jobs
   created twice (a job name the emulator holds more than once, or a job nobody submitted).
   Target: 0 and 0.
2. `watch`: two Bedrock jobs of the same length on one gateway, one with 1 watcher and one with
   100 (WatchOperation streams); upstream GetModelInvocationJob calls per job per minute of
   each, side by side. Target: within 10 %.
3. `slot`: 5 jobs created directly at the emulator hold Personalize's 5 slots; one job is
   submitted through the gateway and waits in its queue. From the moment the first of those
   jobs ends upstream to the gateway's create of the queued job, against the dispatch
   interval. Target: at most one interval.

The emulator runs in this process, each gateway as a `python -m gateway serve` subprocess.
Nothing asserts; it prints the figures (and `--json` writes them).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import random
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc
from mlgw.jobs.v1 import jobs_pb2

from gateway.emulator import Emulator
from gateway.upstream.mapping import to_aws
from tests.integration.jobs_support import (
    JobStubs,
    bedrock_job,
    jobs_toml,
    metadata,
    personalize_job,
)
from tests.support import gateway_process, process_config

S = jobs_pb2.JobState


def _config(emulator: Emulator, state: Path, **jobs: Any) -> str:
    return process_config(emulator.endpoint_url, jobs_toml(state, **jobs))


async def _submit_all(stubs: JobStubs, names: list[str], pace: float = 0.0) -> dict[str, str]:
    """Submit each job (request_id = its name), one every `pace` seconds; {name: operation}
    for those answered."""
    accepted: dict[str, str] = {}
    for name in names:
        with contextlib.suppress(grpc.aio.AioRpcError):
            op = await stubs.submit(personalize_job(name), request_id=name)
            accepted[name] = op.name
        await asyncio.sleep(pace)  # the workload's arrival rate, so a kill can land mid-way
    return accepted


async def kill_run(run: int, rng: random.Random, root: Path) -> dict[str, int]:
    names = [f"k{run}-{i}" for i in range(8)]
    state = root / f"state-{run}"
    async with Emulator(job_step_seconds=0.1) as emulator:
        config = _config(emulator, state)
        accepted: dict[str, str] = {}
        async with (
            gateway_process(config, root, "--metrics-port", "0", name=f"k{run}a") as first,
            grpc.aio.insecure_channel(first.target) as channel,
        ):
            submitting = asyncio.create_task(_submit_all(JobStubs(channel), names, pace=0.1))
            await asyncio.sleep(rng.uniform(0.0, 1.5))  # the random moment
            first.process.kill()
            await first.process.wait()
            accepted = await submitting
        async with (
            gateway_process(config, root, "--metrics-port", "0", name=f"k{run}b") as second,
            grpc.aio.insecure_channel(second.target) as channel,
        ):
            stubs = JobStubs(channel)
            replayed = await _submit_all(stubs, names)
            done = await asyncio.gather(
                *(stubs.wait_done(op, within=60) for op in replayed.values())
            )
        jobs = emulator.personalize_jobs.list({})["batchInferenceJobs"]
    created = collections.Counter(j["jobName"] for j in jobs)
    succeeded = {  # the ARN ends with the job's name
        metadata(op).job_id.rsplit("/", 1)[-1]
        for op in done
        if metadata(op).state == S.JOB_STATE_SUCCEEDED
    }
    lost = sum(
        1 for name, op in accepted.items() if replayed.get(name) != op or name not in succeeded
    )
    twice = sum(n - 1 for n in created.values() if n > 1) + len(set(created) - set(names))
    return {"accepted_before_kill": len(accepted), "lost": lost, "created_twice": twice}


async def watch_round(root: Path, step: float) -> dict[str, float]:
    async with Emulator(job_step_seconds=step) as emulator:
        config = _config(
            emulator,
            root / "state-watch",
            poll_initial_seconds=0.2,
            poll_max_seconds=2.0,
        )
        async with (
            gateway_process(config, root, "--metrics-port", "0", name="watch") as gateway,
            grpc.aio.insecure_channel(gateway.target) as channel,
        ):
            stubs = JobStubs(channel)

            async def watch(name: str) -> None:
                request = jobs_pb2.WatchOperationRequest(name=name)
                async for _ in stubs.jobs.WatchOperation(request):
                    pass

            alone = await stubs.submit(bedrock_job("alone"))
            crowded = await stubs.submit(bedrock_job("crowded"))
            await asyncio.gather(watch(alone.name), *(watch(crowded.name) for _ in range(100)))
            ops = [await stubs.get(op.name) for op in (alone, crowded)]
        by_arn = emulator.stats()["calls_by_arn"]
    out: dict[str, float] = {}
    for label, op in zip(("one", "hundred"), ops, strict=True):
        meta = metadata(op)
        minutes = (meta.end_time.ToNanoseconds() - meta.submit_time.ToNanoseconds()) / 60e9
        out[label] = by_arn[meta.job_id]["GetModelInvocationJob"] / minutes
    return out


async def slot_run(run: int, root: Path, interval: float, rng: random.Random) -> float:
    """Seconds from a slot freeing upstream to the queued job's create."""
    async with Emulator(job_step_seconds=0.5) as emulator:
        config = _config(emulator, root / f"state-slot-{run}", dispatch_interval_seconds=interval)
        async with (
            gateway_process(config, root, "--metrics-port", "0", name=f"slot{run}") as gateway,
            grpc.aio.insecure_channel(gateway.target) as channel,
        ):
            stubs = JobStubs(channel)
            for i in range(5):  # others' jobs: the gateway sees them only in the listing
                emulator.personalize_jobs.create(to_aws(personalize_job(f"other-{i}")))
            # The dispatcher's rounds count from the submit: a random delay puts the slot's
            # freeing at a random moment of the interval.
            await asyncio.sleep(rng.uniform(0.0, interval))
            op = await stubs.submit(personalize_job(f"queued-{run}-next"))
            await stubs.wait_done(op.name, within=60)
        jobs = {j["jobName"]: j for j in emulator.personalize_jobs.list({})["batchInferenceJobs"]}
    freed = min(j["lastUpdatedDateTime"] for n, j in jobs.items() if n.startswith("other-"))
    return float(jobs[f"queued-{run}-next"]["creationDateTime"] - freed)


async def kill_part(args: argparse.Namespace, root: Path, rng: random.Random) -> dict[str, Any]:
    runs = []
    for run in range(args.kill_runs):
        figures = await kill_run(run, rng, root)
        runs.append(figures)
        print(f"kill run {run + 1:2}: {figures}", flush=True)
    return {
        "runs": len(runs),
        "lost": sum(r["lost"] for r in runs),
        "created_twice": sum(r["created_twice"] for r in runs),
        "accepted_before_kill": [r["accepted_before_kill"] for r in runs],
    }


async def watch_part(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    rounds = []
    for n in range(args.watch_rounds):
        figures = await watch_round(root, step=3.0)
        rounds.append(figures)
        print(f"watch round {n + 1}: describes/job/min {figures}", flush=True)
    one = statistics.mean(r["one"] for r in rounds)
    hundred = statistics.mean(r["hundred"] for r in rounds)
    return {"one": one, "hundred": hundred, "ratio": hundred / one}


async def slot_part(args: argparse.Namespace, root: Path, rng: random.Random) -> dict[str, Any]:
    delays = []
    for run in range(args.slot_runs):
        delay = await slot_run(run, root, args.interval, rng)
        delays.append(delay)
        print(f"slot run {run + 1}: {delay:.3f} s (interval {args.interval} s)", flush=True)
    return {
        "interval": args.interval,
        "median": statistics.median(delays),
        "max": max(delays),
        "delays": delays,
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rng = random.Random(args.seed)
        if args.kill_runs:
            results["kill"] = await kill_part(args, root, rng)
        if args.watch_rounds:
            results["watch"] = await watch_part(args, root)
        if args.slot_runs:
            results["slot"] = await slot_part(args, root, rng)
    return results


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench_jobs", description=__doc__.split("\n")[0])
    p.add_argument("--kill-runs", type=int, default=20, help="0 skips the part")
    p.add_argument("--watch-rounds", type=int, default=3, help="0 skips the part")
    p.add_argument("--slot-runs", type=int, default=12, help="0 skips the part")
    p.add_argument("--interval", type=float, default=1.0, help="[jobs] dispatch interval")
    p.add_argument("--seed", type=int, default=12)
    p.add_argument("--json", type=Path)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    start = time.monotonic()
    results = asyncio.run(main_async(args))
    print()
    if "kill" in results:
        kill = results["kill"]
        print(
            f"kill -9 x{kill['runs']}: lost {kill['lost']}, created twice {kill['created_twice']}"
        )
    if "watch" in results:
        watch = results["watch"]
        print(
            f"describes per job per minute: 1 watcher {watch['one']:.1f}, "
            f"100 watchers {watch['hundred']:.1f}, ratio {watch['ratio']:.3f}"
        )
    if "slot" in results:
        slot = results["slot"]
        print(
            f"slot freed -> next create: median {slot['median']:.3f} s, "
            f"max {slot['max']:.3f} s (dispatch interval {slot['interval']} s)"
        )
    print(f"({time.monotonic() - start:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
