"""The real gateway, in-process, in front of the real emulator, over loopback sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest
from mlgw.bedrock.v1 import bedrock_pb2_grpc
from mlgw.machinelearning.v1 import machinelearning_pb2_grpc
from mlgw.personalize.v1 import personalize_pb2_grpc
from mlgw.personalize_runtime.v1 import personalize_runtime_pb2_grpc

from gateway.config import Config
from gateway.emulator import Emulator
from gateway.emulator.config import parse_config
from gateway.server import Gateway
from tests.conftest import TEST_JOB_STEP_SECONDS
from tests.support import PROCESS_CREDENTIALS

TEST_CREDENTIALS = ("testing-access-key", "testing-secret-key")
#: Every key the integration tests sign with (in-process gateways, gateway processes,
#: direct aiobotocore clients).
SIGNING_KEYS = dict([TEST_CREDENTIALS, PROCESS_CREDENTIALS, ("testing", "testing")])


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    """The emulator, verifying every SigV4 signature with botocore's signer: each request
    the gateway sends (its fast path signs with the gateway's own code) is checked by an
    independent implementation."""
    config = parse_config({"auth": {"credentials": SIGNING_KEYS}})
    async with Emulator(config, job_step_seconds=TEST_JOB_STEP_SECONDS) as emu:
        yield emu


def gateway_config(
    endpoint_url: str,
    *,
    server: dict[str, Any] | None = None,
    upstream: dict[str, Any] | None = None,
    metrics_port: int = 0,
    jobs: dict[str, Any] | None = None,
    tls: dict[str, Any] | None = None,
    auth: dict[str, Any] | None = None,
) -> Config:
    return Config.from_dict(
        {
            "server": {"host": "127.0.0.1", "port": 0, "grace_seconds": 5.0, **(server or {})},
            "metrics": {"host": "127.0.0.1", "port": metrics_port},
            "upstream": {"endpoint_url": endpoint_url, "region": "us-east-1", **(upstream or {})},
            **({"jobs": jobs} if jobs is not None else {}),
            **({"tls": tls} if tls is not None else {}),
            **({"auth": auth} if auth is not None else {}),
        }
    )


GatewayFactory = Callable[..., Awaitable[Gateway]]


@pytest.fixture
async def make_gateway(emulator: Any) -> AsyncIterator[GatewayFactory]:
    """`await make_gateway(upstream={...}, server={...})`: a started in-process gateway
    (`credentials=(key, secret)` replaces the test credentials)."""
    started: list[Gateway] = []

    async def make(credentials: tuple[str, str] = TEST_CREDENTIALS, **settings: Any) -> Gateway:
        gw = Gateway(gateway_config(emulator.endpoint_url, **settings), credentials=credentials)
        await gw.start()
        started.append(gw)
        return gw

    try:
        yield make
    finally:
        for gw in started:
            await gw.stop(0)


@pytest.fixture
async def gateway(make_gateway: GatewayFactory) -> Gateway:
    return await make_gateway()


class Stubs:
    """One channel to the gateway and a stub per mirrored service."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.channel = channel
        self.runtime = personalize_runtime_pb2_grpc.PersonalizeRuntimeServiceStub(channel)
        self.personalize = personalize_pb2_grpc.PersonalizeServiceStub(channel)
        self.aml = machinelearning_pb2_grpc.MachineLearningServiceStub(channel)
        self.bedrock = bedrock_pb2_grpc.BedrockServiceStub(channel)


@pytest.fixture
async def stubs(gateway: Gateway) -> AsyncIterator[Stubs]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
        yield Stubs(channel)
