"""The shared tier, end to end: two gateway processes on one Redis; a dead or silent Redis.

The sharing test starts two real `gateway serve` processes (not two Gateway objects in this
process): that is the deployment being promised, and it proves the entry written by one
process (wall-clock stored time, serialized answer, key derivation) is read by another
interpreter with its own L1, clock and Redis connections.
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import pytest
from mlgw.personalize_runtime.v1 import personalize_runtime_pb2_grpc
from redis.asyncio import Redis

from gateway import metrics
from tests.integration.cache_support import (
    answer,
    config,
    eventually,
    recs,
    serving,
    upstream_calls,
)
from tests.support import process_config, runtime_stub_of_process

REDIS_URL = "redis://127.0.0.1:6379/0"


def gateway_process(
    emulator: Any, tmp_path: Path, name: str, prefix: str
) -> AbstractAsyncContextManager[personalize_runtime_pb2_grpc.PersonalizeRuntimeServiceStub]:
    extra = (
        f'[redis]\nurl = "{REDIS_URL}"\ntimeout_seconds = 0.25\n[cache]\nkey_prefix = "{prefix}"\n'
    )
    config_toml = process_config(emulator.endpoint_url, extra)
    return runtime_stub_of_process(config_toml, tmp_path, name)


@pytest.fixture
async def redis_prefix() -> AsyncIterator[tuple[Redis, str]]:
    """A unique key prefix on the real Redis; its keys are deleted afterwards."""
    prefix = f"mlgw:test:{uuid.uuid4().hex}:"
    client = Redis.from_url(REDIS_URL)
    try:
        yield client, prefix
    finally:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@pytest.mark.redis
async def test_two_gateway_processes_share_hits_through_redis(
    emulator: Any, tmp_path: Path, redis_prefix: tuple[Redis, str]
) -> None:
    redis, prefix = redis_prefix
    async with AsyncExitStack() as stack:
        first, second = await asyncio.gather(
            stack.enter_async_context(gateway_process(emulator, tmp_path, "a", prefix)),
            stack.enter_async_context(gateway_process(emulator, tmp_path, "b", prefix)),
        )
        response, meta = await answer(first.GetRecommendations(recs()))
        assert meta["mlgw-cache"] == "miss"

        async def written() -> bool:  # the write to Redis is in the background
            return bool([key async for key in redis.scan_iter(match=f"{prefix}*")])

        await eventually(written)
        shared, meta = await answer(second.GetRecommendations(recs()))
        assert meta["mlgw-cache"] == "hit"
        assert meta["mlgw-cache-tier"] == "shared"
        assert shared == response
        _, meta = await answer(second.GetRecommendations(recs()))
        assert meta["mlgw-cache-tier"] == "local"  # now in the second process's own L1
        _, meta = await answer(second.GetRecommendations(recs("u2")))
        assert meta["mlgw-cache"] == "miss"
    assert await upstream_calls(emulator) == 2  # u1 once for both processes, u2 once


def refused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@asynccontextmanager
async def silent_server() -> AsyncIterator[int]:
    """A TCP server that accepts and reads but never answers (a hung Redis)."""
    writers: list[asyncio.StreamWriter] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        with suppress(ConnectionError):
            while await reader.read(1 << 16):
                pass

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("redis_state", ["refusing", "silent"])
async def test_redis_down_or_silent_means_misses_not_errors(
    emulator: Any, redis_state: str
) -> None:
    failures = metrics.CACHE_SHARED_FAILURES
    before = sum(failures.labels(kind)._value.get() for kind in ("error", "timeout"))
    async with AsyncExitStack() as stack:
        if redis_state == "silent":
            port = await stack.enter_async_context(silent_server())
        else:
            port = refused_port()
        cfg = config(
            emulator.endpoint_url,
            redis={"url": f"redis://127.0.0.1:{port}/0", "timeout_seconds": 0.02},
        )
        stubs = await stack.enter_async_context(serving(cfg))
        timings = []
        metas = []
        for user in ("u1", "u1", "u2", "u2"):
            start = time.perf_counter()
            _, meta = await answer(stubs.runtime.GetRecommendations(recs(user)))
            timings.append(time.perf_counter() - start)
            metas.append(meta["mlgw-cache"])
    assert metas == ["miss", "hit", "miss", "hit"]  # the local tier carries on
    assert await upstream_calls(emulator) == 2
    # A hung Redis costs at most its timeout once, then nothing during the cooldown.
    assert max(timings) < 0.5, timings
    after = sum(failures.labels(kind)._value.get() for kind in ("error", "timeout"))
    assert after >= before + 1
