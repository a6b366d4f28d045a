"""On demand, not in the default run (issue 10, points 7a and 7b, still open): bursts of
calls that time out together must get the gateway's own status with ErrorInfo, not the
caller's bare transport DEADLINE_EXCEEDED, in at least 95% of cases; and calls that arrive
with about the deadline margin left (5-6 ms) must get reason DEADLINE_EXCEEDED.

It is a race between the gateway's deadline margin and the caller's timer, so its outcome
depends on how busy the machine is: it passed alone every time here, and failed about one
run in three after the other edge tests. Run it with

    .venv/bin/python -m pytest -q -p no:cacheprovider tests/bench/test_timeout_errorinfo.py
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from mlgw.personalize_runtime.v1 import personalize_runtime_pb2 as rt
from mlgw.personalize_runtime.v1 import personalize_runtime_pb2_grpc as rt_grpc

from tests.integration import conftest as integration
from tests.integration import test_edge
from tests.integration.test_edge import REQUEST
from tests.support import details, gateway_process, process_config

#: The integration suite's fixtures (its conftest does not reach this folder).
emulator = integration.emulator
make_gateway = integration.make_gateway
gateway = integration.gateway
stubs = integration.stubs


async def test_under_bursts_against_a_stalled_upstream_timeouts_carry_errorinfo(
    emulator: Any, tmp_path: Path
) -> None:
    """Bursts of 50 calls, each its own request (no coalescing), against an upstream that
    never answers in time: the gateway, not the caller's timer, reports >= 95% of them.
    The first burst after a quiet spell teaches the margin how late this process answers
    when many calls expire together; the two after it are measured."""
    emulator.set_faults({"latency": {"GetRecommendations": {"fixed_ms": 5000}}})
    extra = "[cache]\nenabled = false\n[breaker]\nenabled = false\n"
    config = process_config(emulator.endpoint_url, extra)
    async with (
        gateway_process(config, tmp_path, "--metrics-port", "0") as gateway,
        grpc.aio.insecure_channel(gateway.target) as channel,
    ):
        stub = rt_grpc.PersonalizeRuntimeServiceStub(channel)
        await channel.channel_ready()

        async def one(user: str) -> grpc.aio.AioRpcError:
            request = rt.GetRecommendationsRequest(campaign_arn=REQUEST.campaign_arn, user_id=user)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.GetRecommendations(request, timeout=0.3)
            return caught.value

        async def burst(name: str) -> list[grpc.aio.AioRpcError]:
            return await asyncio.gather(*(one(f"{name}-{i}") for i in range(50)))

        await burst("warm-up")
        errors = await burst("first") + await burst("second")
    assert {e.code() for e in errors} == {grpc.StatusCode.DEADLINE_EXCEEDED}
    reported = [e for e in errors if error_info_or_none(e) is not None]
    assert len(reported) >= 0.95 * len(errors), f"{len(reported)} of {len(errors)}"


def error_info_or_none(error: grpc.aio.AioRpcError) -> Any:
    """The ErrorInfo, or None for a bare status (the caller's own timer, or grpc's)."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    if status is None:
        return None
    (info,) = details(error, error_details_pb2.ErrorInfo)
    return info


@pytest.mark.parametrize("seconds", [5e-3, 6e-3])
async def test_a_deadline_near_the_margin_is_deadline_exceeded_before_sending(
    seconds: float, stubs: Any, emulator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The default run's over-on-arrival test, at the margin itself."""
    await test_edge.test_a_deadline_over_on_arrival_is_deadline_exceeded_before_sending(
        seconds, stubs, emulator, caplog
    )
