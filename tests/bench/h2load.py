"""Drive a gRPC server with h2load (nghttp2-client) and turn its per-request log into figures.

gRPC over h2load: the body is one length-prefixed message (1 flag byte, 4-byte big-endian
length, the serialized protobuf) sent with `content-type: application/grpc` and
`te: trailers`. h2load judges success by the HTTP status alone, and gRPC answers errors
with HTTP 200 plus a `grpc-status` trailer, so every target is first checked with `nghttp`
(same package, same wire) and every run's received DATA bytes are compared with the
expected answer size: an error answer carries no DATA frame, so missing bytes mean
gRPC-level failures that h2load itself counted as successes.

Fixed offered rates use h2load's `--rps` (per client), not `--timing-script-file`: the
timing script re-arms a relative libev timer after every request and epoll rounds waits up
to whole milliseconds, so a 200 req/s script really ran at ~178 req/s on this box. `--rps`
is drift-free (it counts how many requests are due since the last tick) but ticks at most
every 10 ms, so a client above 100 req/s sends bursts. Hence: ceil(rate / 100) clients of
at most 100 req/s each, their connections opened `1000 / rate` ms apart (`-r 1
--rate-period`), which interleaves the clients' ticks into one evenly spaced stream.
"""

from __future__ import annotations

import asyncio
import math
import re
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from google.protobuf.message import Message

GRPC_HEADERS = ("content-type: application/grpc", "te: trailers")
#: Beyond this per-client rate h2load's 10 ms tick sends bursts instead of a steady stream.
_MAX_RPS_PER_CLIENT = 100
#: Streams one client may have open; beyond it h2load holds requests back (and would then
#: time them from the late send: coordinated omission). Far above in-flight at our rates.
_STREAMS_PER_CLIENT = 64
_MAX_REQUESTS = 2_000_000  # bounds every run, and the log we read back


def grpc_frame(message: Message | bytes) -> bytes:
    """The gRPC length-prefixed message: uncompressed flag, big-endian length, payload."""
    payload = message if isinstance(message, bytes) else message.SerializeToString()
    return struct.pack(">BI", 0, len(payload)) + payload


def ensure_h2load() -> str:
    """The h2load path; installs Debian's nghttp2-client (h2load + nghttp) if missing."""
    found = shutil.which("h2load")
    if found and shutil.which("nghttp"):
        return found
    if shutil.which("apt-get") is None:
        raise RuntimeError("h2load not found and no apt-get: install nghttp2-client")
    print("h2load not found: apt-get install -y nghttp2-client", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=True, timeout=300)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "nghttp2-client"],
        check=True,
        timeout=600,
        env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
    )
    found = shutil.which("h2load")
    if not found:
        raise RuntimeError("nghttp2-client installed but h2load is still not on PATH")
    return found


@dataclass(frozen=True)
class Summary:
    """One measured row. Latencies in milliseconds; `errors` includes gRPC-level failures."""

    name: str
    mode: str
    offered_rps: float | None
    requests: int
    ok: int
    errors: int
    achieved_rps: float
    mean_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    cpu_us_per_req: float | None = None
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending sequence (0 when empty)."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summarize(
    name: str,
    mode: str,
    offered: float | None,
    latencies_s: Sequence[float],
    errors: int,
    span_s: float,
) -> Summary:
    """Percentiles over successful requests; achieved rate = successes over the span."""
    ordered = sorted(latencies_s)
    ms = [v * 1000 for v in ordered]
    ok = len(ordered)
    return Summary(
        name=name,
        mode=mode,
        offered_rps=offered,
        requests=ok + errors,
        ok=ok,
        errors=errors,
        achieved_rps=ok / span_s if span_s > 0 else 0.0,
        mean_ms=sum(ms) / ok if ok else 0.0,
        p50_ms=percentile(ms, 50),
        p90_ms=percentile(ms, 90),
        p99_ms=percentile(ms, 99),
        max_ms=ms[-1] if ms else 0.0,
    )


@dataclass(frozen=True)
class Target:
    """A gRPC method on 127.0.0.1, the request body file and the expected answer size."""

    name: str
    url: str
    body: Path
    answer_bytes: int  # DATA bytes of one successful answer (prefix included)
    extra_headers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Check:
    grpc_status: int | None
    data_bytes: int


def check_call(url: str, body: Path, headers: Sequence[str] = (), timeout: float = 10.0) -> Check:
    """One request with `nghttp -v` (the wire h2load uses): the grpc-status and DATA size."""
    argv = ["nghttp", "-v", "-d", str(body)]
    for header in (*GRPC_HEADERS, *headers):
        argv += ["-H", header]
    out = subprocess.run([*argv, url], capture_output=True, timeout=timeout, check=False).stdout
    # The body is printed raw in between the frame log, so search, don't split lines.
    status = re.search(rb"grpc-status: (\d+)", out)
    sizes = re.findall(rb"recv DATA frame <length=(\d+)", out)
    return Check(int(status.group(1)) if status else None, sum(int(s) for s in sizes))


def verified_target(
    name: str, url: str, body: Path, headers: Sequence[str] = (), answer_bytes: int | None = None
) -> Target:
    """Fail loudly unless one request answers grpc-status 0 with a non-empty message."""
    if not url.startswith(("http://127.0.0.1:", "https://127.0.0.1:")):
        raise ValueError(f"load is only ever sent to 127.0.0.1, not {url}")
    check = check_call(url, body, headers)
    if check.grpc_status != 0 or check.data_bytes <= 5:
        raise RuntimeError(f"{name}: sample request failed at {url}: {check}")
    size = answer_bytes if answer_bytes is not None else check.data_bytes
    return Target(name, url, body, size, tuple(headers))


@dataclass(frozen=True)
class Run:
    summary: Summary
    stdout: str
    #: Each successful request's latency, seconds (to pool samples across runs).
    latencies_s: tuple[float, ...] = ()


def _argv(target: Target, log: Path, cpu: int | None) -> list[str]:
    argv = ["taskset", "-c", str(cpu)] if cpu is not None else []
    argv += ["h2load", "-t", "1", "-d", str(target.body), f"--log-file={log}"]
    for header in (*GRPC_HEADERS, *target.extra_headers):
        argv += ["-H", header]
    return argv


def rate_plan(rate: float) -> tuple[int, float, int]:
    """(clients, per-client req/s, ms between connection starts) for one steady stream."""
    clients = max(1, math.ceil(rate / _MAX_RPS_PER_CLIENT))
    stagger_ms = max(1, round(1000 / rate))
    return clients, rate / clients, stagger_ms


async def fixed_rate(target: Target, rate: float, seconds: float, cpu: int | None = None) -> Run:
    """Open loop at `rate` req/s: rate * seconds requests, stopped at 1.5x the planned time.

    A target that cannot keep up would otherwise stretch the run without bound; the cut
    leaves the requests not done by then counted as errors and named in the row's note.
    """
    count = min(_MAX_REQUESTS, max(1, round(rate * seconds)))
    clients, per_client, stagger_ms = rate_plan(rate)
    extra = [
        *("-n", str(count), "-c", str(clients), "-m", str(_STREAMS_PER_CLIENT)),
        *("-r", "1", f"--rate-period={stagger_ms}ms", f"--rps={per_client:.6f}"),
        target.url,
    ]
    cap = seconds * 1.5 + clients * stagger_ms / 1000 + 2
    return await _run(target, f"rate {rate:g}", rate, extra, cpu, cap, count)


async def closed_loop(
    target: Target,
    seconds: float,
    warmup: float,
    clients: int,
    streams: int,
    cpu: int | None = None,
) -> Run:
    """Max throughput: `clients` connections x `streams` in flight each, for `seconds`."""
    extra = [
        *("-c", str(clients), "-m", str(streams)),
        *("-D", f"{seconds:g}", f"--warm-up-time={warmup:g}"),
        target.url,
    ]
    mode = f"closed {clients}x{streams}"
    # -D bounds the run itself; the cap only catches a hung h2load.
    cap = seconds + warmup + 30
    return await _run(target, mode, None, extra, cpu, cap, None, clients * streams)


async def _run(
    target: Target,
    mode: str,
    offered: float | None,
    extra: list[str],
    cpu: int | None,
    cap: float,
    expected: int | None,
    slack: int = 0,
) -> Run:
    with tempfile.TemporaryDirectory(prefix="h2load-") as tmp:
        log = Path(tmp) / "requests.log"
        stdout, capped = await _h2load([*_argv(target, log, cpu), *extra], cap)
        if capped and expected is None:
            raise RuntimeError(f"h2load hung past {cap:.0f} s:\n{stdout}")
        samples = read_log(log)
    summary = summarize(target.name, mode, offered, samples.latencies, samples.failed, samples.span)
    if capped:
        unfinished = max(0, (expected or 0) - summary.requests)
        note = f"cut at {cap:.0f} s: {unfinished} unfinished"
        amended = _amend(summary, unfinished, note, were_ok=False)
        return Run(amended, stdout, tuple(samples.latencies))
    # h2load counted gRPC errors (HTTP 200, grpc-status != 0) as successes: find them from
    # the DATA bytes. Closed-loop runs switch phase with requests in flight, so their byte
    # count may be off by that many answers; a fixed-rate run's count is exact.
    grpc_failed = _grpc_failures(stdout, summary.ok, target.answer_bytes, slack)
    if grpc_failed:
        note = "gRPC errors counted from missing DATA bytes"
        summary = _amend(summary, grpc_failed, note, were_ok=True)
    return Run(summary, stdout, tuple(samples.latencies))


async def _h2load(argv: list[str], cap: float) -> tuple[str, bool]:
    """Run h2load; past `cap` seconds stop it (its log is written per request) -> capped."""
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    capped = False
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), cap)
    except TimeoutError:
        capped, out = True, b""
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    stdout = out.decode(errors="replace")
    if not capped and proc.returncode != 0:
        raise RuntimeError(f"h2load exited {proc.returncode}:\n{stdout}")
    return stdout, capped


@dataclass
class LogSamples:
    latencies: list[float]
    failed: int
    span: float


def read_log(log: Path) -> LogSamples:
    """Columns: request start (µs since epoch), HTTP status (-1: failed), latency (µs)."""
    latencies: list[float] = []
    first, last, failed = math.inf, -math.inf, 0
    with log.open() as handle:
        for line in handle:
            fields = line.split("\t")
            if len(fields) < 3 or not fields[2].strip():
                continue  # a line cut short when h2load was stopped
            start, latency = int(fields[0]), int(fields[2])
            first, last = min(first, start), max(last, start + latency)
            if fields[1] == "200":
                latencies.append(latency / 1e6)
            else:
                failed += 1
    span = (last - first) / 1e6 if last > first else 0.0
    return LogSamples(latencies, failed, span)


def _amend(summary: Summary, count: int, note: str, *, were_ok: bool) -> Summary:
    """Count `count` more errors: answers h2load called ok (were_ok) or never-finished ones.

    The percentiles keep every logged sample: which of them were the gRPC errors is unknown.
    """
    values = summary.as_dict()
    ok = max(0, summary.ok - count) if were_ok else summary.ok
    span = summary.ok / summary.achieved_rps if summary.achieved_rps else 0.0
    values.update(
        ok=ok,
        errors=summary.errors + count,
        requests=ok + summary.errors + count,
        achieved_rps=ok / span if span else 0.0,
        note=note,
    )
    return Summary(**values)


def _grpc_failures(stdout: str, http_ok: int, answer_bytes: int, slack: int) -> int:
    """HTTP-200 answers without the expected DATA bytes, i.e. gRPC error statuses."""
    found = re.search(r"\((\d+)\) data", stdout) or re.search(r"(\d+) bytes data", stdout)
    if not found or answer_bytes <= 0:
        return 0
    missing = round((http_ok * answer_bytes - int(found.group(1))) / answer_bytes)
    return missing if missing > slack else 0
