"""Overload benchmark: goodput at 3x an upstream rate limit, gateway vs botocore adaptive.

    python -m tests.bench.bench_overload [--limit 100] [--factor 3] [--seconds 12]
        [--warmup 3] [--deadline 1.0] [--layout split|none] [--json out.json]

The emulator (a subprocess) limits GetRecommendations on the demo campaign to `--limit`
calls per second (its token bucket, burst = one second's worth, as AWS buckets usually
are) and answers ThrottlingException beyond it. A load generator (its own process) offers
`factor x limit` calls per second, open loop (call i starts at t0 + i / rate whatever
happened to earlier calls), every call with a `--deadline` and its own user (so no cache,
coalescing or merging can help). Rows, one after the other, each on a fresh emulator
bucket and fresh gateway processes:

- `gw-config`: the gateway with the campaign's rate configured (`[limits.resources]` =
  the limit);
- `gw-learn`: the gateway with no rate configured: AWS's default ceiling (500/s), the real
  limit learnt from throttles;
- `gw-redis`: two gateway processes on one Redis (shared buckets, rate configured), the
  load split between them (skipped when Redis does not answer);
- `direct`: one aiobotocore client in botocore's adaptive retry mode (`max_attempts` 3);
- `direct-x4`: four aiobotocore clients in adaptive mode, a quarter of the load each (four
  services, each with its own SDK limiter: the multi-tenant case AWS advises against).

Measured: **goodput** = successful answers received within the deadline per second,
counted over the window after `--warmup` (the emulator's bucket starts full, which would
flatter the first second) to the end of the offered load; the same over the whole run;
the emulator's calls and throttles for the campaign (its own counters); for the gateway,
the latency of its rejections (RATE_LIMITED decided on arrival: the wait would not fit the
deadline) p50/p99 over the same window, as the client sees it and (`in-gateway`, from the
gateway's own request-duration histogram over all calls of the row: bucket bounds) as the
gateway spends it, and the calls that waited in its queue and were rejected later
(`expired`); timeouts (no answer within the deadline). Targets: goodput >= 95% of the limit;
rejections p99 <= 5 ms.

CPU layout (`--layout split`, default): the process under test (the gateway, or for the
direct rows the aiobotocore clients) on CPU 0, the emulator and the gRPC load generator on
CPU 1. Nothing here asserts: it prints one table and, with `--json`, writes the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import uvloop
from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from mlgw.personalize_runtime.v1 import personalize_runtime_pb2 as rt
from mlgw.personalize_runtime.v1 import personalize_runtime_pb2_grpc as rt_grpc

from gateway.demo import DEMO_CAMPAIGN
from tests.bench.h2load import percentile
from tests.bench.processes import (
    STARTUP_TIMEOUT,
    EmulatorStats,
    Layout,
    ProcessStack,
    Service,
    free_port,
    run_json,
)

#: Warm-up calls go to another campaign, so they never touch the limited bucket.
WARMUP_CAMPAIGN = DEMO_CAMPAIGN.replace("campaign/demo", "campaign/popular")
REDIS_URL = "redis://127.0.0.1:6379/0"
_IMMEDIATE = {"deadline", "max_wait", "queue_full", "displaced"}
#: gRPC connections the load generator opens to each gateway.
_CONNECTIONS = 8


# --- the load generator (its own process) ------------------------------------------------


@dataclass
class Record:
    end: float  # seconds since t0
    seconds: float
    outcome: str  # "ok", "timeout", or code/reason[/cause]


@dataclass
class Load:
    records: list[Record] = field(default_factory=list)


def _grpc_outcome(error: grpc.aio.AioRpcError) -> str:
    if error.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
        return "timeout"
    status = None
    with contextlib.suppress(Exception):
        status = rpc_status.from_call(error)  # type: ignore[arg-type]
    reason = cause = ""
    for box in status.details if status is not None else ():
        info = error_details_pb2.ErrorInfo()
        if box.Unpack(info):
            reason, cause = info.reason, info.metadata.get("cause", "")
    if not reason:  # not the gateway's answer: say what the transport said
        return f"{error.code().name}: {(error.details() or '')[:48]}"
    return "/".join(p for p in (error.code().name, reason, cause) if p)


async def _open_loop(
    send: Callable[[int], Awaitable[str]], rate: float, seconds: float, deadline: float
) -> tuple[Load, float]:
    loop = asyncio.get_running_loop()
    load = Load()
    start = loop.time()
    clock = time.perf_counter  # loop.time() is millisecond-grained under uvloop
    zero = clock()

    async def timed(i: int) -> None:
        began = clock()
        try:
            async with asyncio.timeout(deadline + 0.5):  # a backstop; calls carry deadlines
                outcome = await send(i)
        except TimeoutError:
            outcome = "timeout"
        except Exception as exc:
            outcome = f"error/{type(exc).__name__}"
        end = clock()
        if outcome == "ok" and end - began > deadline:
            outcome = "timeout"  # an answer after the deadline is no goodput
        load.records.append(Record(end - zero, end - began, outcome))

    tasks = []
    for i in range(int(rate * seconds)):
        delay = start + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(timed(i)))
    # A call still unanswered 2 s past its deadline (its cancellation not honoured either:
    # botocore's adaptive limiter under aiobotocore sleeps holding an asyncio.Condition, and
    # a cancelled waiter must first get the lock back) is recorded as hung and left behind.
    _, pending = await asyncio.wait(tasks, timeout=deadline + 2.0)
    for _ in pending:
        load.records.append(Record(float("inf"), float("inf"), "hung"))
    return load, start


async def drive(args: argparse.Namespace) -> dict[str, Any]:
    deadline = args.deadline
    if args.target == "gateway":
        # Several connections per gateway, as a real client pool would have: one HTTP/2
        # connection caps concurrent streams (256 here), and gRPC's rapid-reset defence
        # refuses streams on a connection whose client cancels many (expired deadlines).
        channels = [
            grpc.aio.insecure_channel(e, options=[("grpc.use_local_subchannel_pool", 1)])
            for e in args.endpoint.split(",")
            for _ in range(_CONNECTIONS)
        ]
        stubs = [rt_grpc.PersonalizeRuntimeServiceStub(c) for c in channels]
        for stub in stubs:
            for i in range(5):
                warm = rt.GetRecommendationsRequest(campaign_arn=WARMUP_CAMPAIGN, user_id=f"w{i}")
                await stub.GetRecommendations(warm, timeout=10)

        async def send(i: int) -> str:
            request = rt.GetRecommendationsRequest(
                campaign_arn=DEMO_CAMPAIGN, user_id=f"{args.users}-{i}", num_results=10
            )
            try:
                await stubs[i % len(stubs)].GetRecommendations(request, timeout=deadline)
            except grpc.aio.AioRpcError as error:
                return _grpc_outcome(error)
            return "ok"

        try:
            load, _ = await _open_loop(send, args.rate, args.seconds, deadline)
        finally:
            for channel in channels:
                await channel.close()
    else:
        session = AioSession()
        config = AioConfig(
            retries={"mode": "adaptive", "max_attempts": 3},
            max_pool_connections=256,
            connect_timeout=2,
            read_timeout=deadline + 1,
        )
        async with contextlib.AsyncExitStack() as stack:
            clients = [
                await stack.enter_async_context(
                    session.create_client(
                        "personalize-runtime",
                        region_name="us-east-1",
                        endpoint_url=args.endpoint,
                        aws_access_key_id="bench",
                        aws_secret_access_key="bench",
                        config=config,
                    )
                )
                for _ in range(args.clients)
            ]
            for client in clients:
                for i in range(5):
                    await client.get_recommendations(campaignArn=WARMUP_CAMPAIGN, userId=f"w{i}")

            async def send(i: int) -> str:
                client = clients[i % len(clients)]
                try:
                    async with asyncio.timeout(deadline):
                        await client.get_recommendations(
                            campaignArn=DEMO_CAMPAIGN, userId=f"{args.users}-{i}", numResults=10
                        )
                except TimeoutError:
                    return "timeout"
                except Exception as exc:
                    code = getattr(exc, "response", {}).get("Error", {}).get("Code")
                    if code:
                        return f"aws/{code}"
                    return f"error/{type(exc).__name__}: {str(exc)[:40]}"
                return "ok"

            load, _ = await _open_loop(send, args.rate, args.seconds, deadline)
    return summarize(load, args)


async def _drive_and_exit(args: argparse.Namespace) -> None:
    """`drive`, print its figures, and leave at once: hung calls (see `_open_loop`) ignore
    cancellation, so the event loop's shutdown would wait for them."""
    result = await drive(args)
    print(json.dumps(result), flush=True)
    os._exit(0)


def _timeline(load: Load) -> dict[str, dict[str, int]]:
    """Outcomes by the second they ended in (kinds shortened to their last part)."""
    out: dict[str, Counter[str]] = {}
    for r in load.records:
        second = "hung" if r.end == float("inf") else str(int(r.end))
        out.setdefault(second, Counter())[r.outcome.split("/")[-1].split(":")[0]] += 1
    return {k: dict(v) for k, v in sorted(out.items(), key=lambda kv: (len(kv[0]), kv[0]))}


def summarize(load: Load, args: argparse.Namespace) -> dict[str, Any]:
    window = args.seconds - args.warmup
    ok = [r for r in load.records if r.outcome == "ok"]
    steady = [r for r in ok if args.warmup <= r.end <= args.seconds]
    # Over the measured window, like goodput (not the processes' first second of life).
    rejected = sorted(
        r.seconds
        for r in load.records
        if r.outcome.split("/")[-1] in _IMMEDIATE and args.warmup <= r.end <= args.seconds
    )
    expired = sorted(r.seconds for r in load.records if r.outcome.endswith("/expired"))
    latencies = sorted(r.seconds for r in ok)
    return {
        "offered": len(load.records),
        "ok": len(ok),
        "goodput": len(steady) / window,
        "goodput_whole": len(ok) / args.seconds,
        "outcomes": dict(Counter(r.outcome for r in load.records)),
        "ok_p50_ms": percentile(latencies, 50) * 1000 if latencies else None,
        "ok_p99_ms": percentile(latencies, 99) * 1000 if latencies else None,
        "rejections": len(rejected),
        "rejection_p50_ms": percentile(rejected, 50) * 1000 if rejected else None,
        "rejection_p99_ms": percentile(rejected, 99) * 1000 if rejected else None,
        "timeline": _timeline(load),
        "expired": len(expired),
        "hung": sum(r.outcome == "hung" for r in load.records),
        "expired_max_ms": expired[-1] * 1000 if expired else None,
    }


# --- the runs -----------------------------------------------------------------------------


@dataclass
class Stack(ProcessStack):
    """The emulator, limiting the campaign; each row starts and stops its own gateways."""

    #: TOML appended to every gateway's config (`--gateway-extra`).
    gateway_extra: str = ""

    async def limit(self, rate: float) -> None:
        """A fresh, full bucket for the campaign, and zeroed counters."""
        faults = {"tps": [{"arn": DEMO_CAMPAIGN, "rate": rate, "burst": rate}]}
        async with (
            aiohttp.ClientSession() as session,
            session.put(f"{self.emulator_url}/_emulator/faults", json=faults) as response,
        ):
            assert response.status == 200, await response.text()
        await EmulatorStats(self.emulator_url).reset()

    async def counts(self) -> tuple[int, int]:
        """The campaign's calls and throttles since `limit`."""
        stats = await EmulatorStats(self.emulator_url).snapshot()
        calls = stats["calls_by_arn"].get(DEMO_CAMPAIGN, {}).get("GetRecommendations", 0)
        throttled = stats["throttled_by_arn"].get(DEMO_CAMPAIGN, {}).get("GetRecommendations", 0)
        return int(calls), int(throttled)


@contextlib.asynccontextmanager
async def gateways(
    stack: Stack, name: str, extra: str, count: int = 1
) -> AsyncIterator[tuple[list[str], list[str]]]:
    """Start `count` gateways; yields their gRPC endpoints and /metrics URLs."""
    services: list[Service] = []
    metrics_urls = []
    try:
        for index in range(count):
            metrics_port = free_port()
            service = stack.gateway_service(
                f"{name}-{index}",
                extra + stack.gateway_extra,
                metrics_port=metrics_port,
                log_level="ERROR",
            )
            await service.start(stack.layout.sut)
            services.append(service)
            metrics_urls.append(f"http://127.0.0.1:{metrics_port}/metrics")
        async with asyncio.timeout(STARTUP_TIMEOUT):
            for service in services:
                await stack.serving(service.name)
        yield [stack.address(service.name) for service in services], metrics_urls
    finally:
        for service in services:
            await service.stop()


_BUCKET = re.compile(
    r'^mlgw_request_duration_seconds_bucket\{(?=[^}]*method="GetRecommendations")'
    r'[^}]*le="([^"]+)"[^}]*\} (\S+)$',
    re.M,
)


async def server_latency(urls: Sequence[str]) -> dict[str, float | None]:
    """The gateways' own time per RPC (from their request-duration histograms, all calls
    of the row): the upper bounds of the buckets holding the 50th and 99th percentiles."""
    totals: Counter[float] = Counter()
    async with aiohttp.ClientSession() as session:
        for url in urls:
            async with session.get(url) as response:
                text = await response.text()
            for le, count in _BUCKET.findall(text):
                totals[float(le)] += float(count)
    bounds = sorted(totals)
    total = totals[bounds[-1]] if bounds else 0.0

    def bound(q: float) -> float | None:
        for le in bounds:
            if totals[le] >= q * total:
                return le * 1000
        return None

    return {"p50_le_ms": bound(0.5), "p99_le_ms": bound(0.99), "calls": total}


_LIMITS_LINE = re.compile(
    r"^(mlgw_(?:rate_limit_shared_\w+|rate_limit_decreases_total|upstream_throttles_total|"
    r"retries_total|retries_denied_total|admission_rejections_total)(?:\{[^}]*\})?) (\S+)$",
    re.M,
)


async def limits_metrics(urls: Sequence[str]) -> dict[str, float]:
    """The gateways' overload counters after the row, summed over processes."""
    totals: Counter[str] = Counter()
    async with aiohttp.ClientSession() as session:
        for url in urls:
            async with session.get(url) as response:
                text = await response.text()
            for name, value in _LIMITS_LINE.findall(text):
                totals[name] += float(value)
    return dict(totals)


async def redis_available() -> bool:
    try:
        from redis.asyncio import Redis

        client = Redis.from_url(REDIS_URL, socket_connect_timeout=0.5)
        try:
            async with asyncio.timeout(1.0):
                await client.ping()
        finally:
            await client.aclose()
    except Exception:
        return False
    return True


async def compare(args: argparse.Namespace) -> dict[str, Any]:
    layout = Layout.choose(args.layout)
    rate = args.limit * args.factor
    rows: list[dict[str, Any]] = []
    common = [
        "--rate", f"{rate:g}", "--seconds", f"{args.seconds:g}", "--warmup", f"{args.warmup:g}",
        "--deadline", f"{args.deadline:g}",
    ]  # fmt: skip
    budget = args.seconds * 3 + 60
    configured = (
        f'[limits.resources."{DEMO_CAMPAIGN}"]\n'
        f"rate = {args.limit:g}\nburst = {max(1.0, args.limit / 10):g}\n"
    )
    plans: list[tuple[str, str, int, str]] = [
        ("gw-config", configured, 1, ""),
        ("gw-learn", "", 1, ""),
        # Nearly every call rejected (the campaign's rate is 1/s): the rejection path alone.
        ("gw-reject", f'[limits.resources."{DEMO_CAMPAIGN}"]\nrate = 1\nburst = 1\n', 1, ""),
    ]
    if await redis_available():
        prefix = f"mlgw:bench:{int(time.time())}:"
        shared = (
            f'[redis]\nurl = "{REDIS_URL}"\n[limits]\nreplicas = 2\n'
            f'redis_key_prefix = "{prefix}"\n' + configured
        )
        plans.append(("gw-redis", shared, 2, ""))
    else:
        print("redis is not answering on 127.0.0.1:6379: gw-redis skipped", flush=True)
    plans += [("direct", "", 1, "1"), ("direct-x4", "", 4, "4")]
    if args.only:
        plans = [plan for plan in plans if plan[0] in args.only.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-overload-") as tmp:
        stack = Stack(Path(tmp), layout, gateway_extra=args.gateway_extra.replace("\\n", "\n"))
        try:
            await stack.start_emulator()
            for name, extra, count, clients in plans:
                driver = [sys.executable, "-m", "tests.bench.bench_overload", "drive", *common]
                # Users never seen before (no cache tier, not even Redis's, can answer).
                driver += ["--users", f"u{time.time_ns()}"]
                if clients:
                    await stack.limit(args.limit)
                    argv = [*driver, "--target", "direct", "--endpoint", stack.emulator_url]
                    argv += ["--clients", clients]
                    result = await run_json(argv, layout.sut, budget)
                else:
                    async with gateways(stack, name, extra, count) as (endpoints, urls):
                        await stack.limit(args.limit)
                        argv = [*driver, "--target", "gateway"]
                        argv += ["--endpoint", ",".join(endpoints)]
                        result = await run_json(argv, layout.support, budget)
                        result["server"] = await server_latency(urls)
                        result["limits_metrics"] = await limits_metrics(urls)
                calls, throttled = await stack.counts()
                row = {"name": name, **result, "upstream_calls": calls, "throttled": throttled}
                row["throttled_pct"] = 100 * throttled / calls if calls else 0.0
                row["goodput_pct"] = 100 * row["goodput"] / args.limit
                rows.append(row)
                print(_line(row), flush=True)
        finally:
            await stack.stop()
    return {
        "limit": args.limit,
        "offered_rate": rate,
        "seconds": args.seconds,
        "warmup": args.warmup,
        "deadline": args.deadline,
        "layout": layout.describe(),
        "rows": rows,
    }


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _line(row: dict[str, Any]) -> str:
    return (
        f"{row['name']:<10} goodput {row['goodput']:6.1f}/s ({row['goodput_pct']:5.1f}%)  "
        f"whole {row['goodput_whole']:6.1f}/s  ok {row['ok']:>5}/{row['offered']:<5} "
        f"upstream {row['upstream_calls']:>5} throttled {row['throttled']:>5} "
        f"({row['throttled_pct']:4.1f}%)  ok p50/p99 {_ms(row['ok_p50_ms'])}/"
        f"{_ms(row['ok_p99_ms'])} ms  rejected {row['rejections']} "
        f"p50/p99 {_ms(row['rejection_p50_ms'])}/{_ms(row['rejection_p99_ms'])} ms  "
        f"expired {row['expired']}  {_server(row)}{row['outcomes']}"
    )


def _server(row: dict[str, Any]) -> str:
    server = row.get("server")
    if not server:
        return ""
    return f"in-gateway p50/p99 <= {_ms(server['p50_le_ms'])}/{_ms(server['p99_le_ms'])} ms  "


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench_overload", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command")
    drive_p = sub.add_parser("drive", help="(internal) the load generator process")
    for q in (p, drive_p):
        q.add_argument("--seconds", type=float, default=12.0)
        q.add_argument("--warmup", type=float, default=3.0)
        q.add_argument("--deadline", type=float, default=1.0)
    p.add_argument("--limit", type=float, default=100.0, help="the emulator's calls/s")
    p.add_argument("--factor", type=float, default=3.0, help="offered load / limit")
    p.add_argument("--layout", choices=("split", "none"), default="split")
    p.add_argument("--json", help="write the figures here")
    p.add_argument("--only", help="comma-separated rows to run (default: all)")
    p.add_argument(
        "--gateway-extra",
        default="",
        help=r'TOML added to each gateway, e.g. "[merge]\nwindow_ms = 0"',
    )
    drive_p.add_argument("--target", choices=("gateway", "direct"), required=True)
    drive_p.add_argument("--endpoint", required=True)
    drive_p.add_argument("--rate", type=float, required=True)
    drive_p.add_argument("--clients", type=int, default=1)
    drive_p.add_argument("--users", default="user", help="user id prefix (unique per row)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "drive":
        uvloop.run(_drive_and_exit(args))
        return 0
    figures = uvloop.run(compare(args))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
