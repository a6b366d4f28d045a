"""Helpers for the overload tests: gateways with any config sections, open-loop load."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from mlgw.personalize_runtime.v1 import personalize_runtime_pb2 as rt

from gateway.config import Config
from gateway.server import Gateway
from tests.integration.conftest import TEST_CREDENTIALS, Stubs
from tests.support import details, error_info

ARN = "arn:aws:personalize:us-east-1:000000000000"
DEMO = f"{ARN}:campaign/demo"


def config(endpoint_url: str, **sections: dict[str, Any]) -> Config:
    data: dict[str, Any] = {
        "server": {"host": "127.0.0.1", "port": 0, "grace_seconds": 1.0},
        "metrics": {"host": "127.0.0.1", "port": 0},
        "upstream": {"endpoint_url": endpoint_url, "region": "us-east-1"},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return Config.from_dict(data)


GatewayStarter = Callable[..., Awaitable[tuple[Gateway, Stubs]]]


@pytest.fixture
async def start_gateway(emulator: Any) -> AsyncIterator[GatewayStarter]:
    """`gateway, stubs = await start_gateway(limits={...}, retry={...}, ...)`."""
    started: list[tuple[Gateway, grpc.aio.Channel]] = []

    async def start(**sections: dict[str, Any]) -> tuple[Gateway, Stubs]:
        gateway = Gateway(config(emulator.endpoint_url, **sections), credentials=TEST_CREDENTIALS)
        await gateway.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}")
        started.append((gateway, channel))
        return gateway, Stubs(channel)

    try:
        yield start
    finally:
        for gateway, channel in started:
            await channel.close()
            await gateway.stop(0)


@dataclass
class Outcome:
    """One call's end: `code` is "OK" or the gRPC code name."""

    code: str
    seconds: float
    reason: str = ""
    retry_delay: float | None = None
    cause: str = ""
    quota_subjects: tuple[str, ...] = ()


async def call(method: Any, request: Any, deadline: float, metadata: Any = None) -> Outcome:
    start = time.perf_counter()
    try:
        await method(request, timeout=deadline, metadata=metadata)
    except grpc.aio.AioRpcError as error:
        seconds = time.perf_counter() - start
        try:
            info = error_info(error)
        except AssertionError:  # no google.rpc.Status: the client's own deadline, say
            return Outcome(error.code().name, seconds)
        retry = details(error, error_details_pb2.RetryInfo)
        quota = details(error, error_details_pb2.QuotaFailure)
        return Outcome(
            error.code().name,
            seconds,
            info.reason,
            retry[0].retry_delay.ToTimedelta().total_seconds() if retry else None,
            info.metadata.get("cause", ""),
            tuple(v.subject for q in quota for v in q.violations),
        )
    return Outcome("OK", time.perf_counter() - start)


def recommendations(i: int, campaign: str = DEMO) -> rt.GetRecommendationsRequest:
    """A distinct request per i (its own user): never a cache hit, never coalesced."""
    return rt.GetRecommendationsRequest(campaign_arn=campaign, user_id=f"load-{i}", num_results=5)


async def open_loop(
    send: Callable[[int], Awaitable[Outcome]], rate: float, seconds: float
) -> list[Outcome]:
    """Start call i at t0 + i / rate, without waiting for earlier ones; wait for all."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    tasks = []
    for i in range(int(rate * seconds)):
        delay = start + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)  # pacing the offered load, not synchronisation
        tasks.append(asyncio.create_task(send(i)))
    return list(await asyncio.gather(*tasks))


def upstream_calls(emulator: Any, arn: str, operation: str = "GetRecommendations") -> int:
    return int(emulator.stats()["calls_by_arn"].get(arn, {}).get(operation, 0))


def upstream_throttles(emulator: Any, arn: str, operation: str = "GetRecommendations") -> int:
    return int(emulator.stats()["throttled_by_arn"].get(arn, {}).get(operation, 0))
