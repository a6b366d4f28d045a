"""Global limits: gateway processes on one Redis keep one upstream quota between them.

Two real `gateway serve` processes (not two Gateway objects in this process): that is the
deployment being promised, and it proves that nothing but Redis connects their buckets
(each has its own interpreter, clock, adaptive state and Redis connections). The emulator,
in this process, counts what reached the "upstream" per ARN.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from mlgw.personalize_runtime.v1 import personalize_runtime_pb2_grpc
from redis.asyncio import Redis

from gateway import metrics
from tests.integration import overload_support
from tests.integration.overload_support import (
    DEMO,
    GatewayStarter,
    Outcome,
    call,
    open_loop,
    recommendations,
    upstream_calls,
    upstream_throttles,
)
from tests.support import process_config, runtime_stub_of_process

start_gateway = overload_support.start_gateway

REDIS_URL = "redis://127.0.0.1:6379/0"
LIMIT = 40.0
SECONDS = 4.0


def gateway_process(
    emulator: Any, tmp_path: Path, name: str, prefix: str
) -> AbstractAsyncContextManager[personalize_runtime_pb2_grpc.PersonalizeRuntimeServiceStub]:
    extra = (
        f'[redis]\nurl = "{REDIS_URL}"\n'
        # Two replicas: were Redis not shared, each would keep half the quota.
        f'[limits]\nreplicas = 2\nredis_key_prefix = "{prefix}"\n'
        "redis_timeout_seconds = 0.25\nmin_latency_reserve_seconds = 0.25\n"
        f'[limits.resources."{DEMO}"]\nrate = {LIMIT}\nburst = 4\n'
    )
    config_toml = process_config(emulator.endpoint_url, extra)
    return runtime_stub_of_process(config_toml, tmp_path, name)


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """A unique key prefix on the real Redis; its keys are deleted afterwards."""
    prefix = f"mlgw:test:limits:{uuid.uuid4().hex}:"
    try:
        yield prefix
    finally:
        client = Redis.from_url(REDIS_URL)
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@pytest.mark.redis
async def test_two_gateway_processes_on_one_redis_keep_one_quota(
    emulator: Any, tmp_path: Path, redis_prefix: str
) -> None:
    # The upstream's own limit is the configured one; a generous burst absorbs the few
    # calls that arrive bunched after a scheduling hiccup.
    emulator.set_faults({"tps": [{"arn": DEMO, "rate": LIMIT, "burst": LIMIT}]})
    async with AsyncExitStack() as stack:
        first, second = await asyncio.gather(
            stack.enter_async_context(gateway_process(emulator, tmp_path, "a", redis_prefix)),
            stack.enter_async_context(gateway_process(emulator, tmp_path, "b", redis_prefix)),
        )
        # Warm both (connections, the script loaded) outside the measured window.
        for stub in (first, second):
            assert (await call(stub.GetRecommendations, recommendations(-1), 5.0)).code == "OK"
        before = upstream_calls(emulator, DEMO)

        async def send(i: int) -> Outcome:
            stub = first if i % 2 else second  # 1.5x the limit each, 3x together
            return await call(stub.GetRecommendations, recommendations(i), 2.0)

        loop = asyncio.get_running_loop()
        window = asyncio.create_task(open_loop(send, 3 * LIMIT, SECONDS))
        start = loop.time()
        # Upstream calls made while the load was offered (queued calls finish later).
        await asyncio.wait({window}, timeout=SECONDS)
        during = upstream_calls(emulator, DEMO) - before
        elapsed = loop.time() - start
        outcomes = await window

    rate = during / elapsed
    assert abs(rate - LIMIT) <= 0.1 * LIMIT, (during, elapsed, rate)
    assert upstream_throttles(emulator, DEMO) <= 0.01 * upstream_calls(emulator, DEMO)
    for outcome in outcomes:
        assert outcome.code in ("OK", "RESOURCE_EXHAUSTED"), outcome
        if outcome.code != "OK":
            assert outcome.retry_delay is not None


def dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_without_redis_each_process_keeps_its_share_and_says_so(
    start_gateway: GatewayStarter, emulator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="gateway.rpc")
    caplog.set_level(logging.WARNING, logger="gateway.limits")  # last: sets caplog's level
    _, stubs = await start_gateway(
        redis={"url": f"redis://127.0.0.1:{dead_port()}/0"},
        limits={
            "replicas": 2,
            "redis_cooldown_seconds": 60.0,
            "resources": {DEMO: {"rate": LIMIT, "burst": 2}},
        },
    )
    assert any("redis unavailable" in r.getMessage() for r in caplog.records)
    assert "mlgw_rate_limit_shared_fallback 1.0" in metrics.exposition().decode()
    before = upstream_calls(emulator, DEMO)

    async def send(i: int) -> Outcome:
        return await call(stubs.runtime.GetRecommendations, recommendations(i), 1.0)

    loop = asyncio.get_running_loop()
    start = loop.time()
    outcomes = await open_loop(send, LIMIT, 2.0)
    elapsed = loop.time() - start
    admitted = upstream_calls(emulator, DEMO) - before
    # Half the quota (2 replicas): 20/s for the ~2.x s the calls took, plus its burst of 1.
    assert admitted <= LIMIT / 2 * elapsed + 2, (admitted, elapsed)
    assert admitted >= LIMIT / 2 * 2.0 * 0.8, admitted
    assert sum(o.code == "RESOURCE_EXHAUSTED" for o in outcomes) > 0
