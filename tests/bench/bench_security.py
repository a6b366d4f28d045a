"""Security benchmark: what TLS, API keys, authorization and quotas cost on the cache-hit
path, and whether one caller over its quota moves another's latency.

    python -m tests.bench.bench_security [--seconds 8] [--rounds 2] [--layout split]

One run, side by side (emulator and gateways are `gateway serve` subprocesses on free
127.0.0.1 ports; the gateway under measurement on CPU 0, emulator and h2load on CPU 1):

1. Cache-hit throughput, closed loop (h2load, 8 connections x 16 streams), of the same
   GetRecommendations answered from L1 by three gateways: `plain` (plaintext, anonymous:
   the quick start), `plain-key` (plaintext, `[auth]` with the key and a quota far above the
   load: identity, authorization and quota checks, no TLS) and `tls-key` (TLS, the same
   `[auth]`). Rounds alternate the order; figures are means. Targets: tls-key >= 0.8x
   plain's req/s; (plain-key CPU/req - plain CPU/req) / plain CPU/req <= 5%.
2. Isolation: on `plain-key`, `quiet` sends 200 req/s (open loop) alone, then again while
   `noisy` sends 10x its 100 req/s quota; quiet's p99 with and without the flood.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from mlgw.personalize_runtime.v1 import personalize_runtime_pb2 as rt

from gateway.demo import DEMO_CAMPAIGN
from gateway.security.identity import key_digest
from tests.bench import h2load
from tests.bench.bench_gateway import METHOD_PATH, cpu_seconds
from tests.bench.h2load import Summary
from tests.bench.processes import STARTUP_TIMEOUT, Layout, ProcessStack
from tests.integration.security_support import Authority, write_tls

KEY, NOISY = "bench-key-0123456789abcdef0123456789", "bench-noisy-0123456789abcdef01234567"
HIT_USER = "bench-hit-user"


def auth_toml() -> str:
    return (
        "[[auth.callers]]\n"
        f'name = "bench"\napi_keys = ["{key_digest(KEY)}"]\n'
        'rpcs = ["mlgw.personalize_runtime.v1.*/*"]\n'
        'resources = ["arn:aws:personalize:*:*:campaign/*"]\n'
        "rate = 1000000.0\nburst = 1000000\n"
        "[[auth.callers]]\n"
        f'name = "noisy"\napi_keys = ["{key_digest(NOISY)}"]\n'
        "rate = 100.0\nburst = 100\n"
    )


def tls_toml(tls: dict[str, Any]) -> str:
    return f'[tls]\ncert_file = "{tls["cert_file"]}"\nkey_file = "{tls["key_file"]}"\n'


@dataclass
class Stack(ProcessStack):
    ca: Authority | None = None

    async def start(self) -> None:
        await self.start_emulator()
        self.ca = Authority()
        tls = write_tls(self.tmp / "tls", self.ca.server(), None)
        self.gateway_service("plain", "")
        self.gateway_service("plain-key", auth_toml())
        self.gateway_service("tls-key", tls_toml(tls) + auth_toml())
        for name in ("plain", "plain-key", "tls-key"):
            await self.services[name].start(self.layout.sut)
        async with asyncio.timeout(STARTUP_TIMEOUT):
            await self.serving("plain")
            await self.serving("plain-key")
            await self._serving_tls("tls-key")

    async def _serving_tls(self, name: str) -> None:
        assert self.ca is not None
        credentials = grpc.ssl_channel_credentials(root_certificates=self.ca.pem)
        while True:
            async with grpc.aio.secure_channel(self.address(name), credentials) as channel:
                try:
                    stub = health_pb2_grpc.HealthStub(channel)
                    answer = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                    if answer.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.aio.AioRpcError:
                    pass
            self.check_alive()
            await asyncio.sleep(0.2)  # polling a starting process, not synchronising a test


@contextlib.asynccontextmanager
async def running_stack(layout: str) -> AsyncIterator[Stack]:
    with tempfile.TemporaryDirectory(prefix="bench-security-") as tmp:
        stack = Stack(Path(tmp), Layout.choose(layout))
        try:
            await stack.start()
            yield stack
        finally:
            await stack.stop()


def targets(stack: Stack) -> dict[str, h2load.Target]:
    request = rt.GetRecommendationsRequest(
        campaign_arn=DEMO_CAMPAIGN, user_id=HIT_USER, num_results=25
    )
    body = stack.tmp / "hit.bin"
    body.write_bytes(h2load.grpc_frame(request))
    key = (f"authorization: Bearer {KEY}",)
    return {
        "plain": h2load.verified_target(
            "plain", f"http://{stack.address('plain')}{METHOD_PATH}", body
        ),
        "plain-key": h2load.verified_target(
            "plain-key", f"http://{stack.address('plain-key')}{METHOD_PATH}", body, key
        ),
        "tls-key": h2load.verified_target(
            "tls-key", f"https://{stack.address('tls-key')}{METHOD_PATH}", body, key
        ),
    }


async def hit_rows(
    stack: Stack, found: dict[str, h2load.Target], args: argparse.Namespace
) -> list[Summary]:
    for target in found.values():  # connections, caches and the allocator settle
        await h2load.fixed_rate(target, 200, 1.0, stack.layout.support)
    rows = []
    names = list(found)
    for round_ in range(args.rounds):
        for name in names if round_ % 2 == 0 else names[::-1]:
            pid = stack.services[name].pid
            cpu0 = cpu_seconds(pid)
            run = await h2load.closed_loop(
                found[name], args.seconds, 1.0, 8, 16, stack.layout.support
            )
            cpu = cpu_seconds(pid) - cpu0
            row = replace(run.summary, cpu_us_per_req=cpu / max(1, run.summary.ok) * 1e6)
            rows.append(row)
            print(
                f"{name:<10} round {round_}  {row.achieved_rps:8.1f} req/s  ok {row.ok:>7} "
                f"err {row.errors:>4}  p99 {row.p99_ms:6.2f} ms  cpu {row.cpu_us_per_req:5.0f} "
                "µs/req",
                flush=True,
            )
    return rows


async def isolation(stack: Stack, found: dict[str, h2load.Target], seconds: float) -> list[float]:
    quiet = found["plain-key"]
    noisy = replace(quiet, name="noisy", extra_headers=(f"authorization: Bearer {NOISY}",))
    alone = await h2load.fixed_rate(quiet, 200, seconds, stack.layout.support)
    flood = asyncio.create_task(h2load.fixed_rate(noisy, 1000, seconds + 1, stack.layout.support))
    together = await h2load.fixed_rate(quiet, 200, seconds, stack.layout.support)
    flooded = await flood
    print(
        f"isolation  quiet alone p99 {alone.summary.p99_ms:.2f} ms (err {alone.summary.errors}); "
        f"with noisy at 10x quota p99 {together.summary.p99_ms:.2f} ms "
        f"(err {together.summary.errors}); noisy refused {flooded.summary.errors} "
        f"of {flooded.summary.requests}",
        flush=True,
    )
    return [alone.summary.p99_ms, together.summary.p99_ms]


def _mean(rows: Sequence[Summary], name: str, attr: str) -> float:
    return statistics.fmean(getattr(r, attr) or 0.0 for r in rows if r.name == name)


async def compare(args: argparse.Namespace) -> dict[str, Any]:
    async with running_stack(args.layout) as stack:
        print(f"layout: {stack.layout.describe()}", flush=True)
        found = targets(stack)
        rows = await hit_rows(stack, found, args)
        p99 = await isolation(stack, found, args.seconds)
    rps = {n: _mean(rows, n, "achieved_rps") for n in found}
    cpu = {n: _mean(rows, n, "cpu_us_per_req") for n in found}
    result = {
        "rps": rps,
        "cpu_us_per_req": cpu,
        "tls_key_over_plain": rps["tls-key"] / rps["plain"],
        "auth_quota_cpu_overhead": (cpu["plain-key"] - cpu["plain"]) / cpu["plain"],
        "quiet_p99_ms": {"alone": p99[0], "with_noisy": p99[1]},
        "quiet_p99_change": p99[1] / p99[0] - 1,
    }
    print(
        f"tls-key / plain throughput: {result['tls_key_over_plain']:.2f} (target >= 0.80); "
        f"auth+quota CPU per hit: {result['auth_quota_cpu_overhead']:+.1%} (target <= 5%); "
        f"quiet p99 change under a 10x flood: {result['quiet_p99_change']:+.1%}",
        flush=True,
    )
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--layout", choices=("split", "none"), default="split")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    result = asyncio.run(compare(args))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
