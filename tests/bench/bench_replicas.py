"""Scale-out targets (issue 15): replicas on one Redis against one gateway.

    .venv/bin/python -m tests.bench.bench_replicas [--requests 3000] [--keys 1000]
        [--limit 40] [--seconds 6] [--hit-seconds 5] [--json out.json]

Three measurements, printed side by side (nothing asserted: the machine is shared):

1. Zipf: the same Zipf(1.1) request sequence through 1 replica, then 3 replicas (round
   robin, 24 callers): upstream calls per request and hit ratio (answers without an
   upstream call of their own), and their ratios (target: within 5%).
2. Overload and a replica killed: 3 replicas keep one quota (`--limit` req/s for the
   campaign, the emulator's own TPS limit too) under 3x the limit, offered by a
   round-robin client; one replica is SIGKILLed a third of the way in. Goodput = answers
   OK per second over the window / the limit (target: >= 95%).
3. Cache hits: h2load closed loop on one hit request against 1 replica, then against 2
   replicas at once (one h2load each): combined req/s and the ratio, with each process's
   CPU per request, so the share of the 2 cores that h2load itself takes is visible.

Gateways are real `gateway serve` processes (tests/support.py), the emulator runs in this
process, Redis is the local one on 6379 (keys under a fresh prefix, deleted afterwards).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import grpc
from mlgw.personalize_runtime.v1 import personalize_runtime_pb2 as rt
from mlgw.personalize_runtime.v1 import personalize_runtime_pb2_grpc as rt_grpc

from gateway.emulator import Emulator
from gateway.emulator.config import parse_config
from tests.bench import h2load
from tests.bench.bench_gateway import METHOD_PATH, cpu_seconds
from tests.integration.overload_support import DEMO, Outcome, call, open_loop, recommendations
from tests.integration.replica_support import delete_prefix
from tests.support import PROCESS_CREDENTIALS, GatewayProcess, gateway_process, process_config

REDIS_URL = "redis://127.0.0.1:6379/0"


def config(endpoint: str, prefix: str, limits: str = "") -> str:
    return process_config(
        endpoint,
        f'[redis]\nurl = "{REDIS_URL}"\n[cache]\nkey_prefix = "{prefix}cache:"\n'
        f'[limits]\nredis_key_prefix = "{prefix}limits:"\n{limits}',
    )


@asynccontextmanager
async def replicas(tmp: Path, configs: Sequence[str]) -> AsyncIterator[list[GatewayProcess]]:
    async with AsyncExitStack() as stack:
        started = await asyncio.gather(
            *(
                stack.enter_async_context(
                    gateway_process(
                        c, tmp, "--metrics-port", "0", name=f"r{i}-{uuid.uuid4().hex[:6]}"
                    )
                )
                for i, c in enumerate(configs)
            )
        )
        yield list(started)


def calls(emulator: Emulator) -> int:
    return int(emulator.stats()["calls"].get("GetRecommendations", 0))


# -- 1. Zipf ---------------------------------------------------------------------------------


async def drive(queue: list[tuple[int, str]], stubs: list[Any]) -> int:
    """One caller: takes requests off the shared queue until it is empty; its hits."""
    hits = 0
    while queue:
        i, user = queue.pop()
        request = rt.GetRecommendationsRequest(campaign_arn=DEMO, user_id=user)
        answer = stubs[i % len(stubs)].GetRecommendations(request)
        await answer
        trailers = dict(await answer.trailing_metadata())
        hits += trailers.get("mlgw-cache") in ("hit", "stale")
    return hits


async def zipf(
    emulator: Emulator, tmp: Path, prefix: str, args: argparse.Namespace
) -> dict[str, Any]:
    rng = random.Random(11)
    weights = [1 / rank**1.1 for rank in range(1, args.keys + 1)]
    users = [f"z{k}" for k in rng.choices(range(args.keys), weights, k=args.requests)]
    rows: dict[str, Any] = {}
    for count in (1, 3):
        configs = [config(emulator.endpoint_url, f"{prefix}z{count}:")] * count
        async with replicas(tmp, configs) as group:
            channels = [grpc.aio.insecure_channel(g.target) for g in group]
            stubs = [rt_grpc.PersonalizeRuntimeServiceStub(c) for c in channels]
            queue = list(enumerate(users))
            before = calls(emulator)
            start = time.perf_counter()
            hits = sum(await asyncio.gather(*(drive(queue, stubs) for _ in range(24))))
            made = calls(emulator) - before
            rows[f"{count} replica(s)"] = {
                "requests": len(users),
                "distinct": len(set(users)),
                "upstream_calls": made,
                "calls_per_request": made / len(users),
                "hit_ratio_trailer": hits / len(users),
                "hit_ratio": 1 - made / len(users),
                "seconds": time.perf_counter() - start,
            }
            for channel in channels:
                await channel.close()
        print(f"zipf {count} replica(s): {rows[f'{count} replica(s)']}", flush=True)
    one, three = rows["1 replica(s)"], rows["3 replica(s)"]
    rows["calls_ratio_3_over_1"] = three["upstream_calls"] / one["upstream_calls"]
    rows["hit_ratio_3_over_1"] = three["hit_ratio"] / one["hit_ratio"]
    return rows


# -- 2. overload with a replica killed ------------------------------------------------------


async def overload_kill(
    emulator: Emulator, tmp: Path, prefix: str, args: argparse.Namespace
) -> dict[str, Any]:
    limit = args.limit
    emulator.set_faults({"tps": [{"arn": DEMO, "rate": limit, "burst": limit}]})
    limits = (
        "replicas = 3\nredis_timeout_seconds = 0.25\nmin_latency_reserve_seconds = 0.25\n"
        f'[limits.resources."{DEMO}"]\nrate = {limit}\nburst = 4\n'
    )
    configs = [config(emulator.endpoint_url, f"{prefix}o:", limits)] * 3
    async with replicas(tmp, configs) as group:
        targets = ",".join(g.target for g in group)
        options = [("grpc.lb_policy_name", "round_robin")]
        async with grpc.aio.insecure_channel(f"ipv4:{targets}", options=options) as channel:
            stub = rt_grpc.PersonalizeRuntimeServiceStub(channel)
            await channel.channel_ready()
            for i in range(6):  # every replica warm (round robin)
                await call(stub.GetRecommendations, recommendations(-1 - i), 5.0)
            loop = asyncio.get_running_loop()
            done: list[tuple[float, Outcome]] = []

            async def send(i: int) -> Outcome:
                outcome = await call(stub.GetRecommendations, recommendations(i), 2.0)
                done.append((loop.time(), outcome))
                return outcome

            async def kill() -> None:
                await asyncio.sleep(args.seconds / 3)  # pacing the fault into the window
                group[2].process.kill()

            start = loop.time()
            window = asyncio.create_task(open_loop(send, 3 * limit, args.seconds))
            await asyncio.gather(kill(), asyncio.wait({window}, timeout=args.seconds))
            end = loop.time()
            await window
    ok = sum(1 for t, o in done if o.code == "OK" and t <= end)
    codes: dict[str, int] = {}
    for _, outcome in done:
        codes[outcome.code] = codes.get(outcome.code, 0) + 1
    row = {
        "limit": limit,
        "offered": 3 * limit,
        "ok_per_second": ok / (end - start),
        "goodput_of_limit": ok / (end - start) / limit,
        "codes": codes,
    }
    print(f"overload + kill: {row}", flush=True)
    emulator.set_faults({})
    return row


# -- 3. cache hits: 2 replicas against 1 -----------------------------------------------------


async def hits(
    emulator: Emulator, tmp: Path, prefix: str, args: argparse.Namespace
) -> dict[str, Any]:
    request = rt.GetRecommendationsRequest(campaign_arn=DEMO, user_id="hot", num_results=25)
    body = tmp / "hit.bin"
    body.write_bytes(h2load.grpc_frame(request))
    rows: dict[str, Any] = {}
    configs = [config(emulator.endpoint_url, f"{prefix}h:")] * 2
    async with replicas(tmp, configs) as group:
        for g in group:  # cached first: the emulator runs on this loop, which nghttp blocks
            async with grpc.aio.insecure_channel(g.target) as channel:
                await rt_grpc.PersonalizeRuntimeServiceStub(channel).GetRecommendations(request)
        targets = [
            h2load.verified_target(f"r{i}", f"http://{g.target}{METHOD_PATH}", body)
            for i, g in enumerate(group)
        ]
        for target in targets:
            await h2load.fixed_rate(target, 200, 1.0)
        samples: dict[int, list[dict[str, float]]] = {1: [], 2: []}
        for round_ in range(args.rounds):  # alternating order: drift favours neither
            for count in (1, 2) if round_ % 2 == 0 else (2, 1):
                sample = await hit_run(group[:count], targets[:count], args.hit_seconds)
                samples[count].append(sample)
                print(f"hits round {round_} {count} replica(s): {sample}", flush=True)
        for count, runs in samples.items():
            rows[f"{count} replica(s)"] = {
                key: statistics.median(run[key] for run in runs) for key in runs[0]
            }
    one, two = rows["1 replica(s)"], rows["2 replica(s)"]
    rows["ratio_2_over_1"] = two["req_per_second"] / one["req_per_second"]
    return rows


def busy_seconds() -> float:
    """CPU seconds all cores spent busy so far (/proc/stat: everything but idle, iowait)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


async def hit_run(
    group: Sequence[GatewayProcess], targets: Sequence[h2load.Target], seconds: float
) -> dict[str, float]:
    """One closed-loop h2load per replica at once: combined rate, and where the CPU went."""
    cpu0 = [cpu_seconds(g.process.pid) for g in group]
    busy0, wall0 = busy_seconds(), time.perf_counter()
    runs = await asyncio.gather(*(h2load.closed_loop(t, seconds, 1.0, 4, 16) for t in targets))
    wall, busy = time.perf_counter() - wall0, busy_seconds() - busy0
    gateways = sum(cpu_seconds(g.process.pid) - c for g, c in zip(group, cpu0, strict=True))
    ok = sum(r.summary.ok for r in runs)
    return {
        "req_per_second": sum(r.summary.achieved_rps for r in runs),
        "gateway_cpu_us_per_request": gateways / max(1, ok) * 1e6,
        "gateway_cores": gateways / wall,
        "other_cores": (busy - gateways) / wall,  # h2load, this process, other users
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    signing = dict([PROCESS_CREDENTIALS])
    emulator_config = parse_config({"auth": {"credentials": signing}})
    prefix = f"mlgw:bench:{uuid.uuid4().hex}:"
    results: dict[str, Any] = {}
    with TemporaryDirectory(prefix="bench-replicas-") as tmp:
        async with Emulator(emulator_config) as emulator:
            try:
                results["zipf"] = await zipf(emulator, Path(tmp), prefix, args)
                results["overload_kill"] = await overload_kill(emulator, Path(tmp), prefix, args)
                results["hits"] = await hits(emulator, Path(tmp), prefix, args)
            finally:
                await delete_prefix(prefix)
    print(json.dumps(results, indent=2))
    return results


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--limit", type=float, default=40.0)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--hit-seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse()
    outcome = asyncio.run(main(arguments))
    if arguments.json:
        arguments.json.write_text(json.dumps(outcome, indent=2))
