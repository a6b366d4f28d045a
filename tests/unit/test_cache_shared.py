"""The shared tier's client side: a real Redis round trip, a dead one, a silent one."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import pytest

from gateway import metrics
from gateway.cache_config import RedisConfig
from gateway.pipeline.shared import SharedTier, open_redis

REDIS_URL = "redis://127.0.0.1:6379/0"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens here any more: connections are refused


async def tier(url: str, stack: AsyncExitStack, **settings: float) -> SharedTier:
    cfg = RedisConfig(url=url, **settings)  # type: ignore[arg-type]
    client = await open_redis(cfg, stack)
    assert client is not None
    shared = SharedTier(client, cfg, f"mlgw:test:{uuid.uuid4().hex}:")
    stack.push_async_callback(shared.aclose)
    return shared


@pytest.fixture
async def stack() -> AsyncIterator[AsyncExitStack]:
    async with AsyncExitStack() as stack:
        yield stack


@pytest.mark.redis
async def test_round_trip_through_redis(stack: AsyncExitStack) -> None:
    shared = await tier(REDIS_URL, stack, timeout_seconds=0.5)
    assert await shared.get(b"GetRecommendations\nkey") is None
    shared.put(b"GetRecommendations\nkey", 1234.5, b"payload", keep_seconds=30)
    for _ in range(200):  # the write is in the background
        found = await shared.get(b"GetRecommendations\nkey")
        if found is not None:
            break
    assert found == (1234.5, b"payload")
    client = shared._client
    ttl_ms = await client.pttl(shared.redis_key(b"GetRecommendations\nkey"))
    assert 0 < ttl_ms <= 30_000  # Redis drops it when even stale-if-error would not use it


async def test_a_dead_redis_is_a_quick_miss_then_not_asked_at_all(stack: AsyncExitStack) -> None:
    shared = await tier(f"redis://127.0.0.1:{closed_port()}/0", stack, failure_cooldown_seconds=60)
    skipped = metrics.CACHE_SHARED_SKIPPED._value.get()
    start = time.perf_counter()
    assert await shared.get(b"k") is None
    assert time.perf_counter() - start < 0.5
    assert not shared.available  # cooling down
    assert await shared.get(b"k") is None
    shared.put(b"k", 1.0, b"v", keep_seconds=1)  # dropped, not queued
    assert metrics.CACHE_SHARED_SKIPPED._value.get() >= skipped + 3


async def test_a_silent_redis_costs_at_most_the_timeout(stack: AsyncExitStack) -> None:
    connections: list[asyncio.StreamWriter] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        await reader.read(1 << 16)  # read the command, never answer

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    stack.push_async_callback(server.wait_closed)
    stack.callback(server.close)
    stack.callback(lambda: [w.close() for w in connections])
    port = server.sockets[0].getsockname()[1]
    shared = await tier(f"redis://127.0.0.1:{port}/0", stack, timeout_seconds=0.02)
    start = time.perf_counter()
    assert await shared.get(b"k") is None
    elapsed = time.perf_counter() - start
    assert elapsed < 0.2, elapsed  # bounded by the 20 ms timeout, not redis-py's default 5 s
    assert not shared.available
