"""Caching benchmark: the cache-hit path against Python gRPC's ceiling, and a Zipf workload.

    python -m tests.bench.bench_cache [--seconds 10] [--rounds 2] [--zipf-rate 200]
                                      [--zipf-seconds 30] [--json out.json]

One run, side by side (emulator, trivial server and gateway are subprocesses on free
127.0.0.1 ports; the measured server on CPU 0, emulator and load generators on CPU 1):

1. Cache-hit throughput, closed loop (h2load, 8 connections x 16 streams): the trivial
   grpc.aio handler (a canned 25-item answer, `tests/bench/trivial_server.py`) and the
   gateway with its shipped defaults answering the same GetRecommendations from its L1
   (one miss before the clock starts). Rounds alternate the order; the figure is the
   ratio of the means. Target: gateway >= 80% of trivial.
2. Zipf(1.1) over 10,000 users at a fixed offered rate (open loop, the same seeded user
   sequence for all): the gateway (shipped defaults: 10 s user TTL, coalescing, 2 ms merge
   window), the same gateway with `[merge] window_ms = 0` (`gw-nowin`), and direct
   aiobotocore calls to the same emulator. Reported: upstream calls per request (the
   emulator's counter), the gateway's hit ratio (its `mlgw-cache` trailing metadata), p50
   and p99 overall and per `mlgw-cache` value, CPU per request of the gateway and of the
   load generator. Each gateway starts cold, so the hit ratio includes the warm-up. The
   process under test runs alone on CPU 0 (the gateway; for `direct`, the aiobotocore
   client itself); the emulator and the gRPC load generator share CPU 1.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import itertools
import json
import os
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import grpc
import uvloop
from aiobotocore.session import AioSession
from mlgw.personalize_runtime.v1 import personalize_runtime_pb2 as rt
from mlgw.personalize_runtime.v1 import personalize_runtime_pb2_grpc as rt_grpc

from gateway.demo import DEMO_CAMPAIGN
from tests.bench import h2load
from tests.bench.bench_gateway import METHOD_PATH, cpu_seconds, environment
from tests.bench.direct_client import client_config, open_loop
from tests.bench.h2load import Summary, percentile, summarize
from tests.bench.processes import (
    STARTUP_TIMEOUT,
    EmulatorStats,
    ProcessStack,
    run_json,
    running,
)

HIT_USER = "bench-hit-user"
#: The gateways under test: the shipped defaults, and the same without the merge window
#: (to show what the window costs when, as here, nothing can merge).
GATEWAYS = {"gateway": "", "gw-nowin": "[merge]\nwindow_ms = 0\n"}
#: Zipf exponent and population of the workload the issue names.
ZIPF_S = 1.1
USERS = 10_000
_MAX_IN_FLIGHT = 512


# --- the Zipf workload ----------------------------------------------------------------


def zipf_users(count: int, seed: int, users: int = USERS, s: float = ZIPF_S) -> list[str]:
    """`count` user ids drawn from Zipf(s) over `users` ranks (rank 1 most frequent)."""
    weights = [k**-s for k in range(1, users + 1)]
    cumulative = list(itertools.accumulate(weights))
    total = cumulative[-1]
    rng = random.Random(seed)
    return [f"user-{bisect.bisect(cumulative, rng.random() * total) + 1}" for _ in range(count)]


@dataclass
class Tally:
    """What the gateway said about each answer (`mlgw-cache`, coalesced, merged)."""

    cache: Counter[str] = field(default_factory=Counter)
    coalesced: int = 0
    merged: int = 0
    #: Latency (s) by `mlgw-cache` value, timed inside the driver.
    latency: dict[str, list[float]] = field(default_factory=dict)


async def drive(args: argparse.Namespace) -> dict[str, Any]:
    """The load generator (run in its own process): open loop over the Zipf sequence."""
    count = max(1, round(args.rate * args.seconds))
    users = iter(zipf_users(count + 1, args.seed))
    cap = args.seconds * 1.5 + 2
    tally = Tally()
    cpu0 = time.process_time()
    if args.target == "direct":
        session = AioSession()
        async with session.create_client(
            "personalize-runtime",
            region_name="us-east-1",
            endpoint_url=args.endpoint,
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
            config=client_config(_MAX_IN_FLIGHT),
        ) as client:

            def direct_call() -> Awaitable[Any]:
                params = {"campaignArn": DEMO_CAMPAIGN, "userId": next(users)}
                pending: Awaitable[Any] = client.get_recommendations(**params)
                return pending

            await direct_call()  # connections and lazy caches off the clock (user-1's call)
            samples = await open_loop(direct_call, args.rate, count, cap, _MAX_IN_FLIGHT)
    else:
        async with grpc.aio.insecure_channel(args.endpoint) as channel:
            stub = rt_grpc.PersonalizeRuntimeServiceStub(channel)

            async def via_gateway() -> dict[str, Any]:
                request = rt.GetRecommendationsRequest(
                    campaign_arn=DEMO_CAMPAIGN, user_id=next(users)
                )
                start = time.perf_counter()
                call = stub.GetRecommendations(request, timeout=10)
                reply = await call
                meta = dict(await call.trailing_metadata() or ())
                kind = str(meta.get("mlgw-cache", "-"))
                tally.latency.setdefault(kind, []).append(time.perf_counter() - start)
                tally.cache[kind] += 1
                tally.coalesced += "mlgw-coalesced" in meta
                tally.merged += "mlgw-merged" in meta
                return {"itemList": reply.item_list}

            await stub.GetRecommendations(
                rt.GetRecommendationsRequest(campaign_arn=DEMO_CAMPAIGN, user_id="warm-up")
            )
            samples = await open_loop(via_gateway, args.rate, count, cap, _MAX_IN_FLIGHT)
    cpu = time.process_time() - cpu0
    span = samples.last_end - samples.first_start
    summary = summarize(
        args.name or args.target,
        f"zipf {args.rate:g}",
        args.rate,
        samples.latencies,
        samples.errors,
        span,
    )
    return {
        "summary": summary.as_dict(),
        "driver_cpu_us_per_req": cpu / max(1, summary.ok) * 1e6,
        "cache": dict(tally.cache),
        "latency_by_cache_ms": {
            kind: {
                "p50": percentile(sorted(values), 50) * 1000,
                "p99": percentile(sorted(values), 99) * 1000,
            }
            for kind, values in tally.latency.items()
        },
        "coalesced": tally.coalesced,
        "merged": tally.merged,
    }


# --- processes ------------------------------------------------------------------------


@dataclass
class Stack(ProcessStack):
    """The emulator, the trivial server and the gateways of `GATEWAYS`."""

    async def start(self) -> None:
        await self.start_emulator()
        self.trivial_service()
        for name, extra in GATEWAYS.items():
            self.gateway_service(name, extra)
        for name in ("trivial", *GATEWAYS):
            await self.services[name].start(self.layout.sut)
        async with asyncio.timeout(STARTUP_TIMEOUT):
            for name in ("trivial", *GATEWAYS):
                await self.serving(name)


# --- measurements ---------------------------------------------------------------------


@dataclass(frozen=True)
class HitRow:
    summary: Summary
    round: int
    upstream_calls: int | None


async def hit_throughput(stack: Stack, args: argparse.Namespace) -> list[HitRow]:
    request = rt.GetRecommendationsRequest(
        campaign_arn=DEMO_CAMPAIGN, user_id=HIT_USER, num_results=25
    )
    body = stack.tmp / "hit.bin"
    body.write_bytes(h2load.grpc_frame(request))
    targets = {
        name: h2load.verified_target(name, f"http://{stack.address(name)}{METHOD_PATH}", body)
        for name in ("trivial", "gateway")
    }  # the check request is the gateway's one miss: every timed request can hit
    for target in targets.values():  # connections, caches and the allocator settle
        await h2load.fixed_rate(target, 200, args.warmup_seconds, stack.layout.support)
    stats = EmulatorStats(stack.emulator_url)
    rows: list[HitRow] = []
    for round_ in range(args.rounds):
        order = ["trivial", "gateway"] if round_ % 2 == 0 else ["gateway", "trivial"]
        for name in order:
            await stats.reset()
            cpu0 = cpu_seconds(stack.services[name].pid)
            run = await h2load.closed_loop(
                targets[name],
                args.seconds,
                args.warmup_seconds,
                args.clients,
                args.streams,
                stack.layout.support,
            )
            cpu = cpu_seconds(stack.services[name].pid) - cpu0
            summary = replace(run.summary, cpu_us_per_req=cpu / max(1, run.summary.ok) * 1e6)
            calls, _ = await stats.calls_and_errors()
            row = HitRow(summary, round_, calls if name == "gateway" else None)
            rows.append(row)
            print(_hit_line(row), flush=True)
    return rows


def _hit_line(row: HitRow) -> str:
    s = row.summary
    upstream = "-" if row.upstream_calls is None else str(row.upstream_calls)
    return (
        f"{s.name:<8} {s.mode:<12} round {row.round}  {s.achieved_rps:8.1f} req/s  "
        f"ok {s.ok:>7} err {s.errors:>4}  p50 {s.p50_ms:6.2f} p99 {s.p99_ms:6.2f} ms  "
        f"cpu {s.cpu_us_per_req or 0:5.0f} µs/req  upstream {upstream}  {s.note}"
    )


async def zipf_rows(stack: Stack, args: argparse.Namespace) -> list[dict[str, Any]]:
    stats = EmulatorStats(stack.emulator_url)
    rows = []
    endpoints = {name: stack.address(name) for name in GATEWAYS}
    endpoints["direct"] = stack.emulator_url
    for name, endpoint in endpoints.items():
        await stats.reset()
        target = "direct" if name == "direct" else "gateway"
        # The service under test alone on its CPU: the gateway, or the direct client.
        cpu = stack.layout.sut if name == "direct" else stack.layout.support
        argv = [sys.executable, "-m", "tests.bench.bench_cache", "drive", "--target", target]
        argv += ["--name", name, "--endpoint", endpoint, "--rate", f"{args.zipf_rate:g}"]
        argv += ["--seconds", f"{args.zipf_seconds:g}", "--seed", str(args.seed)]
        server = stack.services.get(name)
        cpu0 = cpu_seconds(server.pid) if server else 0.0
        result = await run_json(argv, cpu, args.zipf_seconds * 3 + 60)
        calls, upstream_errors = await stats.calls_and_errors()
        summary = result["summary"]
        requests = summary["requests"] + 1  # + the warm-up call
        row = {
            **result,
            "upstream_calls": calls,
            "upstream_errors": upstream_errors,
            "upstream_calls_per_request": calls / requests,
        }
        if server is not None:
            row["server_cpu_us_per_req"] = (cpu_seconds(server.pid) - cpu0) / requests * 1e6
        answered = sum(result["cache"].values())
        if answered:
            row["hit_ratio"] = (
                result["cache"].get("hit", 0) + result["cache"].get("stale", 0)
            ) / answered
        rows.append(row)
        print(_zipf_line(row), flush=True)
    return rows


def _zipf_line(row: dict[str, Any]) -> str:
    s = row["summary"]
    hit = f"{row['hit_ratio']:.3f}" if "hit_ratio" in row else "-"
    return (
        f"{s['name']:<8} {s['mode']:<10} {s['achieved_rps']:8.1f} req/s ok {s['ok']:>6} "
        f"err {s['errors']:>4}  p50 {s['p50_ms']:6.2f} p99 {s['p99_ms']:7.2f} ms  "
        f"upstream/req {row['upstream_calls_per_request']:.3f}  hit ratio {hit}  "
        f"coalesced {row['coalesced']} merged {row['merged']}  {s['note']}"
        + "".join(
            f"\n         {kind:<6} p50 {v['p50']:6.2f} p99 {v['p99']:7.2f} ms"
            for kind, v in sorted(row.get("latency_by_cache_ms", {}).items())
        )
    )


# --- entry point ----------------------------------------------------------------------


async def compare(args: argparse.Namespace) -> dict[str, Any]:
    h2load.ensure_h2load()
    async with running(Stack, args.layout, "bench-cache-") as stack:
        env = environment(stack.layout)
        print(json.dumps(env), flush=True)
        hits: list[HitRow] = []
        zipf: list[dict[str, Any]] = []
        if args.only in (None, "hit"):
            print("\n1. cache-hit GetRecommendations, closed loop", flush=True)
            hits = await hit_throughput(stack, args)
        if args.only in (None, "zipf"):
            print(f"\n2. Zipf({ZIPF_S}) over {USERS} users at {args.zipf_rate:g} req/s")
            zipf = await zipf_rows(stack, args)
    ratio = None
    if hits:
        means = {
            name: statistics.fmean(r.summary.achieved_rps for r in hits if r.summary.name == name)
            for name in ("trivial", "gateway")
        }
        cpu = {
            name: statistics.fmean(
                r.summary.cpu_us_per_req or 0.0 for r in hits if r.summary.name == name
            )
            for name in ("trivial", "gateway")
        }
        ratio = means["gateway"] / means["trivial"]
        verdict = "met" if ratio >= 0.8 else "MISSED"
        print(
            f"\ncache-hit throughput: gateway {means['gateway']:.0f} req/s vs trivial "
            f"{means['trivial']:.0f} req/s = {ratio:.2f} (target >= 0.80: {verdict}); "
            f"server CPU per request: gateway {cpu['gateway']:.0f} µs vs trivial "
            f"{cpu['trivial']:.0f} µs (capacity ratio {cpu['trivial'] / cpu['gateway']:.2f})"
        )
    print(f"load average at the end: {os.getloadavg()} (other processes share these cores)")
    return {
        "environment": env,
        "hit_rows": [
            {**asdict(r.summary), "round": r.round, "upstream_calls": r.upstream_calls}
            for r in hits
        ],
        "hit_ratio_to_trivial": ratio,
        "zipf_rows": zipf,
    }


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command")
    d = sub.add_parser("drive", help="(internal) the Zipf load generator")
    d.add_argument("--target", choices=("gateway", "direct"), required=True)
    d.add_argument("--name", help="the row's name (default: the target)")
    d.add_argument("--endpoint", required=True)
    d.add_argument("--rate", type=float, required=True)
    d.add_argument("--seconds", type=float, required=True)
    d.add_argument("--seed", type=int, default=1)
    p.add_argument("--seconds", type=float, default=10.0, help="per closed-loop measurement")
    p.add_argument("--rounds", type=int, default=2, help="closed-loop rounds (order flips)")
    p.add_argument("--clients", type=int, default=8, help="h2load connections")
    p.add_argument("--streams", type=int, default=16, help="h2load streams per connection")
    p.add_argument("--warmup-seconds", type=float, default=3.0)
    p.add_argument("--zipf-rate", type=float, default=200.0, help="offered req/s")
    p.add_argument("--zipf-seconds", type=float, default=30.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--layout", choices=("split", "none"), default="split")
    p.add_argument("--only", choices=("hit", "zipf"), help="run one of the two parts")
    p.add_argument("--json", type=Path, help="also write the results here")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "drive":
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            result = runner.run(drive(args))
        print(json.dumps(result), flush=True)
        return 0
    result = asyncio.run(compare(args))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
        print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
