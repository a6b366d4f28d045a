"""Hostile sizes cost little to reject: `python -m tests.bench.bench_reject`.

Part 1, in this process, per hostile shape (each under the 1 MiB receive limit): the time
to parse the request in full (`FromString`) and the gateway's whole time to reject it from
the received bytes: its edge parser (`request_parser`: a shallow count first for big
bodies) and the pipeline of `Gateway.stages()`. Side by side, the old path: a full parse
and the same pipeline without its `Precheck` stage (the cache key, the conversion and the
full validation then see the whole request). Best of `--repeat`.

Part 2, processes: the emulator and one gateway (split layout: the gateway alone on
CPU 0, the emulator and both callers on CPU 1). A victim caller sends GetRecommendations
at a fixed rate (`--victim hit`: one request, answered from the gateway's cache, so its
latency is the gateway's alone; `miss`: a new user each call); its p50 and p99 alone, then
with a hostile caller sending the 50,000-entry map at 10 requests per second, in
alternating rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.message import Message
from mlgw.personalize_runtime.v1 import personalize_runtime_pb2 as rt

from gateway.config import Config
from gateway.errors import InvalidRequest
from gateway.operations import OPERATIONS, Operation
from gateway.pipeline import Stage, compose
from gateway.pipeline.call import Call
from gateway.pipeline.validate import Precheck, request_parser
from gateway.server import Gateway
from tests.bench.processes import Layout, ProcessStack, bounded

CAMPAIGN = "arn:aws:personalize:us-east-1:000000000000:campaign/demo"
OPS = {op.name: op for op in OPERATIONS}


def hostile_shapes() -> dict[str, tuple[Operation, bytes]]:
    """name -> (operation, serialized request): a big map, a big string, a big list."""
    big_map = rt.GetRecommendationsRequest(
        campaign_arn=CAMPAIGN, user_id="u", context={f"k{i:05d}": "v" for i in range(50_000)}
    )
    big_string = rt.GetRecommendationsRequest(campaign_arn=CAMPAIGN, user_id="u" * 638_000)
    big_list = rt.GetPersonalizedRankingRequest(
        campaign_arn=CAMPAIGN, user_id="u", input_list=[f"item-{i}" for i in range(80_000)]
    )
    shapes = {
        "map 50,000 entries": (OPS["GetRecommendations"], big_map.SerializeToString()),
        "string 638,000 chars": (OPS["GetRecommendations"], big_string.SerializeToString()),
        "list 80,000 items": (OPS["GetPersonalizedRanking"], big_list.SerializeToString()),
    }
    limit = Config.from_dict({}).server.max_receive_message_bytes
    assert all(len(body) < limit for _, body in shapes.values()), "over the receive limit"
    return shapes


def best_of(repeat: int, run: Callable[[], float]) -> float:
    return min(run() for _ in range(repeat))


async def reject_seconds(
    op: Operation, parse: Callable[[bytes], Message], stages: Sequence[Stage], body: bytes
) -> float:
    """From the received bytes to the rejection: the parse and the pipeline."""

    async def never(call: Call) -> Message:
        raise AssertionError("a hostile request got past validation")

    handler = compose(op, stages, never)
    deadline = asyncio.get_running_loop().time() + 30
    started = time.perf_counter()
    with contextlib.suppress(InvalidRequest):
        await handler(Call(op, parse(body), deadline))
    return time.perf_counter() - started


async def part_costs(repeat: int) -> list[dict[str, Any]]:
    stages = Gateway(Config.from_dict({})).stages()
    assert isinstance(stages[0], Precheck)
    rows = []
    for name, (op, body) in hostile_shapes().items():

        def parse(op: Operation = op, body: bytes = body) -> float:
            started = time.perf_counter()
            op.request.FromString(body)
            return time.perf_counter() - started

        parse_s = best_of(repeat, parse)
        guarded = request_parser(op)
        now = [await reject_seconds(op, guarded, stages, body) for _ in range(repeat)]
        full = op.request.FromString
        old = [await reject_seconds(op, full, stages[1:], body) for _ in range(repeat)]
        rows.append(
            {"shape": name, "bytes": len(body), "parse_ms": parse_s * 1e3,
             "reject_ms": min(now) * 1e3, "ratio": min(now) / parse_s,
             "old_ms": min(old) * 1e3}
        )  # fmt: skip
    return rows


# ---- part 2: another caller's latency beside a hostile one ------------------------------


class Stack(ProcessStack):
    async def start(self) -> None:
        await self.start_emulator()
        gateway = self.gateway_service("gateway", "")
        await gateway.start(self.layout.sut)
        await bounded(self.serving("gateway"))


async def victim(
    channel: grpc.aio.Channel, rate: float, seconds: float, tag: str | None
) -> list[float]:
    """Fixed-rate calls (one user if `tag` is None, else a new one each); latencies in ms."""
    method = OPS["GetRecommendations"].full_method
    call = channel.unary_unary(method, rt.GetRecommendationsRequest.SerializeToString, None)
    latencies: list[float] = []

    async def one(i: int) -> None:
        user = "victim" if tag is None else f"{tag}-{i}"
        request = rt.GetRecommendationsRequest(campaign_arn=CAMPAIGN, user_id=user)
        started = time.perf_counter()
        await call(request, timeout=10)
        latencies.append((time.perf_counter() - started) * 1e3)

    await paced(rate, seconds, one)
    return latencies


async def hostile(channel: grpc.aio.Channel, body: bytes, rate: float, seconds: float) -> None:
    method = OPS["GetRecommendations"].full_method
    call = channel.unary_unary(method, None, None)  # the bytes as they are

    async def one(_: int) -> None:
        with contextlib.suppress(grpc.aio.AioRpcError):  # INVALID_ARGUMENT, as expected
            await call(body, timeout=10)

    await paced(rate, seconds, one)


async def paced(rate: float, seconds: float, one: Callable[[int], Any]) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    tasks = []
    for i in range(int(rate * seconds)):
        delay = start + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)  # pacing an open-loop load, not synchronisation
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)


def percentile(values: Sequence[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


async def part_latency(args: argparse.Namespace) -> dict[str, Any]:
    layout = Layout.choose(args.layout)
    if layout.support is not None:
        os.sched_setaffinity(0, {layout.support})  # the callers beside the emulator
    body = hostile_shapes()["map 50,000 entries"][1]
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(Path(tmp), layout)
        try:
            await stack.start()
            address = stack.address("gateway")
            async with (
                grpc.aio.insecure_channel(address) as mine,
                grpc.aio.insecure_channel(address) as theirs,
            ):
                hit = args.victim == "hit"
                await victim(mine, args.rate, 2.0, None if hit else "warm")
                alone: list[float] = []
                beside: list[float] = []
                for round_ in range(args.rounds):
                    alone += await victim(
                        mine, args.rate, args.seconds, None if hit else f"a{round_}"
                    )
                    load = asyncio.create_task(hostile(theirs, body, 10.0, args.seconds))
                    beside += await victim(
                        mine, args.rate, args.seconds, None if hit else f"b{round_}"
                    )
                    await load
        finally:
            await stack.stop()
    return {
        "layout": layout.describe(),
        "alone": (percentile(alone, 50), percentile(alone, 99), len(alone)),
        "beside": (percentile(beside, 50), percentile(beside, 99), len(beside)),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="part 1: best of N")
    parser.add_argument("--rate", type=float, default=100.0, help="victim calls per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="per round and mode")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--layout", choices=("split", "none"), default="split")
    parser.add_argument("--victim", choices=("hit", "miss"), default="hit")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    print("part 1: parse vs reject, in process (best of", args.repeat, ")")
    print(f"{'shape':<22}{'bytes':>9}{'full parse ms':>15}{'reject ms':>11}"
          f"{'reject/parse':>14}{'old path ms':>13}")  # fmt: skip
    for row in asyncio.run(part_costs(args.repeat)):
        print(f"{row['shape']:<22}{row['bytes']:>9}{row['parse_ms']:>15.2f}"
              f"{row['reject_ms']:>11.3f}{row['ratio']:>14.2f}{row['old_ms']:>13.2f}")  # fmt: skip
    print("(target: reject/parse at most 2; old path: full parse, key, conversion, validation)")
    figures = asyncio.run(part_latency(args))
    print(f"\npart 2: victim ({args.victim}s) at {args.rate:.0f} req/s, hostile map at 10 req/s;"
          f" layout {figures['layout']}")  # fmt: skip
    (p50a, p99a, na), (p50b, p99b, nb) = figures["alone"], figures["beside"]
    print(f"{'':<26}{'p50 ms':>8}{'p99 ms':>8}{'calls':>7}")
    print(f"{'alone':<26}{p50a:>8.2f}{p99a:>8.2f}{na:>7}")
    print(f"{'beside a hostile caller':<26}{p50b:>8.2f}{p99b:>8.2f}{nb:>7}")
    print(f"p50 x{p50b / p50a:.2f}, p99 x{p99b / p99a:.2f} (target: p99 at most x1.20)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
