"""The fast path sends exactly what botocore would, and answers and fails like it.

The request botocore builds is captured at its `before-send` event (the public hook meant
for this) and compared with the fast path's: method, URL, body bytes and the whole
Authorization header, for real-AWS endpoints (plain and FIPS) and a custom endpoint.
Answers come from the real emulator, or from a one-route aiohttp server for answers the
emulator never gives; all over loopback.
"""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession
from aiohttp import web
from botocore.awsrequest import AWSPreparedRequest
from botocore.exceptions import ClientError, NoCredentialsError
from botocore.model import Shape
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.awsmodel import operation_model
from gateway.emulator import Emulator
from gateway.errors import UpstreamError
from gateway.operations import OPERATIONS
from gateway.upstream.fastpath import FastCall, fast_call, ineligible_because
from gateway.upstream.invoke import Upstream

RUNTIME = "personalize-runtime"
FAST = ["GetRecommendations", "GetPersonalizedRanking", "GetActionRecommendations"]
CAMPAIGN = "arn:aws:personalize:us-east-1:000000000000:campaign/demo"


class Captured(Exception):
    def __init__(self, request: AWSPreparedRequest) -> None:
        super().__init__("captured")
        self.request = request


def client(endpoint_url: str | None = None, **config: Any) -> Any:
    return AioSession().create_client(
        RUNTIME,
        region_name="eu-west-1",
        endpoint_url=endpoint_url,
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        aws_session_token="session-token",
        config=AioConfig(retries={"total_max_attempts": 1}, parameter_validation=False, **config),
    )


def values(shape: Shape, depth: int = 0) -> st.SearchStrategy[Any]:
    """Any value of `shape`'s JSON form (constraints aside: serialization ignores them)."""
    kind = shape.type_name
    if kind == "structure":
        members = shape.members  # type: ignore[attr-defined]
        if depth > 3:
            return st.just({})
        return st.fixed_dictionaries(
            {}, optional={n: values(m, depth + 1) for n, m in members.items()}
        )
    if kind == "list":
        return st.lists(values(shape.member, depth + 1), max_size=3)  # type: ignore[attr-defined]
    if kind == "map":
        return st.dictionaries(st.text(max_size=8), values(shape.value, depth + 1), max_size=3)  # type: ignore[attr-defined]
    if kind in ("integer", "long"):
        return st.integers(-(2**31), 2**31 - 1)
    if kind in ("float", "double"):
        return st.floats(allow_nan=False, allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    assert kind == "string", kind
    return st.text(max_size=20)


def test_exactly_the_plain_json_operations_qualify() -> None:
    eligible = {
        op.name
        for op in OPERATIONS
        if ineligible_because(operation_model(op.upstream, op.name)) is None
    }
    assert eligible == set(FAST)


METHODS = {op.name: op.client_method for op in OPERATIONS}


async def botocore_request(c: Any, operation: str, params: dict[str, Any]) -> AWSPreparedRequest:
    """What botocore would put on the wire, stopped before it is sent."""

    def capture(request: AWSPreparedRequest, **_: Any) -> None:
        raise Captured(request)

    event = f"before-send.{RUNTIME}.{operation}"
    c.meta.events.register(event, capture)
    try:
        with pytest.raises(Captured) as captured:
            await getattr(c, METHODS[operation])(**params)
    finally:
        c.meta.events.unregister(event, capture)
    return captured.value.request


def x_amz_date_epoch(request: AWSPreparedRequest) -> float:
    stamp = request.headers["X-Amz-Date"]
    if isinstance(stamp, bytes):
        stamp = stamp.decode()
    return calendar.timegm(time.strptime(stamp, "%Y%m%dT%H%M%SZ"))


def header(request: AWSPreparedRequest, name: str) -> str:
    value = request.headers[name]
    return value.decode() if isinstance(value, bytes) else str(value)


@pytest.mark.parametrize(
    ("endpoint_url", "config"),
    [(None, {}), (None, {"use_fips_endpoint": True}), ("http://127.0.0.1:4566", {})],
    ids=["aws", "aws-fips", "custom"],
)
def test_prepared_request_equals_botocores(
    endpoint_url: str | None, config: dict[str, Any]
) -> None:
    # Sync on purpose: Hypothesis drives the examples, each runs on this test's own loop.
    loop = asyncio.new_event_loop()
    stack = contextlib.AsyncExitStack()
    try:
        c = loop.run_until_complete(stack.enter_async_context(client(endpoint_url, **config)))
        credentials = loop.run_until_complete(
            c._request_signer._credentials.get_frozen_credentials()
        )
        calls = {name: fast_call(c, name) for name in FAST}

        @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(data=st.data())
        def check(data: st.DataObject) -> None:
            name = data.draw(st.sampled_from(FAST))
            shape = operation_model(RUNTIME, name).input_shape
            assert shape is not None
            params = data.draw(values(shape))
            expected = loop.run_until_complete(botocore_request(c, name, params))
            fast = calls[name]
            assert fast is not None
            ours = fast.prepare(params, credentials, x_amz_date_epoch(expected))
            assert (ours.method, ours.url) == (expected.method, expected.url)
            assert ours.body == expected.body
            for wire in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token", "Content-Type"):
                assert ours.headers[wire.lower()] == header(expected, wire), wire
            assert ours.headers["content-length"] == str(len(expected.body or b""))

        check()
    finally:
        loop.run_until_complete(stack.aclose())
        loop.close()


ARN = "arn:aws:personalize:us-east-1:000000000000"
VALID = {
    "GetRecommendations": {"campaignArn": f"{ARN}:campaign/demo", "userId": "u1", "numResults": 7},
    "GetPersonalizedRanking": {
        "campaignArn": f"{ARN}:campaign/ranking",
        "userId": "u-3",
        "inputList": ["i5", "i17", "i99", "unknown-item"],
    },
    "GetActionRecommendations": {"campaignArn": f"{ARN}:campaign/actions", "userId": "u"},
}


def without_metadata(answer: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in answer.items() if k not in ("ResponseMetadata", "recommendationId")}


@pytest.fixture
async def runtime(emulator_client: Any) -> Any:
    return await emulator_client(RUNTIME, validate=False)


@pytest.mark.parametrize("operation", FAST)
async def test_answers_equal_botocores(runtime: Any, operation: str) -> None:
    fast = fast_call(runtime, operation)
    assert fast is not None
    params = VALID[operation]
    ours = await fast(params)
    theirs = await getattr(runtime, METHODS[operation])(**params)
    assert ours["recommendationId"].startswith("RID-")
    assert without_metadata(ours) == without_metadata(theirs)
    assert "ResponseMetadata" not in ours


async def raised(call: Any) -> ClientError:
    with pytest.raises(ClientError) as caught:
        await call
    return caught.value


@pytest.mark.parametrize(
    ("fault", "params"),
    [
        ("ThrottlingException", VALID["GetRecommendations"]),
        ("InternalServerException", VALID["GetRecommendations"]),
        (None, {**VALID["GetRecommendations"], "campaignArn": f"{ARN}:campaign/nope"}),
        (None, {**VALID["GetRecommendations"], "numResults": 100_000}),
    ],
    ids=["throttled", "internal", "not-found", "invalid"],
)
async def test_errors_equal_botocores(
    runtime: Any, emulator: Emulator, fault: str | None, params: dict[str, Any]
) -> None:
    if fault is not None:
        emulator.set_faults({"seed": 1, "errors": {"GetRecommendations": {fault: 1.0}}})
    fast = fast_call(runtime, "GetRecommendations")
    assert fast is not None
    ours = await raised(fast(params))
    theirs = await raised(runtime.get_recommendations(**params))
    assert type(ours) is type(theirs)
    assert ours.response["Error"] == theirs.response["Error"]
    mine, its = ours.response["ResponseMetadata"], theirs.response["ResponseMetadata"]
    assert mine["HTTPStatusCode"] == its["HTTPStatusCode"] >= 400
    assert mine["RequestId"]
    assert mine["RequestId"] != its["RequestId"]
    assert ours.operation_name == theirs.operation_name == "GetRecommendations"


@pytest.fixture
async def odd_upstream() -> AsyncIterator[tuple[str, list[bytes]]]:
    """An HTTP server answering 200 with each body of the list in turn."""
    bodies: list[bytes] = []

    async def answer(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=bodies.pop(0), headers={"x-amzn-RequestId": "odd-1"})

    app = web.Application()
    app.router.add_post("/recommendations", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}", bodies
    await runner.cleanup()


async def test_a_success_answer_that_is_not_a_json_object_is_an_upstream_error(
    odd_upstream: tuple[str, list[bytes]],
) -> None:
    url, bodies = odd_upstream
    async with client(url) as c:
        fast = fast_call(c, "GetRecommendations")
        assert fast is not None
        bodies.extend([b"<html>proxy error</html>", b"[1, 2]", b""])
        for _ in range(2):
            with pytest.raises(UpstreamError) as caught:
                await fast(VALID["GetRecommendations"])
            assert caught.value.code is grpc.StatusCode.INTERNAL
            assert caught.value.reason == "UPSTREAM_BAD_RESPONSE"
            assert caught.value.metadata["awsRequestId"] == "odd-1"
        assert await fast(VALID["GetRecommendations"]) == {}


async def test_no_credentials_is_botocores_error(
    monkeypatch: pytest.MonkeyPatch, emulator: Emulator
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    session = AioSession()
    async with session.create_client(
        RUNTIME, region_name="us-east-1", endpoint_url=emulator.endpoint_url
    ) as c:
        fast = fast_call(c, "GetRecommendations")
        assert isinstance(fast, FastCall)
        with pytest.raises(NoCredentialsError):
            await fast(VALID["GetRecommendations"])
    assert emulator.stats()["calls"].get("GetRecommendations", 0) == 0


async def test_botocore_sends_it_when_the_client_does_not_sign_with_sigv4() -> None:
    async with client(None, signature_version="v4a") as c:
        assert fast_call(c, "GetRecommendations") is None


async def test_the_setting_switches_it_off(runtime: Any) -> None:
    op = next(o for o in OPERATIONS if o.name == "GetRecommendations")
    assert isinstance(Upstream({RUNTIME: runtime}).sender(op), FastCall)
    assert not isinstance(Upstream({RUNTIME: runtime}, fast_path=False).sender(op), FastCall)
