"""Helpers for the scale-out tests: N real `gateway serve` processes (replicas) on one Redis,
in front of the emulator, each with its own channel; a unique Redis key prefix per test."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from mlgw.personalize_runtime.v1 import personalize_runtime_pb2_grpc
from redis.asyncio import Redis

from gateway.supervisor import free_port
from tests.support import GatewayProcess, gateway_process, process_config

REDIS_URL = "redis://127.0.0.1:6379/0"


@dataclass
class Replica:
    process: GatewayProcess
    runtime: personalize_runtime_pb2_grpc.PersonalizeRuntimeServiceStub
    metrics_port: int = 0

    def log(self) -> str:
        return self.process.log.read_text()

    async def metric(self, name: str) -> float:
        """One unlabelled sample of the replica's /metrics (its own process's registry)."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            text = await response.text()
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise AssertionError(f"{name} not exposed")


def replica_config(
    endpoint_url: str, prefix: str, redis: str = "", extra: str = "", url: str = REDIS_URL
) -> str:
    """A replica's config: Redis for the cache tier (and the limits), keys under `prefix`."""
    return process_config(
        endpoint_url,
        f'[redis]\nurl = "{url}"\n{redis}\n'
        f'[cache]\nkey_prefix = "{prefix}cache:"\n'
        f'[limits]\nredis_key_prefix = "{prefix}limits:"\n' + extra,
    )


@asynccontextmanager
async def replicas(
    tmp_path: Path, configs: Sequence[str], *, metrics: bool = False
) -> AsyncIterator[list[Replica]]:
    """Start one `gateway serve` process per config (in parallel), each with a channel
    (and its Prometheus endpoint on a free port when `metrics`)."""
    async with AsyncExitStack() as stack:

        async def start(i: int, config_toml: str) -> Replica:
            port = free_port() if metrics else 0
            process = await stack.enter_async_context(
                gateway_process(config_toml, tmp_path, "--metrics-port", str(port), name=f"r{i}")
            )
            channel = await stack.enter_async_context(grpc.aio.insecure_channel(process.target))
            stub = personalize_runtime_pb2_grpc.PersonalizeRuntimeServiceStub(channel)
            return Replica(process, stub, port)

        yield list(await asyncio.gather(*(start(i, c) for i, c in enumerate(configs))))


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """A unique key prefix on the real Redis; its keys are deleted afterwards."""
    prefix = f"mlgw:test:{uuid.uuid4().hex}:"
    try:
        yield prefix
    finally:
        await delete_prefix(prefix)


async def delete_prefix(prefix: str, url: str = REDIS_URL) -> None:
    """Delete every key under `prefix` (a test's or a benchmark's own)."""
    client = Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


def upstream_calls(emulator: Any, operation: str = "GetRecommendations") -> int:
    return int(emulator.stats()["calls"].get(operation, 0))
