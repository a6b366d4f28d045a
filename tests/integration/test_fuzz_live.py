"""The live fuzz, bounded: 10,000 adversarial inputs against a gateway process on the
emulator, each answered clearly, and the gateway still answering correctly afterwards."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import pytest
from mlgw.personalize_runtime.v1 import personalize_runtime_pb2 as rt
from mlgw.personalize_runtime.v1 import personalize_runtime_pb2_grpc

from gateway.upstream.mapping import from_aws, to_aws
from tests.fuzz.live import fuzz, inputs
from tests.integration.requests import VALID
from tests.support import error_info, gateway_process, process_config

INPUTS = 10_000


async def test_ten_thousand_hostile_inputs_then_correct_answers(
    emulator: Any, emulator_client: Any, tmp_path: Path
) -> None:
    async with gateway_process(process_config(emulator.endpoint_url), tmp_path) as gateway:
        report = await fuzz(gateway.target, inputs(INPUTS, seed=1))
        assert report.unclear == [], report.summary()
        assert report.total == INPUTS
        reasons = {reason for _, reason in report.answers}
        # The inputs reached every layer: the decoder, validation and the upstream.
        assert {"MALFORMED_REQUEST", "INVALID_REQUEST", "RESOURCE_NOT_FOUND"} <= reasons
        assert report.answers[("OK", "-")] > 0

        async with grpc.aio.insecure_channel(gateway.target) as channel:
            stub = personalize_runtime_pb2_grpc.PersonalizeRuntimeServiceStub(channel)
            known = VALID["GetRecommendations"].SerializeToString()
            request = rt.GetRecommendationsRequest.FromString(known)
            metadata = (("cache-control", "no-cache"),)
            reply = await stub.GetRecommendations(request, metadata=metadata, timeout=10)
            # A corrupt body to a job RPC (grpc's own decoder answered UNKNOWN before the fix).
            get_operation: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
                "/google.longrunning.Operations/GetOperation"
            )
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await get_operation(b"\xff\xff", timeout=10)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_info(raised.value).reason == "MALFORMED_REQUEST"
        assert gateway.process.returncode is None
    client = await emulator_client("personalize-runtime")
    direct = await client.get_recommendations(**to_aws(request))
    assert reply == from_aws(rt.GetRecommendationsResponse, direct)
    log = gateway.log.read_text()
    assert "Traceback" not in log
    assert "unexpected failure" not in log
