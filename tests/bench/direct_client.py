"""The baseline: a service calling the emulator straight through aiobotocore, no gateway.

One process, one event loop (uvloop, as the gateway), one long-lived personalize-runtime
client configured like the gateway's own (big connection pool, botocore retries off,
parameter validation off: the gateway validates before its client, so its client skips
it too). The difference between the gateway's latency and this one is then the gRPC hop
plus the gateway's pipeline, not a client-configuration difference.

Open loop (`--rate`): call i is scheduled at t0 + i/rate and started without waiting for
earlier calls. Latency is timed from the moment the call actually starts (like h2load,
which times from the moment it submits a request), and how late starts were against their
schedule is reported separately as `lag`, so a saturated client cannot hide behind it.
Closed loop (`--concurrency`): that many workers call back to back for `--seconds`.

Prints one JSON object (the Summary fields plus `lag_p99_ms`) on stdout. With `--serve`
it prints `{"ready": true}` once warm, then answers each JSON line on stdin (e.g.
`{"rate": 200, "count": 1600}` or `{"concurrency": 128, "seconds": 8}`) with one.

    python -m tests.bench.direct_client --endpoint http://127.0.0.1:4566 --rate 200 --count 2000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import uvloop
from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession

from tests.bench.h2load import percentile, summarize

DEMO_CAMPAIGN = "arn:aws:personalize:us-east-1:000000000000:campaign/demo"
_MAX_COUNT = 1_000_000
_MAX_SECONDS = 3600.0
_CALL_TIMEOUT = 10.0

Call = Callable[[], Awaitable[Any]]


@dataclass
class Samples:
    latencies: list[float] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)
    errors: int = 0
    unfinished: int = 0
    first_start: float = 0.0
    last_end: float = 0.0

    def record(self, start: float, end: float) -> None:
        self.latencies.append(end - start)
        self.last_end = max(self.last_end, end)


def client_config(pool: int) -> AioConfig:
    return AioConfig(
        max_pool_connections=pool,
        retries={"total_max_attempts": 1, "mode": "standard"},
        parameter_validation=False,
        connect_timeout=2,
        read_timeout=_CALL_TIMEOUT,
    )


async def _timed(call: Call, samples: Samples, due: float | None) -> None:
    start = time.perf_counter()
    if due is not None:
        samples.lags.append(max(0.0, start - due))
    try:
        async with asyncio.timeout(_CALL_TIMEOUT):
            reply = await call()
        if not reply.get("itemList"):
            raise RuntimeError("empty itemList")
    except Exception:
        samples.errors += 1
        return
    samples.record(start, time.perf_counter())


async def _acquire(slots: asyncio.Semaphore, until: float) -> bool:
    """Take a slot, waiting at most until `until` (no timer when one is free)."""
    if not slots.locked():
        await slots.acquire()
        return True
    try:
        await asyncio.wait_for(slots.acquire(), max(0.0, until - time.perf_counter()))
    except TimeoutError:
        return False
    return True


async def open_loop(call: Call, rate: float, count: int, cap: float, max_in_flight: int) -> Samples:
    """Start call i at t0 + i/rate whatever the state of earlier calls; stop at t0 + cap.

    At most `max_in_flight` calls run at once (h2load likewise caps streams per
    connection): an overloaded client then falls behind, visibly in `lag`, instead of
    piling up thousands of calls that all time out. Calls not started or not answered by
    the cap count as errors (`unfinished`), so the run ends on time and says so.
    """
    samples = Samples()
    slots = asyncio.Semaphore(max_in_flight)
    tasks: set[asyncio.Task[None]] = set()
    t0 = time.perf_counter() + 0.01
    samples.first_start = t0
    started = 0
    for i in range(count):
        due = t0 + i / rate
        if due > t0 + cap:
            break
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if not await _acquire(slots, t0 + cap):
            break
        task = asyncio.create_task(_timed(call, samples, due))
        task.add_done_callback(lambda _: slots.release())
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        started += 1
    if tasks:
        await asyncio.wait(tasks, timeout=max(0.0, t0 + cap - time.perf_counter()))
    pending = list(tasks)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    samples.unfinished = count - started + len(pending)
    # Failed and unfinished calls overlap (a cancelled call may surface as an aiohttp
    # error), so errors are simply the calls that did not succeed.
    samples.errors = count - len(samples.latencies)
    return samples


async def closed_loop(call: Call, concurrency: int, seconds: float) -> Samples:
    samples = Samples()
    samples.first_start = time.perf_counter()
    stop_at = samples.first_start + seconds

    async def worker() -> None:
        while time.perf_counter() < stop_at and len(samples.latencies) < _MAX_COUNT:
            await _timed(call, samples, None)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return samples


async def run(args: argparse.Namespace) -> None:
    session = AioSession()
    params = {"campaignArn": args.campaign_arn, "userId": args.user_id, "numResults": 25}
    async with session.create_client(
        "personalize-runtime",
        region_name="us-east-1",
        endpoint_url=args.endpoint,
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
        config=client_config(max(args.max_in_flight, args.concurrency)),
    ) as client:

        def call() -> Awaitable[Any]:
            pending: Awaitable[Any] = client.get_recommendations(**params)
            return pending

        await _warm_up(call, args.warmup)
        if not args.serve:
            _emit(await measure(call, vars(args)))
            return
        # One measurement per stdin line, until EOF: the bench keeps this process (and its
        # warm client) for the whole run instead of paying start-up for every row.
        _emit({"ready": True})
        while line := await asyncio.to_thread(sys.stdin.readline):
            _emit(await measure(call, {**vars(args), **json.loads(line)}))


def _emit(result: dict[str, Any]) -> None:
    print(json.dumps(result), flush=True)


async def measure(call: Call, spec: dict[str, Any]) -> dict[str, Any]:
    """Open loop when spec["rate"] is set (rate, count), else closed (concurrency, seconds)."""
    cpu0 = time.process_time()
    rate = float(spec.get("rate") or 0.0)
    if rate > 0:
        count = min(int(spec["count"]), _MAX_COUNT)
        cap = count / rate * 1.5 + 2
        samples = await open_loop(call, rate, count, cap, int(spec["max_in_flight"]))
        mode = f"rate {rate:g}"
    else:
        concurrency = int(spec["concurrency"])
        seconds = min(float(spec["seconds"]), _MAX_SECONDS)
        samples = await closed_loop(call, concurrency, seconds)
        mode = f"closed {concurrency}"
    return _report(samples, mode, rate or None, time.process_time() - cpu0)


async def _warm_up(call: Call, count: int) -> None:
    """Connections, credential resolution and botocore's lazy caches, off the clock."""
    reply = await call()
    if not reply.get("itemList"):
        raise RuntimeError(f"the emulator answered without items: {reply}")
    for _ in range(count):
        await call()


def _report(samples: Samples, mode: str, rate: float | None, cpu: float) -> dict[str, Any]:
    span = samples.last_end - samples.first_start
    summary = summarize("direct", mode, rate, samples.latencies, samples.errors, span)
    values = summary.as_dict()
    values["cpu_us_per_req"] = cpu / max(1, summary.ok) * 1e6
    values["lag_p99_ms"] = percentile(sorted(samples.lags), 99) * 1000
    if samples.unfinished:
        values["note"] = f"cut at 1.5x the planned time: {samples.unfinished} unfinished"
    return values


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", required=True, help="http://127.0.0.1:PORT")
    parser.add_argument("--campaign-arn", default=DEMO_CAMPAIGN)
    parser.add_argument("--user-id", default="bench-user-1")
    parser.add_argument("--rate", type=float, default=0.0, help="open loop, calls per second")
    parser.add_argument("--count", type=int, default=2000, help="open loop: number of calls")
    parser.add_argument("--max-in-flight", type=int, default=256, help="open loop cap")
    parser.add_argument("--concurrency", type=int, default=64, help="closed loop workers")
    parser.add_argument("--seconds", type=float, default=10.0, help="closed loop duration")
    parser.add_argument("--warmup", type=int, default=200, help="calls before measuring")
    parser.add_argument("--serve", action="store_true", help="measure per JSON line on stdin")
    args = parser.parse_args(argv)
    if not args.endpoint.startswith("http://127.0.0.1:"):
        parser.error("the benchmark only targets 127.0.0.1")
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(run(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
