"""The live fuzz, bounded: 10,000 adversarial inputs (unary, batch, job and streaming RPCs)
against a gateway process on the emulator, then 3,000 with hostile identities against one
with `[auth]`; each answered clearly, and each gateway still answering correctly after."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import grpc
import pytest
from mlgw.personalize_runtime.v1 import personalize_runtime_pb2 as rt
from mlgw.personalize_runtime.v1 import personalize_runtime_pb2_grpc

from gateway.upstream.mapping import from_aws, to_aws
from tests.fuzz import auth
from tests.fuzz.live import Metadata, Report, auth_config, fuzz, inputs, leaked_keys
from tests.fuzz.streams import STREAM_PATH, entry, message
from tests.integration.requests import VALID
from tests.support import error_info, gateway_process, process_config

INPUTS = 10_000
AUTH_INPUTS = 3_000


async def known_answer(target: str, metadata: Metadata = ()) -> rt.GetRecommendationsResponse:
    """A known GetRecommendations, past the cache."""
    async with grpc.aio.insecure_channel(target) as channel:
        stub = personalize_runtime_pb2_grpc.PersonalizeRuntimeServiceStub(channel)
        request = rt.GetRecommendationsRequest.FromString(
            VALID["GetRecommendations"].SerializeToString()
        )
        reply: rt.GetRecommendationsResponse = await stub.GetRecommendations(
            request, metadata=(("cache-control", "no-cache"), *metadata), timeout=10
        )
        return reply


async def direct_answer(emulator_client: Any) -> rt.GetRecommendationsResponse:
    client = await emulator_client("personalize-runtime")
    answer = await client.get_recommendations(**to_aws(VALID["GetRecommendations"]))
    return from_aws(rt.GetRecommendationsResponse, answer)


def assert_every_shape_clear(report: Report, count: int) -> None:
    assert report.unclear == [], report.summary()
    assert report.total == count
    assert {"unary", "batch", "stream", "watch"} <= set(report.shapes), report.summary()
    assert report.answers[("OK", "-")] > 0


async def test_ten_thousand_hostile_inputs_then_correct_answers(
    emulator: Any, emulator_client: Any, tmp_path: Path
) -> None:
    async with gateway_process(process_config(emulator.endpoint_url), tmp_path) as gateway:
        report = await fuzz(gateway.target, inputs(INPUTS, seed=1))
        assert_every_shape_clear(report, INPUTS)
        reasons = {reason for _, reason in report.answers}
        # The inputs reached every layer: the decoder, validation and the upstream; streams
        # were refused whole (garbage, 10,000 entries) and entry by entry.
        assert {"MALFORMED_REQUEST", "INVALID_REQUEST", "RESOURCE_NOT_FOUND"} <= reasons
        assert "BATCH_TOO_LARGE" in reasons
        assert ("CANCELLED", "-") in report.answers  # streams the client abandoned
        assert ("INVALID_ARGUMENT", "INVALID_REQUEST") in report.entries

        reply = await known_answer(gateway.target)
        async with grpc.aio.insecure_channel(gateway.target) as channel:
            # A corrupt body to a job RPC (grpc's own decoder answered UNKNOWN before the fix).
            get_operation: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
                "/google.longrunning.Operations/GetOperation"
            )
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await get_operation(b"\xff\xff", timeout=10)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_info(raised.value).reason == "MALFORMED_REQUEST"
        assert gateway.process.returncode is None
    assert reply == await direct_answer(emulator_client)
    log = gateway.log.read_text()
    assert "Traceback" not in log
    assert "unexpected failure" not in log


async def test_hostile_identities_then_an_authorized_correct_answer(
    emulator: Any, emulator_client: Any, tmp_path: Path
) -> None:
    config = auth_config(emulator.endpoint_url)
    async with gateway_process(config, tmp_path, name="auth") as gateway:
        items = inputs(AUTH_INPUTS, seed=2, metadata=auth.METADATA, shuffled=True)
        report = await fuzz(gateway.target, items)
        assert_every_shape_clear(report, AUTH_INPUTS)
        refused = {(code, reason) for code, reason in report.answers}
        assert {
            ("UNAUTHENTICATED", "UNAUTHENTICATED"),
            ("PERMISSION_DENIED", "PERMISSION_DENIED"),
            ("RESOURCE_EXHAUSTED", "CALLER_QUOTA_EXCEEDED"),
        } <= refused, report.summary()
        # Batch and stream entries were refused one by one: other ARNs, over the quota.
        assert ("PERMISSION_DENIED", "PERMISSION_DENIED") in report.entries
        assert ("RESOURCE_EXHAUSTED", "CALLER_QUOTA_EXCEEDED") in report.entries
        reply = await known_answer(gateway.target, auth.admin())
        assert gateway.process.returncode is None
    assert reply == await direct_answer(emulator_client)
    log = gateway.log.read_text()
    assert '"outcome": "UNAUTHENTICATED"' in log  # the audit lines were written
    assert leaked_keys(log) == []
    assert "Traceback" not in log
    assert "unexpected failure" not in log


async def test_streams_cancelled_while_the_gateway_writes_are_no_failures(
    emulator: Any, tmp_path: Path
) -> None:
    # Found by the live fuzz: a client cancelling a stream as the gateway wrote to it made
    # grpc's core fail the write, which the gateway logged as an unexpected failure with a
    # traceback: any client could fill the log with them. 320 streams cancelled after their
    # first result, with more results on the way (a few entries in flight at a time).
    config = process_config(emulator.endpoint_url, "[batch]\nstream_max_in_flight = 4\n")
    body = message(entry(f"e{i}".encode(), "GetRecommendations", VALID_BODY) for i in range(20))
    async with (
        gateway_process(config, tmp_path) as gateway,
        grpc.aio.insecure_channel(gateway.target) as channel,
    ):

        async def cancelled_after_one_result() -> None:
            call: Any = channel.stream_stream(STREAM_PATH)(timeout=10)
            await call.write(body)
            await call.read()
            call.cancel()

        for _ in range(20):
            await asyncio.gather(*(cancelled_after_one_result() for _ in range(16)))
        assert await known_answer(gateway.target) == await known_answer(gateway.target)
    log = gateway.log.read_text()
    assert "Traceback" not in log
    assert "unexpected failure" not in log


VALID_BODY = VALID["GetRecommendations"].SerializeToString()
