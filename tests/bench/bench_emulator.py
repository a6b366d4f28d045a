"""How fast the emulator serves GetRecommendations vs how fast one aiobotocore process
can send them. Run on demand (not part of the test suite)::

    .venv/bin/python -m tests.bench.bench_emulator [--seconds 10] [--connections 64]

One run measures, one after the other against the same emulator process:

(a) the emulator driven by a cheap load generator: a raw asyncio (uvloop) HTTP/1.1
    client in its own process, ``--connections`` keep-alive connections each with one
    request outstanding, sending pre-built requests (static SigV4-shaped headers: the
    emulator checks their presence, not the signature);
(b) one aiobotocore client process (on uvloop, its fastest), ``--concurrency`` calls in
    flight, retries off.

Both drive the same request mix (users u1..u1000 round-robin on campaign/demo).
The emulator runs as ``python -m gateway.emulator`` (uvloop). With at least two CPUs,
the emulator is pinned to CPU 0 and each client process to CPU 1
(``os.sched_setaffinity``), so "emulator req/s" is one core's worth. The accepted
counts are cross-checked against the emulator's own ``/_emulator/stats``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import subprocess
import sys
import time
import urllib.request
from typing import Any

from tests.bench.processes import free_port

CAMPAIGN = "arn:aws:personalize:us-east-1:000000000000:campaign/demo"
USERS = 1000
EMULATOR_CPU = 0
CLIENT_CPU = 1


def _pin(cpu: int) -> bool:
    if not hasattr(os, "sched_setaffinity") or (os.cpu_count() or 1) < 2:
        return False
    os.sched_setaffinity(0, {cpu})
    return True


def _admin(port: int, path: str, method: str = "GET") -> Any:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/_emulator/{path}", method=method)
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def _build_requests(port: int) -> list[bytes]:
    out = []
    for i in range(1, USERS + 1):
        body = json.dumps({"campaignArn": CAMPAIGN, "userId": f"u{i}"}).encode()
        head = (
            "POST /recommendations HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\n"
            "Content-Type: application/json\r\n"
            "X-Amz-Date: 20240101T000000Z\r\n"
            "Authorization: AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/"
            "personalize/aws4_request, SignedHeaders=host;x-amz-date, Signature=00\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        out.append(head + body)
    return out


class _Conn(asyncio.Protocol):
    """Closed loop: send a request, read the full response, send the next."""

    def __init__(self, requests: list[bytes], offset: int, counters: dict[str, int]) -> None:
        self.requests = requests
        self.i = offset
        self.counters = counters
        self.buf = b""
        self.transport: asyncio.Transport | None = None
        self.running = True
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have write().
        self.transport = transport  # type: ignore[assignment]
        self._send()

    def _send(self) -> None:
        assert self.transport is not None
        self.transport.write(self.requests[self.i % len(self.requests)])
        self.i += 1

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end]
            lower = head.lower()
            pos = lower.find(b"content-length:")
            length = int(lower[pos + 15 : lower.find(b"\r\n", pos)]) if pos >= 0 else 0
            if len(self.buf) < end + 4 + length:
                return
            status = head[9:12]
            self.buf = self.buf[end + 4 + length :]
            key = "ok" if status == b"200" else "error"
            self.counters[key] += 1
            if self.running:
                self._send()
            elif self.transport is not None:
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


async def _raw_load(port: int, connections: int, seconds: float, warmup: float) -> dict[str, Any]:
    requests = _build_requests(port)
    counters = {"ok": 0, "error": 0}
    loop = asyncio.get_running_loop()
    conns = []
    for c in range(connections):
        _, proto = await loop.create_connection(
            lambda c=c: _Conn(requests, c * 17, counters), "127.0.0.1", port
        )
        conns.append(proto)
    await asyncio.sleep(warmup)
    start_ok, t0 = counters["ok"], time.perf_counter()
    # In a thread, so the load keeps flowing while the emulator answers.
    start_stats = await asyncio.to_thread(_admin, port, "stats")
    await asyncio.sleep(seconds)
    end_ok, t1 = counters["ok"], time.perf_counter()
    end_stats = await asyncio.to_thread(_admin, port, "stats")
    for proto in conns:
        proto.running = False
    await asyncio.wait([p.closed for p in conns], timeout=5)
    calls = end_stats["calls"].get("GetRecommendations", 0) - start_stats["calls"].get(
        "GetRecommendations", 0
    )
    return {
        "ok": end_ok - start_ok,
        "seconds": t1 - t0,
        "errors": counters["error"],
        "calls": calls,
    }


def _raw_worker(port: int, connections: int, seconds: float, warmup: float, out: Any) -> None:
    pinned = _pin(CLIENT_CPU)
    import uvloop

    result = uvloop.run(_raw_load(port, connections, seconds, warmup))
    result["pinned"] = pinned
    out.put(result)


async def _boto_load(port: int, concurrency: int, seconds: float, warmup: float) -> dict[str, Any]:
    from aiobotocore.config import AioConfig
    from aiobotocore.session import AioSession

    config = AioConfig(retries={"total_max_attempts": 1}, max_pool_connections=concurrency)
    session = AioSession()
    async with session.create_client(
        "personalize-runtime",
        region_name="us-east-1",
        endpoint_url=f"http://127.0.0.1:{port}",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=config,
    ) as client:
        counters = {"ok": 0, "error": 0}
        state = {"running": True}

        async def worker(w: int) -> None:
            i = w * 17
            while state["running"]:
                i += 1
                try:
                    await client.get_recommendations(
                        campaignArn=CAMPAIGN, userId=f"u{i % USERS + 1}"
                    )
                    counters["ok"] += 1
                except Exception:
                    counters["error"] += 1

        tasks = [asyncio.create_task(worker(w)) for w in range(concurrency)]
        await asyncio.sleep(warmup)
        start_ok, t0 = counters["ok"], time.perf_counter()
        await asyncio.sleep(seconds)
        end_ok, t1 = counters["ok"], time.perf_counter()
        state["running"] = False
        await asyncio.gather(*tasks)
    return {"ok": end_ok - start_ok, "seconds": t1 - t0, "errors": counters["error"]}


def _boto_worker(port: int, concurrency: int, seconds: float, warmup: float, out: Any) -> None:
    pinned = _pin(CLIENT_CPU)
    import uvloop  # the fastest a single aiobotocore process gets: a strict baseline

    result = uvloop.run(_boto_load(port, concurrency, seconds, warmup))
    result["pinned"] = pinned
    out.put(result)


def _run_phase(target: Any, *args: Any) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, queue))
    proc.start()
    result: dict[str, Any] = queue.get(timeout=120)
    proc.join(timeout=30)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args(argv)

    port = free_port()
    pin_emulator = (os.cpu_count() or 1) >= 2 and hasattr(os, "sched_setaffinity")
    emulator = subprocess.Popen(
        [sys.executable, "-m", "gateway.emulator", "--port", str(port), "--log-level", "WARNING"],
        preexec_fn=(lambda: os.sched_setaffinity(0, {EMULATOR_CPU})) if pin_emulator else None,
    )
    try:
        for _ in range(100):
            try:
                _admin(port, "health")
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("emulator did not start")
        raw = _run_phase(_raw_worker, port, args.connections, args.seconds, args.warmup)
        boto = _run_phase(_boto_worker, port, args.concurrency, args.seconds, args.warmup)
    finally:
        emulator.terminate()
        try:
            emulator.wait(timeout=10)
        except subprocess.TimeoutExpired:
            emulator.kill()
            emulator.wait()

    raw_rps = raw["ok"] / raw["seconds"]
    boto_rps = boto["ok"] / boto["seconds"]
    print(
        f"cpus: {os.cpu_count()}, emulator pinned to CPU {EMULATOR_CPU}: {pin_emulator}, "
        f"clients pinned to CPU {CLIENT_CPU}: {raw['pinned'] and boto['pinned']}"
    )
    print(
        f"(a) emulator, raw load generator ({args.connections} connections): "
        f"{raw_rps:,.0f} req/s  [{raw['ok']} ok in {raw['seconds']:.1f}s; "
        f"emulator counted {raw['calls']}; errors {raw['errors']}]"
    )
    print(
        f"(b) one aiobotocore process (concurrency {args.concurrency}): "
        f"{boto_rps:,.0f} req/s  [{boto['ok']} ok in {boto['seconds']:.1f}s; "
        f"errors {boto['errors']}]"
    )
    ratio = raw_rps / boto_rps if boto_rps else float("inf")
    print(f"ratio (a)/(b): {ratio:.2f}x  (target >= 2x)")
    return 0 if ratio >= 2.0 else 1


if __name__ == "__main__":
    sys.exit(main())
