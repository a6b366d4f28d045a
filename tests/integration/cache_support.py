"""Helpers for the caching integration tests: gateways with caching settings, the emulator's
admin API (call counts, faults), trailing metadata."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import grpc
from mlgw.personalize_runtime.v1 import personalize_runtime_pb2 as rt

from gateway.config import Config
from gateway.server import Gateway
from tests.integration.conftest import TEST_CREDENTIALS, Stubs

PREFIX = "arn:aws:personalize:us-east-1:000000000000"
CAMPAIGN = f"{PREFIX}:campaign/demo"
RANKING = f"{PREFIX}:campaign/ranking"
POPULAR = f"{PREFIX}:campaign/popular"
MISSING = f"{PREFIX}:campaign/does-not-exist"


def config(endpoint_url: str, **sections: dict[str, Any]) -> Config:
    """The integration tests' gateway config plus caching sections (`cache={...}`, ...)."""
    return Config.from_dict(
        {
            "server": {"host": "127.0.0.1", "port": 0, "grace_seconds": 1.0},
            "metrics": {"port": 0},
            "upstream": {"endpoint_url": endpoint_url, "region": "us-east-1"},
            **sections,
        }
    )


@asynccontextmanager
async def serving(cfg: Config) -> AsyncIterator[Stubs]:
    """A started in-process gateway with `cfg`, and stubs on a channel to it."""
    gateway = Gateway(cfg, credentials=TEST_CREDENTIALS)
    await gateway.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
            yield Stubs(channel)
    finally:
        await gateway.stop(0)


async def admin(emulator: Any, method: str, path: str, body: Any = None) -> Any:
    """The emulator's admin API over HTTP, as any operator would use it."""
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, f"{emulator.endpoint_url}/_emulator/{path}", json=body) as resp,
    ):
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def upstream_calls(emulator: Any, operation: str = "GetRecommendations") -> int:
    stats = await admin(emulator, "GET", "stats")
    return int(stats["calls"].get(operation, 0))


async def patch_faults(emulator: Any, patch: dict[str, Any]) -> None:
    await admin(emulator, "PATCH", "faults", patch)


async def eventually(
    check: Callable[[], Awaitable[bool]], *, polls: int = 500, every: float = 0.01
) -> None:
    """Poll `check` until it holds, a bounded number of times: for conditions that nobody
    signals (a TTL running out, a counter in another process)."""
    for _ in range(polls):
        if await check():
            return
        await asyncio.sleep(every)
    raise AssertionError(f"condition not met after {polls} polls")


def recs(user: str = "u1", **fields: Any) -> rt.GetRecommendationsRequest:
    return rt.GetRecommendationsRequest(**{"campaign_arn": CAMPAIGN, "user_id": user, **fields})


async def answer(call: Any) -> tuple[Any, dict[str, str]]:
    """Await a unary call: (response, trailing metadata as a dict)."""
    response = await call
    return response, dict(await call.trailing_metadata())
