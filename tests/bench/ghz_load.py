"""Load-test recommendation serving through the gateway with ghz (`make loadtest`).

Starts the gateway on the built-in emulator with production-like faults (latency with a
lognormal tail, a per-campaign TPS limit answering ThrottlingException, a few 5xx), writes
GetRecommendations requests for a Zipf-distributed user population, drives the gateway
with ghz (a standard gRPC load tester, `go install`ed by `make loadtest`) for a bounded
number of requests over loopback, and prints throughput, latency percentiles, the status
codes and the gateway's cache hit ratio. Nothing here asserts on timings.

    .venv/bin/python -m tests.bench.ghz_load [--requests 20000] [--concurrency 50]
        [--users 10000] [--zipf 1.1] [--rate-limit 400] [--ghz .tools/bin/ghz]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import urllib.request
from itertools import accumulate
from pathlib import Path
from typing import Any

from gateway.demo import wait_until_serving
from gateway.supervisor import free_port

ROOT = Path(__file__).resolve().parents[2]
CAMPAIGN = "arn:aws:personalize:us-east-1:000000000000:campaign/demo"
PROTO = ROOT / "protos" / "mlgw" / "personalize_runtime" / "v1" / "personalize_runtime.proto"
METHOD = "mlgw.personalize_runtime.v1.PersonalizeRuntimeService.GetRecommendations"


def faults(rate_limit: float) -> str:
    """The emulator's faults: what a production Personalize campaign looks like from afar."""
    return f"""
[faults]
seed = 7

[faults.latency."*"]
fixed_ms = 15.0
tail_probability = 0.05
tail_p50_ms = 40.0
tail_p99_ms = 250.0

[faults.errors.GetRecommendations]
ServiceUnavailable = 0.002

[[faults.tps]]
arn = "{CAMPAIGN}"
rate = {rate_limit}
burst = {rate_limit}
"""


def zipf_users(count: int, users: int, exponent: float, seed: int = 1) -> list[str]:
    """`count` user ids drawn from a Zipf(exponent) population of `users` (user 1 the most
    frequent): a few heavy users, a long tail, as in real traffic."""
    weights = list(accumulate(1.0 / rank**exponent for rank in range(1, users + 1)))
    draw = random.Random(seed).choices
    return [f"u-{rank}" for rank in draw(range(1, users + 1), cum_weights=weights, k=count)]


def requests(users: list[str]) -> list[dict[str, Any]]:
    return [{"campaignArn": CAMPAIGN, "userId": user, "numResults": 10} for user in users]


def cache_hit_ratio(metrics_port: int) -> float | None:
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as answer:
        text = answer.read().decode()
    counts: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("mlgw_cache_lookups_total{") and "GetRecommendations" in line:
            outcome = line.split('result="', 1)[1].split('"', 1)[0]
            counts[outcome] = counts.get(outcome, 0.0) + float(line.rsplit(" ", 1)[1])
    total = sum(counts.values())
    return counts.get("hit", 0.0) / total if total else None


def report(summary: dict[str, Any], hit_ratio: float | None) -> str:
    latencies = {d["percentage"]: d["latency"] / 1e6 for d in summary["latencyDistribution"]}
    lines = [
        f"requests   {summary['count']}  in {summary['total'] / 1e9:.2f} s",
        f"throughput {summary['rps']:.0f} requests/s",
        "latency    "
        + "  ".join(f"p{p:g} {latencies[p]:.1f} ms" for p in (50, 90, 95, 99) if p in latencies),
        f"           mean {summary['average'] / 1e6:.1f} ms"
        f"  slowest {summary['slowest'] / 1e6:.1f} ms",
        "status     "
        + "  ".join(f"{k} {v}" for k, v in sorted(summary["statusCodeDistribution"].items())),
    ]
    if hit_ratio is not None:
        lines.append(f"cache      {hit_ratio:.1%} of GetRecommendations answered from the cache")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "emulator.toml").write_text(faults(args.rate_limit))
        data = folder / "requests.json"
        data.write_text(json.dumps(requests(zipf_users(args.requests, args.users, args.zipf))))
        port, metrics_port = free_port(), free_port()
        command = [sys.executable, "-m", "gateway", "serve", "--emulator", "--port", str(port)]
        command += ["--emulator-config", str(folder / "emulator.toml")]
        command += ["--metrics-port", str(metrics_port)]
        env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
        with (folder / "gateway.log").open("wb") as log:
            gateway = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
        try:
            target = f"127.0.0.1:{port}"
            serving = wait_until_serving(target, lambda: gateway.poll() is None)
            asyncio.run(asyncio.wait_for(serving, timeout=60))
            ghz = [args.ghz, "--insecure", "--call", METHOD, "--data-file", str(data)]
            ghz += ["-n", str(args.requests), "-c", str(args.concurrency)]
            ghz += ["--connections", "4", "--timeout", "10s", "--format", "json", target]
            ghz += [
                "--proto",
                str(PROTO),
                "--import-paths",
                f"{ROOT / 'protos'},{ROOT / 'protos' / 'vendor'}",
            ]
            result = subprocess.run(ghz, capture_output=True, text=True, check=False, timeout=600)
            if result.returncode != 0:
                raise SystemExit(f"ghz failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
            print(report(json.loads(result.stdout), cache_hit_ratio(metrics_port)))
        finally:
            gateway.terminate()
            gateway.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--users", type=int, default=10000)
    parser.add_argument("--zipf", type=float, default=1.1, help="the Zipf exponent")
    parser.add_argument("--rate-limit", type=float, default=400.0, help="campaign TPS")
    parser.add_argument("--ghz", default=str(ROOT / ".tools" / "bin" / "ghz"))
    run(parser.parse_args())


if __name__ == "__main__":
    main()
