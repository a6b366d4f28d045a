"""Batch and streaming benchmark: per-entry cost of the batch RPCs and the stream against
unary calls, side by side in one run, and the memory of a stalled stream.

    python -m tests.bench.bench_batch [--seconds 8] [--users 10000] [--json out.json]

The gateways and the emulator are subprocesses on free 127.0.0.1 ports; the gateway under
measurement runs alone on CPU 0, the emulator, h2load and this process (the stream client)
on CPU 1. Figures (targets from issue 11):

1. Cache hits over `--users` users (all cached first, through BatchGetRecommendations):
   unary GetRecommendations (h2load closed loop, 8 x 16, one cached user), batches of 100
   and of 1,000 (h2load closed loop, 2 x 4, bodies of cached users), and the stream (this
   process: 4 streams writing and reading concurrently, every user once per pass, one call
   per message and 100 calls per message). Each row
   reports entries/s and the gateway's CPU per entry; the ratios are per-entry rate over the
   unary rate (target >= 10x, goal 20x) and unary CPU per call over CPU per entry (what the
   rate would be if the client kept up: capacity).
2. Misses (`cache-control: no-cache`, coalescing and the merge window off, so each entry is
   one upstream call and one cache store): unary at `--miss-rate` calls/s and batches of 100
   distinct users at the same entry rate (h2load open loop, `--miss-seconds` each); gateway
   CPU per entry of the batch over CPU per unary forwarded call (target <= 0.7).
3. A stalled stream consumer: 10,000 entries offered (cache hits) and no result read; the
   gateway's RSS growth once it stops reading (its in-flight gauge at the limit); target
   under 20 MB. Then the results are read and counted (none lost).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import grpc
from mlgw.batch.v1 import batch_pb2, batch_pb2_grpc
from mlgw.personalize_runtime.v1 import personalize_runtime_pb2 as rt

from tests.bench import h2load
from tests.bench.bench_gateway import cpu_seconds, environment, rss_mib
from tests.bench.processes import (
    STARTUP_TIMEOUT,
    EmulatorStats,
    ProcessStack,
    free_port,
    running,
)
from tests.support import eventually

CAMPAIGN = "arn:aws:personalize:us-east-1:000000000000:campaign/demo"
UNARY_PATH = "/mlgw.personalize_runtime.v1.PersonalizeRuntimeService/GetRecommendations"
BATCH_PATH = "/mlgw.batch.v1.BatchService/BatchGetRecommendations"
STREAM_LIMIT = 64
STALLED_ENTRIES = 10_000

#: Hits: users stay cached for the whole run; no rate limit in the way of the measurement.
HIT_TOML = (
    "[cache]\nuser_ttl_seconds = 3600.0\nmax_bytes = 268435456\n"
    "[limits]\nenabled = false\n"
    f"[batch]\nstream_max_in_flight = {STREAM_LIMIT}\n"
)
#: Misses: every entry is one upstream call (no coalescing, no merge window).
MISS_TOML = "[limits]\nenabled = false\n[coalesce]\nenabled = false\n[merge]\nwindow_ms = 0.0\n"


def recs(user: int) -> rt.GetRecommendationsRequest:
    return rt.GetRecommendationsRequest(campaign_arn=CAMPAIGN, user_id=f"user-{user}")


def batch_of(users: range) -> batch_pb2.BatchGetRecommendationsRequest:
    return batch_pb2.BatchGetRecommendationsRequest(requests=[recs(u) for u in users])


@dataclass
class Stack(ProcessStack):
    metrics_port: int = 0

    async def start(self) -> None:
        await self.start_emulator()
        self.metrics_port = free_port()
        self.gateway_service("hit", HIT_TOML, metrics_port=self.metrics_port)
        self.gateway_service("miss", MISS_TOML)
        for name in ("hit", "miss"):
            await self.services[name].start(self.layout.sut)
        async with asyncio.timeout(STARTUP_TIMEOUT):
            for name in ("hit", "miss"):
                await self.serving(name)


@dataclass
class Row:
    name: str
    entries: int
    seconds: float
    cpu_us_per_entry: float
    errors: int = 0
    note: str = ""

    @property
    def rate(self) -> float:
        return self.entries / self.seconds if self.seconds else 0.0

    def line(self) -> str:
        return (
            f"{self.name:<22} {self.rate:9.0f} entries/s  {self.entries:>8} entries  "
            f"errors {self.errors:>4}  gateway cpu {self.cpu_us_per_entry:6.1f} µs/entry  "
            f"{self.note}"
        )


async def h2load_row(
    stack: Stack,
    name: str,
    service: str,
    path: str,
    body: bytes,
    per_request: int,
    args: argparse.Namespace,
    *,
    rate: float | None = None,
    headers: Sequence[str] = (),
    clients: int = 8,
    streams: int = 16,
) -> Row:
    file = stack.tmp / f"{name}.bin"
    file.write_bytes(body)
    # Answer sizes vary (cache ages in the entries' metadata): no byte check for batches.
    size = None if per_request == 1 else 0
    url = f"http://{stack.address(service)}{path}"
    target = h2load.verified_target(name, url, file, headers, answer_bytes=size)
    pid = stack.services[service].pid
    cpu0 = cpu_seconds(pid)
    if rate is None:
        run = await h2load.closed_loop(
            target, args.seconds, 1.0, clients, streams, stack.layout.support
        )
    else:
        run = await h2load.fixed_rate(target, rate, args.seconds, stack.layout.support)
    cpu = cpu_seconds(pid) - cpu0
    s = run.summary
    entries = s.ok * per_request
    # h2load's span is of the timed requests; the CPU window also holds its warm-up.
    seconds = s.ok / s.achieved_rps if s.achieved_rps else 0.0
    timed = s.requests + (round(1.0 * s.achieved_rps) if rate is None else 0)
    cpu_per = cpu / max(1, timed * per_request) * 1e6
    return Row(name, entries, seconds, cpu_per, s.errors, s.note)


async def warm(channel: grpc.aio.Channel, users: int) -> None:
    stub = batch_pb2_grpc.BatchServiceStub(channel)
    for start in range(0, users, 1000):
        reply = await stub.BatchGetRecommendations(
            batch_of(range(start, min(users, start + 1000))), timeout=60
        )
        failed = [r for r in reply.results if not r.HasField("response")]
        if failed:
            raise RuntimeError(f"warm-up entries failed: {failed[0].error}")


async def stream_row(
    stack: Stack, channel: grpc.aio.Channel, args: argparse.Namespace, per_message: int
) -> Row:
    """4 streams, each writing its share of the users (`per_message` calls to a message)
    and reading the results concurrently, over and over for `--seconds`."""
    stub = batch_pb2_grpc.BatchServiceStub(channel)
    entries = [
        batch_pb2.StreamRecommendationsEntry(id=str(u), get_recommendations=recs(u))
        for u in range(args.users)
    ]
    pid = stack.services["hit"].pid
    deadline = time.perf_counter() + args.seconds
    answered = errors = 0

    async def one(share: list[batch_pb2.StreamRecommendationsEntry]) -> None:
        nonlocal answered, errors
        messages = [
            batch_pb2.StreamRecommendationsRequest(entries=share[i : i + per_message])
            for i in range(0, len(share), per_message)
        ]
        while time.perf_counter() < deadline:
            call = stub.StreamRecommendations()

            async def send(call: Any = call) -> None:
                for message in messages:
                    await call.write(message)
                await call.done_writing()

            sender = asyncio.ensure_future(send())
            async for response in call:
                answered += len(response.results)
                errors += sum(r.HasField("error") for r in response.results)
            await sender

    cpu0, start = cpu_seconds(pid), time.perf_counter()
    await asyncio.gather(*(one(entries[i::4]) for i in range(4)))
    seconds, cpu = time.perf_counter() - start, cpu_seconds(pid) - cpu0
    name = f"stream, {per_message}/message"
    return Row(name, answered, seconds, cpu / max(1, answered) * 1e6, errors)


async def metric(port: int, name: str) -> float:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/metrics") as response,
    ):
        text = await response.text()
    for line in text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def stalled_stream(stack: Stack, channel: grpc.aio.Channel) -> dict[str, Any]:
    """10,000 calls offered, one per message, and no result read until the gateway stalls."""
    stub = batch_pb2_grpc.BatchServiceStub(channel)
    pid = stack.services["hit"].pid
    reads = "mlgw_stream_entries_in_flight_per_stream_count"
    reads_before = await metric(stack.metrics_port, reads)
    before = rss_mib(pid)
    call = stub.StreamRecommendations()

    async def offer() -> None:
        for u in range(STALLED_ENTRIES):
            entry = batch_pb2.StreamRecommendationsEntry(id=str(u), get_recommendations=recs(u))
            await call.write(batch_pb2.StreamRecommendationsRequest(entries=[entry]))
        await call.done_writing()

    writer = asyncio.ensure_future(offer())

    async def stalled() -> bool:
        return await metric(stack.metrics_port, "mlgw_stream_entries_in_flight") >= STREAM_LIMIT

    await eventually(stalled, within=60.0)
    read = await metric(stack.metrics_port, reads) - reads_before
    rss = rss_mib(pid)
    received = 0
    async for response in call:
        received += len(response.results)
    await writer
    return {
        "rss_before_mib": before,
        "rss_stalled_mib": rss,
        "growth_mib": rss - before,
        "requests_read_when_stalled": read,
        "results_received_after": received,
    }


async def compare(args: argparse.Namespace) -> dict[str, Any]:
    h2load.ensure_h2load()
    async with running(Stack, args.layout, "bench-batch-") as stack:
        if stack.layout.support is not None:
            os.sched_setaffinity(0, {stack.layout.support})  # the stream client: CPU 1
        env = environment(stack.layout)
        print(json.dumps(env), flush=True)
        hit = f"127.0.0.1:{stack.ports['hit']}"
        options = [("grpc.max_receive_message_length", 64 << 20)]
        async with grpc.aio.insecure_channel(hit, options=options) as channel:
            await warm(channel, args.users)
            # First, on a gateway that has served only the warm-up batches.
            print("\n3. stalled stream consumer", flush=True)
            stall = await stalled_stream(stack, channel)
            print(json.dumps(stall), flush=True)
            print(f"\n1. cache hits ({args.users} users cached)", flush=True)
            unary_body = h2load.grpc_frame(recs(7))
            rows = [await h2load_row(stack, "unary", "hit", UNARY_PATH, unary_body, 1, args)]
            print(rows[-1].line(), flush=True)
            for size in (100, 1000):
                body = h2load.grpc_frame(batch_of(range(size)))
                row = await h2load_row(
                    stack, f"batch of {size}", "hit", BATCH_PATH, body, size, args,
                    clients=2, streams=4,
                )  # fmt: skip
                rows.append(row)
                print(row.line(), flush=True)
            for per_message in (1, 100):
                rows.append(await stream_row(stack, channel, args, per_message))
                print(rows[-1].line(), flush=True)
        print(f"\n2. misses at {args.miss_rate:g} entries/s (cache-control: no-cache)", flush=True)
        stats = EmulatorStats(stack.emulator_url)
        await stats.reset()
        no_cache = ["cache-control: no-cache"]
        miss_rate = args.miss_rate
        miss_args = argparse.Namespace(**{**vars(args), "seconds": args.miss_seconds})
        unary_miss = await h2load_row(
            stack, "unary miss", "miss", UNARY_PATH, h2load.grpc_frame(recs(3)), 1, miss_args,
            rate=miss_rate, headers=no_cache,
        )  # fmt: skip
        print(unary_miss.line(), flush=True)
        batch_miss = await h2load_row(
            stack, "batch of 100 miss", "miss", BATCH_PATH,
            h2load.grpc_frame(batch_of(range(20_000, 20_100))), 100, miss_args,
            rate=miss_rate / 100, headers=no_cache,
        )  # fmt: skip
        print(batch_miss.line(), flush=True)
        upstream, _ = await stats.calls_and_errors()
    unary = rows[0]
    ratios = {
        r.name: {
            "rate_ratio": r.rate / unary.rate if unary.rate else None,
            "capacity_ratio": unary.cpu_us_per_entry / r.cpu_us_per_entry,
        }
        for r in rows[1:]
    }
    miss_cpu_ratio = batch_miss.cpu_us_per_entry / unary_miss.cpu_us_per_entry
    print("\nsummary (side by side, one run):")
    for name, ratio in ratios.items():
        print(
            f"  {name:<20} per-entry rate {ratio['rate_ratio']:.1f}x unary, "
            f"capacity {ratio['capacity_ratio']:.1f}x unary (target >= 10x, goal 20x)"
        )
    print(
        f"  misses: batch CPU per entry {batch_miss.cpu_us_per_entry:.0f} µs vs unary "
        f"{unary_miss.cpu_us_per_entry:.0f} µs = {miss_cpu_ratio:.2f} (target <= 0.7); "
        f"upstream calls {upstream} for {unary_miss.entries + batch_miss.entries} entries"
    )
    print(
        f"  stalled stream: RSS growth {stall['growth_mib']:.1f} MiB with {STALLED_ENTRIES} "
        f"entries offered (target < 20 MB); {stall['requests_read_when_stalled']:.0f} requests "
        f"read when stalled, {stall['results_received_after']} results received after"
    )
    print(f"load average at the end: {os.getloadavg()} (other processes share these cores)")
    return {
        "environment": env,
        "hit_rows": [{**r.__dict__, "rate": r.rate} for r in rows],
        "ratios": ratios,
        "miss_rows": [{**r.__dict__, "rate": r.rate} for r in (unary_miss, batch_miss)],
        "miss_cpu_ratio": miss_cpu_ratio,
        "upstream_calls_on_misses": upstream,
        "stalled_stream": stall,
    }


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=8.0, help="per measurement")
    p.add_argument("--users", type=int, default=10_000)
    p.add_argument("--miss-rate", type=float, default=400.0, help="offered entries/s on misses")
    p.add_argument("--miss-seconds", type=float, default=10.0)
    p.add_argument("--layout", choices=("split", "none"), default="split")
    p.add_argument("--json", type=Path, help="also write the results here")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    result = asyncio.run(compare(args))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
        print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
