"""Gateway core benchmark: trivial gRPC server vs gateway vs direct aiobotocore, side by side.

    python -m tests.bench.bench_gateway [--rates 200,1000] [--seconds 6] [--rounds 3]
                                        [--layout split|none] [--json out.json]
    python -m tests.bench.bench_gateway --soak-seconds 600 [--soak-rate 200]

Starts the emulator, the trivial server, three gateways and the direct client as
subprocesses on free 127.0.0.1 ports, then for each offered rate and round measures, one
after the other:

* trivial: h2load -> a grpc.aio server returning a canned answer (Python gRPC's ceiling);
* gateway: h2load -> gateway, caching stages off -> GetRecommendations on the emulator;
* gw-boto: the same, with the fast path off (`[upstream] fast_path = false`): every
  upstream call goes through botocore's full per-call machinery;
* gw-full: h2load -> gateway as shipped (cache, coalescing, merge window) -> emulator;
* direct:  one aiobotocore client -> the same emulator (what a service would do itself);

then a closed-loop max-throughput row for each. Prints every row, a summary (median of
rounds) and the derived figures: each gateway's added latency over `direct` at the first
rate (paired within a round, median of rounds), where that time goes (outside vs inside
the gateway's handler), and closed-loop throughput ratios. The machine is shared and
noisy, so only figures from the same run are compared, and each row reports how much CPU
other processes took meanwhile (re-measuring it once when that exceeds --noise-limit).

CPU layout (`--layout split`, the default on >= 2 CPUs): the process doing the measured
work (trivial server, gateways, or the direct client) runs on CPU 0; the emulator and
h2load share CPU 1. Both paths then give aiobotocore a core of its own and the same
upstream on the other core. `--layout none` lets the scheduler place everything.

`--soak-seconds N` runs only one gateway (`--soak-target`) at a steady rate for N seconds
and samples its RSS (/proc/PID/status VmRSS) every 10 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import re
import resource
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp
import grpc
from mlgw.personalize_runtime.v1 import personalize_runtime_pb2 as rt

from gateway.demo import DEMO_CAMPAIGN
from tests.bench import h2load
from tests.bench.h2load import Summary, Target
from tests.bench.processes import (
    STARTUP_TIMEOUT,
    EmulatorStats,
    Layout,
    ProcessStack,
    bounded,
    free_port,
)

METHOD_PATH = "/mlgw.personalize_runtime.v1.PersonalizeRuntimeService/GetRecommendations"
USER_ID = "bench-user-1"
#: Sent to the gateway so a cache stage (when configured) cannot answer instead of the
#: upstream; the emulator's call counter proves every request went through.
NO_CACHE = "cache-control: no-cache"
#: Calls the direct client makes at start-up (off the clock), after one probe call.
DIRECT_WARMUP = 200
_RSS_INTERVAL = 10.0
_MAX_SOAK_SECONDS = 4 * 3600.0
#: Soak verdict: growth from the first to the last sample within max(this, 5% of start).
_SOAK_ALLOWED_MIB = 4.0


# --- CPU and memory, from /proc -------------------------------------------------------


def _tree(pid: int) -> list[int]:
    """The process and its descendants (gateway workers are children of the supervisor)."""
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{current}/task"):
                children = Path(f"/proc/{current}/task/{task}/children").read_text()
                todo.extend(int(c) for c in children.split())
    return pids


def cpu_seconds(pid: int) -> float:
    """utime + stime of every thread of the process tree."""
    ticks = 0
    for member in _tree(pid):
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{member}/stat").read_text()
            fields = stat.rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return ticks / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    total_kib = 0
    for member in _tree(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
    return total_kib / 1024


def _system_busy_seconds() -> float:
    """Non-idle CPU time of the whole machine (steal included: the hypervisor's noise)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_seconds(services: Sequence[int]) -> float:
    """CPU of this process, its finished children (h2load, direct client), the services."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = time.process_time() + children.ru_utime + children.ru_stime
    return own + sum(cpu_seconds(pid) for pid in services)


class OutsideCpu:
    """How busy the machine was with other work while a row was measured."""

    def __init__(self, stack: Stack) -> None:
        self._pids = [s.pid for s in stack.services.values() if s.alive()]
        self._start = (time.monotonic(), _system_busy_seconds(), _own_seconds(self._pids))

    def percent(self) -> float:
        wall0, busy0, own0 = self._start
        wall = time.monotonic() - wall0
        busy, own = _system_busy_seconds() - busy0, _own_seconds(self._pids) - own0
        return max(0.0, busy - own) / (wall * (os.cpu_count() or 1)) * 100 if wall else 0.0


# --- the stack under test -------------------------------------------------------------


_FORWARDING = (
    "[cache]\nenabled = false\n[coalesce]\nenabled = false\n[merge]\nwindow_ms = 0\n"
    # The admission stage stays in the path, but above any rate offered here: the default
    # quota-derived limit for GetRecommendations would shed what it exceeds, and the rows
    # measure the forwarding core's speed, not the quota.
    "[limits.operations.GetRecommendations]\nrate = 100000\nburst = 1000\n"
)
#: The gateways under test, by row name: the forwarding core (the caching stages off, so
#: every call goes upstream exactly as a direct call would), the same without the fast
#: path, and the shipped defaults (cache, coalescing and a merge window in front of the
#: same upstream call).
GATEWAY_CONFIGS: dict[str, str] = {
    "gateway": _FORWARDING,
    "gw-boto": _FORWARDING,
    "gw-full": "",
}
#: Extra `[upstream]` settings of a gateway under test.
UPSTREAM_SETTINGS = {"gw-boto": "fast_path = false\n"}
#: Printed with a gateway's added latency: what the figure includes by design.
ROW_NOTES = {
    "gw-full": "includes the shipped 2 ms merge window, waited by every mergeable miss",
}


@dataclass
class Stack(ProcessStack):
    """The emulator, the gateways under test and, for the comparison, the trivial server
    and the direct client."""

    #: Prometheus ports of each gateway (one per worker): the time spent in its handler.
    metrics_ports: dict[str, list[int]] = field(default_factory=dict)

    async def start(
        self, workers: int, gateways: Sequence[str], trivial: bool, in_flight: int
    ) -> None:
        await self.start_emulator()
        waits = [self._start_gateway(name, workers) for name in gateways]
        if trivial:
            waits += [self._start_trivial(), self._start_direct(in_flight)]
        await asyncio.gather(*waits)

    async def _start_direct(self, in_flight: int) -> None:
        direct = self.python("direct", ["-m", "tests.bench.direct_client", "--serve"])
        direct.piped = True
        direct.argv += ["--endpoint", self.emulator_url, "--user-id", USER_ID]
        direct.argv += ["--warmup", str(DIRECT_WARMUP), "--concurrency", str(in_flight)]
        await direct.start(self.layout.sut)
        await direct.ask(None, STARTUP_TIMEOUT)  # {"ready": true} once warm

    async def _start_trivial(self) -> None:
        await self.trivial_service().start(self.layout.sut)
        await bounded(self.serving("trivial"))

    async def _start_gateway(self, name: str, workers: int) -> None:
        metrics = free_port()  # worker i serves metrics on metrics + i
        self.metrics_ports[name] = [metrics + i for i in range(workers)]
        gateway = self.gateway_service(
            name, GATEWAY_CONFIGS[name], UPSTREAM_SETTINGS.get(name, ""), metrics_port=metrics
        )
        gateway.argv += ["--workers", str(workers)]
        await gateway.start(self.layout.sut)
        await bounded(self.serving(name))


_HANDLER_SUM = re.compile(
    r'^mlgw_request_duration_seconds_(sum|count)\{method="GetRecommendations"\} (\S+)$', re.M
)


async def handler_totals(ports: Sequence[int]) -> tuple[float, float]:
    """(seconds, calls) the gateway's GetRecommendations handler has recorded so far."""
    totals = {"sum": 0.0, "count": 0.0}
    async with aiohttp.ClientSession() as session:
        for port in ports:
            async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
                text = await response.text()
            for kind, value in _HANDLER_SUM.findall(text):
                totals[kind] += float(value)
    return totals["sum"], totals["count"]


# --- measurements ---------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    summary: Summary
    round: int
    emulator_cpu_us_per_req: float | None = None
    upstream_calls: int | None = None
    #: CPU used by processes outside the benchmark, in % of all CPUs: noise to read with.
    other_cpu_pct: float | None = None
    #: Mean time inside the gateway's RPC handler (its own latency histogram), in ms.
    handler_mean_ms: float | None = None


@dataclass
class Probe:
    """Readings taken around one measurement, turned into a Row at its end."""

    stack: Stack
    name: str
    outside: OutsideCpu
    server_cpu: float | None
    emulator_cpu: float
    handler: tuple[float, float] | None

    @classmethod
    async def begin(cls, stack: Stack, name: str) -> Probe:
        await EmulatorStats(stack.emulator_url).reset()
        server = stack.services.get(name)
        metrics = stack.metrics_ports.get(name)
        return cls(
            stack,
            name,
            OutsideCpu(stack),
            cpu_seconds(server.pid) if server else None,
            cpu_seconds(stack.services["emulator"].pid),
            await handler_totals(metrics) if metrics else None,
        )

    async def end(self, summary: Summary, round_: int) -> Row:
        other = self.outside.percent()
        calls, upstream_errors = await EmulatorStats(self.stack.emulator_url).calls_and_errors()
        emulator_cpu = cpu_seconds(self.stack.services["emulator"].pid) - self.emulator_cpu
        if self.server_cpu is not None:
            used = cpu_seconds(self.stack.services[self.name].pid) - self.server_cpu
            summary = replace(summary, cpu_us_per_req=used / max(1, summary.ok) * 1e6)
        if upstream_errors:
            summary = replace(summary, note=f"{summary.note} upstream errors: {upstream_errors}")
        return Row(
            summary,
            round_,
            emulator_cpu_us_per_req=emulator_cpu / calls * 1e6 if calls else None,
            upstream_calls=calls if self.name != "trivial" else None,
            other_cpu_pct=other,
            handler_mean_ms=await self._handler_mean_ms(),
        )

    async def _handler_mean_ms(self) -> float | None:
        metrics = self.stack.metrics_ports.get(self.name)
        if not metrics or self.handler is None:
            return None
        total, count = await handler_totals(metrics)
        calls = count - self.handler[1]
        return (total - self.handler[0]) / calls * 1000 if calls else None


@dataclass
class Bench:
    stack: Stack
    args: argparse.Namespace
    targets: dict[str, Target] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)

    def build_targets(self) -> None:
        request = rt.GetRecommendationsRequest(
            campaign_arn=DEMO_CAMPAIGN, user_id=USER_ID, num_results=25
        )
        body = self.stack.tmp / "request.bin"
        body.write_bytes(h2load.grpc_frame(request))
        for name in ("trivial", *GATEWAY_CONFIGS):
            if name not in self.stack.services:
                continue
            headers = (NO_CACHE,) if name in GATEWAY_CONFIGS else ()
            url = f"http://{self.stack.address(name)}{METHOD_PATH}"
            self.targets[name] = h2load.verified_target(name, url, body, headers)

    async def warm_up(self) -> None:
        """Connections, lazy caches and the allocator settle before anything is timed."""
        for target in self.targets.values():
            await h2load.fixed_rate(
                target, 200, self.args.warmup_seconds, self.stack.layout.support
            )

    async def measured(self, name: str, run: Callable[[], Any], round_: int) -> Row:
        """Run one measurement with its side readings; again if other work disturbed it.

        The machine is shared: when processes outside the benchmark took more than
        `--noise-limit` % of the CPUs during a row, it is measured again (at most
        `--noise-retries` times) and the row says so.
        """
        for attempt in range(self.args.noise_retries + 1):
            self.stack.check_alive()
            probe = await Probe.begin(self.stack, name)
            summary: Summary = await run()
            row = await probe.end(summary, round_)
            noisy = (row.other_cpu_pct or 0.0) > self.args.noise_limit
            if not noisy or attempt == self.args.noise_retries:
                break
            print(f"{format_row(row)}  [noisy: measuring again]", flush=True)
        if attempt:
            note = f"{row.summary.note} (attempt {attempt + 1})".strip()
            row = replace(row, summary=replace(row.summary, note=note))
        self.rows.append(row)
        print(format_row(row), flush=True)
        return row

    async def h2load_rate(self, name: str, rate: float) -> Summary:
        run = await h2load.fixed_rate(
            self.targets[name], rate, self.args.seconds, self.stack.layout.support
        )
        return run.summary

    async def h2load_closed(self, name: str) -> Summary:
        a = self.args
        run = await h2load.closed_loop(
            self.targets[name],
            a.closed_seconds,
            a.warmup_seconds,
            a.clients,
            a.streams,
            self.stack.layout.support,
        )
        return run.summary

    async def direct(self, spec: dict[str, Any], budget: float) -> Summary:
        values = await self.stack.services["direct"].ask(spec, budget)
        lag = values.pop("lag_p99_ms")
        if lag > 1.0:
            values["note"] = f"{values['note']} send lag p99 {lag:.1f} ms".strip()
        return Summary(**values)

    async def rate_rows(self, rate: float, round_: int) -> None:
        spec = {"rate": rate, "count": max(1, round(rate * self.args.seconds))}
        runs: dict[str, Callable[[], Any]] = {
            name: functools.partial(self.h2load_rate, name, rate) for name in self.targets
        }
        runs["direct"] = functools.partial(self.direct, spec, self.args.seconds * 3 + 60)
        order = list(runs) if round_ % 2 == 0 else list(reversed(runs))  # cancel drift
        for name in order:
            await self.measured(name, runs[name], round_)

    async def closed_rows(self) -> None:
        a = self.args
        spec = {"concurrency": a.clients * a.streams, "seconds": a.closed_seconds}
        runs: dict[str, Callable[[], Any]] = {
            name: functools.partial(self.h2load_closed, name) for name in self.targets
        }
        runs["direct"] = functools.partial(self.direct, spec, a.closed_seconds * 2 + 60)
        for name, run in runs.items():
            await self.measured(name, run, 0)


# --- report ---------------------------------------------------------------------------


def header(first: str = "round") -> str:
    return (
        f"{'target':<8} {'mode':<12} {first:>5} {'req/s':>7} {'ok':>6} {'err':>5} "
        f"{'mean ms':>7} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} {'max ms':>7} {'in-gw ms':>8} "
        f"{'cpu µs/req':>10} {'emu µs/req':>10} {'upstream':>8} {'other%':>6}  note"
    )


def _opt(value: float | int | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_row(row: Row) -> str:
    s = row.summary
    return (
        f"{s.name:<8} {s.mode:<12} {row.round:>5} {s.achieved_rps:>7.1f} {s.ok:>6} "
        f"{s.errors:>5} {s.mean_ms:>7.2f} {s.p50_ms:>7.2f} {s.p90_ms:>7.2f} {s.p99_ms:>7.2f} "
        f"{s.max_ms:>7.1f} {_opt(row.handler_mean_ms, '8.2f')} "
        f"{_opt(s.cpu_us_per_req, '10.0f')} {_opt(row.emulator_cpu_us_per_req, '10.0f')} "
        f"{_opt(row.upstream_calls, '8d')} {_opt(row.other_cpu_pct, '6.0f')}  {s.note.strip()}"
    ).rstrip()


def _median(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


_SUMMED = ("requests", "ok", "errors")
_MEDIAN = ("achieved_rps", "mean_ms", "p50_ms", "p90_ms", "p99_ms", "max_ms", "cpu_us_per_req")


def aggregate(rows: list[Row]) -> list[Row]:
    """One row per (target, mode): counts summed, every other figure the median of rounds.

    The `round` column then holds how many rounds the row summarises. A median, not a
    mean, so that one round hit by other work on the machine does not move the figure.
    """
    groups: dict[tuple[str, str], list[Row]] = {}
    for row in rows:
        groups.setdefault((row.summary.name, row.summary.mode), []).append(row)
    return [_median_row(group) for group in groups.values()]


def _median_row(group: list[Row]) -> Row:
    first = group[0].summary
    values = first.as_dict()
    values.update({k: sum(getattr(r.summary, k) for r in group) for k in _SUMMED})
    values.update({k: _median([getattr(r.summary, k) for r in group]) for k in _MEDIAN})
    notes = dict.fromkeys(r.summary.note.strip() for r in group if r.summary.note.strip())
    values["note"] = "; ".join(notes)
    calls = [r.upstream_calls for r in group]
    return Row(
        Summary(**values),
        len(group),
        emulator_cpu_us_per_req=_median([r.emulator_cpu_us_per_req for r in group]),
        upstream_calls=None if None in calls else sum(c or 0 for c in calls),
        other_cpu_pct=_median([r.other_cpu_pct for r in group]),
        handler_mean_ms=_median([r.handler_mean_ms for r in group]),
    )


#: The targets of the issue, in ms, for the added latency at the reference rate.
LATENCY_TARGETS = {"p50_ms": 1.0, "p99_ms": 5.0}


def _by_round(rows: list[Row], name: str, mode: str) -> dict[int, Row]:
    return {r.round: r for r in rows if r.summary.name == name and r.summary.mode == mode}


Reading = Callable[[Row], float | None]


def paired(
    rows: list[Row], name: str, mode: str, value: Reading, direct_value: Reading | None = None
) -> list[float]:
    """value(name's row) - direct_value(direct's row), per round where both were measured."""
    mine, direct = _by_round(rows, name, mode), _by_round(rows, "direct", mode)
    out = []
    for round_ in sorted(mine.keys() & direct.keys()):
        a, b = value(mine[round_]), (direct_value or value)(direct[round_])
        if a is not None and b is not None:
            out.append(a - b)
    return out


def _summary_field(key: str, row: Row) -> float | None:
    value: float | None = getattr(row.summary, key)
    return value


def derived(rows: list[Row], reference_rate: float) -> dict[str, Any]:
    """Added latency (each gateway minus direct, paired by round, median over rounds) at
    the reference rate, where it goes, and the closed-loop throughput ratios."""
    mode = f"rate {reference_rate:g}"
    out: dict[str, Any] = {"reference_rate": reference_rate, "added": {}, "split": {}}
    for name in GATEWAY_CONFIGS:
        for q, target in LATENCY_TARGETS.items():
            diffs = paired(rows, name, mode, functools.partial(_summary_field, q))
            if diffs:
                added = statistics.median(diffs)
                out["added"][f"{name} {q}"] = {
                    "value": added, "per_round": diffs, "target": target, "met": added <= target
                }  # fmt: skip
        out["split"][name] = _split(rows, name, mode)
    closed = {r.summary.name: r.summary.achieved_rps for r in rows if "closed" in r.summary.mode}
    out["max_rps"] = closed
    out["ratios"] = {
        f"{a}/{b}": closed[a] / closed[b]
        for a, b in (
            ("gateway", "trivial"),
            ("gateway", "direct"),
            ("gateway", "gw-boto"),
            ("gw-full", "trivial"),
        )
        if closed.get(a) and closed.get(b)
    }
    return out


def _split(rows: list[Row], name: str, mode: str) -> dict[str, float] | None:
    """Where a gateway's added mean latency goes: outside vs inside its RPC handler."""
    mean = functools.partial(_summary_field, "mean_ms")
    added = paired(rows, name, mode, mean)
    # Handler time minus the direct call: pipeline, mapping, and a busier event loop.
    inside = paired(rows, name, mode, lambda r: r.handler_mean_ms, mean)
    trivial = _median([r.summary.mean_ms for r in _by_round(rows, "trivial", mode).values()])
    if not added or not inside:
        return None
    return {
        "added_mean_ms": statistics.median(added),
        # h2load -> gRPC C-core -> grpc.aio -> handler start, and the answer's way back.
        "outside_handler_ms": statistics.median(a - i for a, i in zip(added, inside, strict=True)),
        "inside_handler_beyond_direct_ms": statistics.median(inside),
        "trivial_round_trip_ms": trivial or 0.0,
    }


def print_derived(figures: dict[str, Any]) -> None:
    rate = figures["reference_rate"]
    print(f"\nDerived at {rate:g} req/s offered (row minus direct, same round; median of rounds):")
    for key, figure in figures["added"].items():
        verdict = "met" if figure["met"] else "MISSED"
        rounds = ", ".join(f"{d:+.2f}" for d in figure["per_round"])
        print(
            f"  {key[:-3]:<12} added latency: {figure['value']:+.2f} ms "
            f"(target <= {figure['target']:g} ms: {verdict}; rounds: {rounds})"
            + (f" [{ROW_NOTES[key[:-7]]}]" if key[:-7] in ROW_NOTES else "")
        )
    for name, split in figures["split"].items():
        if split:
            print(
                f"  {name:<12} mean added {split['added_mean_ms']:+.2f} ms = outside its handler"
                f" {split['outside_handler_ms']:+.2f} ms (gRPC hop + waiting for the busy loop;"
                f" a trivial-server round trip: {split['trivial_round_trip_ms']:.2f} ms)"
                " + inside, beyond the direct"
                f" call {split['inside_handler_beyond_direct_ms']:+.2f} ms"
            )
    for key, ratio in figures["ratios"].items():
        print(f"  closed-loop throughput {key}: {ratio:.2f}")


def environment(layout: Layout) -> dict[str, Any]:
    import aiobotocore
    import botocore
    import google.protobuf

    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "nproc": os.cpu_count(),
        "python": sys.version.split()[0],
        "grpcio": grpc.__version__,
        "protobuf": google.protobuf.__version__,
        "aiobotocore": aiobotocore.__version__,
        "botocore": botocore.__version__,
        "layout": layout.describe(),
        "loadavg_at_start": os.getloadavg(),
    }


# --- modes ----------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def running_stack(
    args: argparse.Namespace, gateways: Sequence[str], trivial: bool
) -> AsyncIterator[Stack]:
    with tempfile.TemporaryDirectory(prefix="bench-gateway-") as tmp:
        stack = Stack(Path(tmp), Layout.choose(args.layout))
        try:
            await stack.start(args.gateway_workers, gateways, trivial, args.clients * args.streams)
            yield stack
        finally:
            await stack.stop()
            for name in gateways:
                if name in stack.services and (failed := stack.services[name].failures()):
                    print(f"{name} logged failed RPCs: {failed}")


async def compare(args: argparse.Namespace) -> dict[str, Any]:
    async with running_stack(args, list(GATEWAY_CONFIGS), trivial=True) as stack:
        env = environment(stack.layout)
        print(json.dumps(env), flush=True)
        bench = Bench(stack, args)
        bench.build_targets()
        await bench.warm_up()
        print(header(), flush=True)
        for round_ in range(args.rounds):
            for rate in args.rates:
                await bench.rate_rows(rate, round_)
        if args.closed_seconds > 0:
            await bench.closed_rows()
    figures = derived(bench.rows, args.rates[0])
    print(f"\nSummary: medians over {args.rounds} round(s); counts summed\n{header('n')}")
    for row in aggregate(bench.rows):
        print(format_row(row))
    print_derived(figures)
    print(f"load average at the end: {os.getloadavg()} (other processes share these cores)")
    rows = [{**asdict(r.summary), **_row_extra(r)} for r in bench.rows]
    return {"environment": env, "rows": rows, "derived": figures}


def _row_extra(row: Row) -> dict[str, Any]:
    return {
        "round": row.round,
        "emulator_cpu_us_per_req": row.emulator_cpu_us_per_req,
        "upstream_calls": row.upstream_calls,
        "other_cpu_pct": row.other_cpu_pct,
        "handler_mean_ms": row.handler_mean_ms,
    }


async def soak(args: argparse.Namespace) -> dict[str, Any]:
    seconds = min(args.soak_seconds, _MAX_SOAK_SECONDS)
    async with running_stack(args, [args.soak_target], trivial=False) as stack:
        env = environment(stack.layout)
        print(json.dumps(env), flush=True)
        bench = Bench(stack, args)
        bench.build_targets()
        await bench.warm_up()
        gateway = stack.services[args.soak_target]
        target = bench.targets[args.soak_target]
        probe = await Probe.begin(stack, args.soak_target)
        load = asyncio.create_task(
            h2load.fixed_rate(target, args.soak_rate, seconds, stack.layout.support)
        )
        samples = await sample_rss(gateway.pid, load)
        row = await probe.end((await load).summary, 0)
    result = soak_verdict(samples)
    print_soak(row, samples, result)
    summary = {**asdict(row.summary), **_row_extra(row)}
    return {"environment": env, "soak": result, "summary": summary, "rss": samples}


async def sample_rss(pid: int, load: asyncio.Task[Any]) -> list[tuple[float, float]]:
    """(seconds since start, RSS MiB) every 10 s until the load finishes."""
    started = time.monotonic()
    samples = [(0.0, rss_mib(pid))]
    while not load.done():
        await asyncio.wait({load}, timeout=_RSS_INTERVAL)
        samples.append((time.monotonic() - started, rss_mib(pid)))
        print(f"  t={samples[-1][0]:6.0f}s  gateway RSS {samples[-1][1]:7.1f} MiB", flush=True)
    return samples


def soak_verdict(samples: list[tuple[float, float]]) -> dict[str, Any]:
    start, end = samples[0][1], samples[-1][1]
    half = [s for s in samples if s[0] >= samples[-1][0] / 2]
    slope = _slope(half) * 60  # MiB per minute over the second half
    allowed = max(_SOAK_ALLOWED_MIB, 0.05 * start)
    return {
        "rss_start_mib": start,
        "rss_end_mib": end,
        "rss_max_mib": max(v for _, v in samples),
        "growth_mib": end - start,
        "second_half_slope_mib_per_min": slope,
        "allowed_growth_mib": allowed,
        "no_growth": end - start <= allowed,
    }


def _slope(points: list[tuple[float, float]]) -> float:
    if len(points) < 2:
        return 0.0
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else 0.0


def print_soak(row: Row, samples: list[tuple[float, float]], result: dict[str, Any]) -> None:
    duration = samples[-1][0]
    print(f"\nSoak: {row.summary.mode} on {row.summary.name} for {duration:.0f} s")
    print(header())
    print(format_row(row))
    verdict = "no growth" if result["no_growth"] else "GROWTH"
    print(
        f"gateway RSS start {result['rss_start_mib']:.1f} MiB, end {result['rss_end_mib']:.1f}"
        f" MiB, max {result['rss_max_mib']:.1f} MiB; growth {result['growth_mib']:+.1f} MiB"
        f" (allowed {result['allowed_growth_mib']:.1f}); second-half slope"
        f" {result['second_half_slope_mib_per_min']:+.3f} MiB/min -> {verdict}"
    )


# --- entry point ----------------------------------------------------------------------


def _rates(text: str) -> list[float]:
    rates = [float(part) for part in text.split(",") if part.strip()]
    if not rates or any(r <= 0 or r > 20_000 for r in rates):
        raise argparse.ArgumentTypeError("rates must be in (0, 20000] req/s")
    return rates


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rates", type=_rates, default=[200.0, 1000.0], help="offered req/s")
    p.add_argument("--seconds", type=float, default=6.0, help="per fixed-rate measurement")
    p.add_argument("--rounds", type=int, default=3, help="repeat the rate rows (order flips)")
    p.add_argument("--closed-seconds", type=float, default=8.0, help="0 skips closed loop")
    p.add_argument("--clients", type=int, default=8, help="closed loop: h2load connections")
    p.add_argument("--streams", type=int, default=16, help="closed loop: streams each")
    p.add_argument("--warmup-seconds", type=float, default=3.0)
    p.add_argument("--gateway-workers", type=int, default=1)
    p.add_argument(
        "--noise-limit", type=float, default=25.0, help="%% of all CPUs others may use in a row"
    )
    p.add_argument("--noise-retries", type=_count, default=1, help="re-measurements of a noisy row")
    p.add_argument("--layout", choices=("split", "none"), default="split")
    p.add_argument("--soak-seconds", type=float, default=0.0, help="run the soak mode instead")
    p.add_argument("--soak-rate", type=float, default=200.0)
    p.add_argument(
        "--soak-target", choices=list(GATEWAY_CONFIGS), default="gw-full", help="which gateway"
    )
    p.add_argument("--json", type=Path, help="also write the results here")
    return p


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    # SIGTERM cancels the run like Ctrl-C does, so the finally blocks stop every process.
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    h2load.ensure_h2load()
    return await (soak(args) if args.soak_seconds > 0 else compare(args))


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        result = asyncio.run(_main(args))
    except (asyncio.CancelledError, KeyboardInterrupt):
        print("interrupted; every subprocess was stopped", file=sys.stderr)
        return 130
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
        print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
