"""Start-up probes and the one-call demo that `make run` shows."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp
import grpc
from grpc_health.v1 import health_pb2
from mlgw.personalize_runtime.v1 import personalize_runtime_pb2 as runtime
from mlgw.personalize_runtime.v1 import personalize_runtime_pb2_grpc as runtime_grpc

#: A campaign the emulator's built-in catalog always has.
DEMO_CAMPAIGN = "arn:aws:personalize:us-east-1:000000000000:campaign/demo"
_PROBE_INTERVAL = 0.05


async def wait_until_serving(target: str, alive: Callable[[], bool] = lambda: True) -> None:
    """Poll grpc.health.v1 until the server says SERVING (bounded by the caller's timeout)."""
    async with grpc.aio.insecure_channel(target) as channel:
        # The typeshed stub declares no methods on HealthStub; call it through the channel.
        check = channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        while True:
            if not alive():
                raise RuntimeError(f"the gateway at {target} exited during start-up")
            try:
                reply = await check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(_PROBE_INTERVAL)


async def wait_until_http_ok(url: str, process: asyncio.subprocess.Process) -> None:
    async with aiohttp.ClientSession() as session:
        while True:
            if process.returncode is not None:
                raise RuntimeError(f"the emulator exited with {process.returncode}")
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(_PROBE_INTERVAL)


async def run_demo(target: str) -> None:
    """One real GetRecommendations call through the gateway, printed for a newcomer."""
    request = runtime.GetRecommendationsRequest(
        campaign_arn=DEMO_CAMPAIGN, user_id="user-42", num_results=5
    )
    async with grpc.aio.insecure_channel(target) as channel:
        stub = runtime_grpc.PersonalizeRuntimeServiceStub(channel)
        reply = await stub.GetRecommendations(request, timeout=5)
    lines = [
        f"gateway listening on {target}; upstream: the built-in emulator",
        "GetRecommendations(campaign=demo, user_id=user-42, num_results=5) answered:",
        *(f"  {item.item_id:<16} score={item.score:.6f}" for item in reply.item_list),
        f"  recommendation_id={reply.recommendation_id}",
        "Ctrl-C stops the gateway.",
    ]
    print("\n".join(lines), flush=True)
