"""Health, reflection, metrics, logs, graceful drain and several workers on one port."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from mlgw.personalize_runtime.v1 import personalize_runtime_pb2 as rt
from mlgw.personalize_runtime.v1 import personalize_runtime_pb2_grpc as rt_grpc

from gateway.operations import OPERATIONS
from gateway.supervisor import free_port
from tests.integration.conftest import TEST_CREDENTIALS, GatewayFactory, Stubs
from tests.support import GatewayProcess, eventually, gateway_process

ARN = "arn:aws:personalize:us-east-1:000000000000"
ROOT = Path(__file__).resolve().parents[2]


def request(user: str) -> rt.GetRecommendationsRequest:
    return rt.GetRecommendationsRequest(campaign_arn=f"{ARN}:campaign/demo", user_id=user)


async def health(channel: grpc.aio.Channel, service: str = "") -> int:
    check = channel.unary_unary(
        "/grpc.health.v1.Health/Check",
        request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
        response_deserializer=health_pb2.HealthCheckResponse.FromString,
    )
    reply = await check(health_pb2.HealthCheckRequest(service=service), timeout=2)
    return int(reply.status)


async def test_health_reports_every_service(stubs: Stubs) -> None:
    assert await health(stubs.channel) == health_pb2.HealthCheckResponse.SERVING
    for service in {op.service for op in OPERATIONS}:
        assert await health(stubs.channel, service) == health_pb2.HealthCheckResponse.SERVING


async def test_reflection_lists_the_services(stubs: Stubs) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(stubs.channel)
    call = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
    )
    replies = [reply async for reply in call]
    names = {s.name for s in replies[0].list_services_response.service}
    assert {op.service for op in OPERATIONS} | {"grpc.health.v1.Health"} <= names


async def scrape(port: int) -> str:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/metrics") as response,
    ):
        assert response.status == 200
        return await response.text()


def sample(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        if all(f'{key}="{value}"' in line for key, value in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_metrics_count_requests_codes_and_upstream_calls(
    make_gateway: GatewayFactory,
) -> None:
    port = free_port()
    gateway = await make_gateway(metrics_port=port)
    before = await scrape(port)  # the registry is per process: compare deltas
    async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
        stub = rt_grpc.PersonalizeRuntimeServiceStub(channel)
        await stub.GetRecommendations(request("metrics-1"), timeout=5)
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.GetRecommendations(rt.GetRecommendationsRequest(user_id="x"), timeout=5)
    after = await scrape(port)
    method = "GetRecommendations"

    def delta(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert delta("mlgw_requests_total", method=method, code="OK") == 1
    assert delta("mlgw_requests_total", method=method, code="INVALID_ARGUMENT") == 1
    assert delta("mlgw_upstream_calls_total", operation=method, outcome="ok") == 1
    assert delta("mlgw_request_duration_seconds_count", method=method) == 2
    assert sample(after, "mlgw_in_flight_requests", method=method) == 0
    assert TEST_CREDENTIALS[1] not in after


async def test_errors_log_one_warning_with_request_ids_and_no_secrets(
    stubs: Stubs, caplog: pytest.LogCaptureFixture
) -> None:
    missing = rt.GetRecommendationsRequest(campaign_arn=f"{ARN}:campaign/nope", user_id="u")
    with caplog.at_level(logging.INFO), pytest.raises(grpc.aio.AioRpcError) as caught:
        await stubs.runtime.GetRecommendations(
            missing, timeout=5, metadata=(("x-request-id", "req-123"),)
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    (record,) = [r for r in caplog.records if r.name == "gateway.rpc"]
    assert record.levelno == logging.WARNING
    assert record.request_id == "req-123"  # type: ignore[attr-defined]
    assert record.aws_request_id  # type: ignore[attr-defined]
    assert record.code == "NOT_FOUND"  # type: ignore[attr-defined]
    assert all(TEST_CREDENTIALS[1] not in r.getMessage() for r in caplog.records)


def free_port_pair() -> int:
    for _ in range(50):
        port = free_port()
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no two consecutive free ports")


# ---- the real command, as a process -------------------------------------------------------


@pytest.fixture
async def serve(emulator: Any, tmp_path: Path) -> AsyncIterator[Any]:
    """`await serve(*args, env=..., config=...)`: the real command, stopped at teardown."""
    started = 0
    async with AsyncExitStack() as stack:

        async def start(
            *args: str, env: dict[str, str] | None = None, config: bool = True
        ) -> GatewayProcess:
            config_toml = (
                f'[server]\nhost = "127.0.0.1"\ngrace_seconds = 10.0\n'
                f'[upstream]\nendpoint_url = "{emulator.endpoint_url}"\nregion = "us-east-1"\n'
            )
            nonlocal started
            started += 1
            name = f"gateway-{started}"
            process = gateway_process(
                config_toml if config else None, tmp_path, *args, name=name, env=env
            )
            return await stack.enter_async_context(process)

        yield start


async def test_sigterm_drains_in_flight_calls_and_exits_zero(serve: Any, emulator: Any) -> None:
    gateway = await serve("--metrics-port", "0")
    emulator.set_faults({"latency": {"GetRecommendations": {"fixed_ms": 1000}}})
    async with grpc.aio.insecure_channel(gateway.target) as channel:
        stub = rt_grpc.PersonalizeRuntimeServiceStub(channel)
        calls = [stub.GetRecommendations(request(f"drain-{i}"), timeout=20) for i in range(5)]
        await eventually(lambda: emulator.stats()["in_flight"] == 5)
        gateway.process.send_signal(signal.SIGTERM)

        # New calls are refused once the drain has begun...
        async def refused() -> bool:
            try:
                await health(channel)
            except grpc.aio.AioRpcError as error:
                return error.code() == grpc.StatusCode.UNAVAILABLE
            return False

        await eventually(refused)
        # ... while every call already in flight completes normally.
        replies = await asyncio.gather(*calls)
    assert all(len(reply.item_list) == 25 for reply in replies)
    assert await asyncio.wait_for(gateway.process.wait(), 20) == 0
    logs = gateway.log.read_text()
    assert '"msg": "draining"' in logs
    assert "process-test-secret" not in logs
    assert "AKIAPROCESSTESTKEY01" not in logs


async def test_workers_share_one_port(serve: Any) -> None:
    metrics_port = free_port_pair()  # worker i serves metrics on port + i
    gateway = await serve("--workers", "2", "--metrics-port", str(metrics_port))
    channels = [
        grpc.aio.insecure_channel(gateway.target, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(12)
    ]
    try:
        for i, channel in enumerate(channels):
            stub = rt_grpc.PersonalizeRuntimeServiceStub(channel)
            for j in range(3):
                await stub.GetRecommendations(request(f"w-{i}-{j}"), timeout=10)
    finally:
        for channel in channels:
            await channel.close()
    served = [
        sample(await scrape(port), "mlgw_requests_total", method="GetRecommendations", code="OK")
        for port in (metrics_port, metrics_port + 1)
    ]
    assert sum(served) == 36
    assert all(count > 0 for count in served), served  # both processes served calls
    gateway.process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(gateway.process.wait(), 30) == 0


async def test_serve_needs_no_config_file_and_reads_the_aws_environment(
    serve: Any, emulator: Any
) -> None:
    """No config file: AWS_REGION and AWS_ENDPOINT_URL_<SERVICE> work as for any AWS SDK."""
    env = {
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_PERSONALIZE_RUNTIME": emulator.endpoint_url,
    }
    gateway = await serve("--host", "127.0.0.1", "--metrics-port", "0", env=env, config=False)
    async with grpc.aio.insecure_channel(gateway.target) as channel:
        stub = rt_grpc.PersonalizeRuntimeServiceStub(channel)
        reply = await stub.GetRecommendations(request("env-1"), timeout=10)
    assert len(reply.item_list) == 25
    assert emulator.stats()["calls"]["GetRecommendations"] == 1
    gateway.process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(gateway.process.wait(), 20) == 0


async def test_oversized_requests_are_refused_before_the_pipeline(
    stubs: Stubs, emulator: Any
) -> None:
    too_big = rt.GetPersonalizedRankingRequest(
        campaign_arn=f"{ARN}:campaign/ranking", user_id="u", input_list=["x" * 250] * 5000
    )
    assert too_big.ByteSize() > 1 << 20
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stubs.runtime.GetPersonalizedRanking(too_big, timeout=5)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert emulator.stats()["calls"] == {}
