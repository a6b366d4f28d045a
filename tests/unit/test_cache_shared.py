"""The shared tier's client side: a real Redis round trip, a dead one, a silent one, a busy
event loop (late replies are not failures), bursts batched, leases."""

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
from tests.support import eventually

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
    shared = await tier(
        f"redis://127.0.0.1:{port}/0", stack, timeout_seconds=0.02, unresponsive_seconds=0.1
    )
    start = time.perf_counter()
    assert await shared.get(b"k") is None
    elapsed = time.perf_counter() - start
    assert elapsed < 0.2, elapsed  # bounded by the 20 ms timeout, not redis-py's default 5 s
    # Unanswered for `unresponsive_seconds`: Redis is judged down (not at the first miss).
    await eventually(lambda: not shared.link.usable(), within=2.0)
    assert not shared.available


@pytest.mark.redis
async def test_a_busy_event_loop_does_not_switch_the_tier_off(stack: AsyncExitStack) -> None:
    """The burst of the issue: lookups time out because this process's loop is busy (here
    blocked for 60 ms of CPU work), not Redis; they are misses, the tier stays on."""
    shared = await tier(REDIS_URL, stack, timeout_seconds=0.01)
    shared.put(b"hot", 1.0, b"answer", keep_seconds=30)
    await eventually(lambda: _found(shared, b"hot"))
    failures = metrics.CACHE_SHARED_FAILURES.labels("timeout")._value.get()

    lookups = [asyncio.ensure_future(shared.get(f"k{i}".encode())) for i in range(30)]
    # CPU work on the loop (not synchronisation): the replies arrive but wait unread.
    asyncio.get_running_loop().call_soon(time.sleep, 0.06)
    await asyncio.gather(*lookups)
    assert metrics.CACHE_SHARED_FAILURES.labels("timeout")._value.get() > failures  # missed
    assert shared.available
    assert not shared.link.down
    assert await shared.get(b"hot") == (1.0, b"answer")


@pytest.mark.redis
async def test_a_burst_of_lookups_is_one_mget(stack: AsyncExitStack) -> None:
    shared = await tier(REDIS_URL, stack, timeout_seconds=0.5)
    sent: list[int] = []
    mget = shared._client.mget

    async def counting(keys: list[bytes]) -> object:
        sent.append(len(keys))
        return await mget(keys)

    shared._client.mget = counting  # type: ignore[method-assign]
    found = await asyncio.gather(*(shared.get(f"k{i % 10}".encode()) for i in range(99)))
    assert found == [None] * 99
    assert sent == [10]  # one round trip, each distinct key once


@pytest.mark.redis
async def test_a_lease_is_taken_once_and_an_answer_replaces_it(stack: AsyncExitStack) -> None:
    shared = await tier(REDIS_URL, stack, timeout_seconds=0.5)
    assert await shared.acquire(b"k", b"me", 5.0, 0.5) == (None, True)
    assert await shared.acquire(b"k", b"other", 5.0, 0.5) == (None, False)
    assert await shared.peek(b"k", 0.5) == (None, True)
    shared.release(b"k", b"other")  # not the holder: nothing happens
    shared.put(b"k", 2.0, b"answer", keep_seconds=30)
    await eventually(lambda: _peeked(shared, b"k", ((2.0, b"answer"), False)))
    # Stored meanwhile: acquiring answers with it instead of a lease.
    assert await shared.acquire(b"k", b"late", 5.0, 0.5) == ((2.0, b"answer"), False)
    assert await shared.acquire(b"x", b"me", 0.05, 0.5) == (None, True)
    await eventually(lambda: _peeked(shared, b"x", (None, False)))  # expired: free again


async def _found(shared: SharedTier, key: bytes) -> bool:
    return await shared.get(key) is not None


async def _peeked(shared: SharedTier, key: bytes, expected: object) -> bool:
    return await shared.peek(key, 0.5) == expected
