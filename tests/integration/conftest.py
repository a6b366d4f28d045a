"""The real gateway, in-process, in front of the real emulator, over loopback sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from mlgw.bedrock.v1 import bedrock_pb2_grpc
from mlgw.machinelearning.v1 import machinelearning_pb2_grpc
from mlgw.personalize.v1 import personalize_pb2_grpc
from mlgw.personalize_runtime.v1 import personalize_runtime_pb2_grpc

from gateway.config import Config
from gateway.server import Gateway

TEST_CREDENTIALS = ("testing-access-key", "testing-secret-key")


def gateway_config(endpoint_url: str, **server: Any) -> Config:
    return Config.from_dict(
        {
            "server": {"host": "127.0.0.1", "port": 0, "grace_seconds": 5.0, **server},
            "metrics": {"port": 0},
            "upstream": {"endpoint_url": endpoint_url, "region": "us-east-1"},
        }
    )


@pytest.fixture
async def gateway(emulator: Any) -> AsyncIterator[Gateway]:
    gw = Gateway(gateway_config(emulator.endpoint_url), credentials=TEST_CREDENTIALS)
    await gw.start()
    try:
        yield gw
    finally:
        await gw.stop(0)


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
