"""The thin Python client's own logic: targets, per-call metadata, error details."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import grpc
import pytest
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from mlgw.contract.v1 import contract_pb2 as contract
from mlgw_client import Client, ErrorReason, from_rpc_error, service_config, target

from gateway.operations import OPERATIONS
from tests.certs import write_server_certificates


class FakeRpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str, trailers: tuple) -> None:  # type: ignore[type-arg]
        self._code, self._details, self._trailers = code, details, trailers

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> tuple:  # type: ignore[type-arg]
        return self._trailers


def _packed(*details: object) -> bytes:
    boxes = []
    for detail in details:
        box = any_pb2.Any()
        box.Pack(detail)  # type: ignore[arg-type]
        boxes.append(box)
    status = status_pb2.Status(code=code_pb2.RESOURCE_EXHAUSTED, message="m", details=boxes)
    return status.SerializeToString()


def test_error_details_become_fields() -> None:
    trailer = _packed(
        error_details_pb2.ErrorInfo(
            reason="RATE_LIMITED", domain="mlgw.gateway", metadata={"limit": "x"}
        ),
        error_details_pb2.RetryInfo(
            retry_delay=duration_pb2.Duration(seconds=1, nanos=500_000_000)
        ),
        error_details_pb2.QuotaFailure(
            violations=[error_details_pb2.QuotaFailure.Violation(subject="s", description="d")]
        ),
        error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field="f", description="e")
            ]
        ),
    )
    error = from_rpc_error(
        FakeRpcError(
            grpc.StatusCode.RESOURCE_EXHAUSTED, "slow down", (("grpc-status-details-bin", trailer),)
        )
    )
    assert error.code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error.reason == contract.ERROR_REASON_RATE_LIMITED
    assert error.reason_name == "ERROR_REASON_RATE_LIMITED"
    assert (error.domain, error.metadata) == ("mlgw.gateway", {"limit": "x"})
    assert error.retry_delay == 1.5
    assert [(v.subject, v.description) for v in error.quota_violations] == [("s", "d")]
    assert [(v.field, v.description) for v in error.field_violations] == [("f", "e")]


def test_an_unknown_reason_keeps_its_text() -> None:
    trailer = _packed(error_details_pb2.ErrorInfo(reason="SOMETHING_NEW"))
    error = from_rpc_error(
        FakeRpcError(grpc.StatusCode.UNAVAILABLE, "x", (("grpc-status-details-bin", trailer),))
    )
    assert error.reason == ErrorReason.Value("ERROR_REASON_UNSPECIFIED")
    assert error.reason_text == "SOMETHING_NEW"
    assert error.retry_delay is None


def test_targets() -> None:
    assert target("gateway:50051") == "gateway:50051"
    assert target(["10.0.0.1:1", "10.0.0.2:2"]) == "ipv4:10.0.0.1:1,10.0.0.2:2"
    assert target(["[::1]:1", "[::2]:2"]) == "ipv6:[::1]:1,[::2]:2"
    with pytest.raises(ValueError, match="IPv4 or all IPv6"):
        target(["a:1", "b:2"])


def test_per_call_metadata() -> None:
    client = Client("127.0.0.1:1", api_key="k")
    try:
        got = client.metadata(
            [("x-other", "1")],
            cache_control="no-cache",
            priority=contract.PRIORITY_BATCH,
            request_id="r",
        )
    finally:
        client.close()
    assert got == [
        ("authorization", "Bearer k"),
        ("cache-control", "no-cache"),
        ("mlgw-priority", "batch"),
        ("x-request-id", "r"),
        ("x-other", "1"),
    ]


def test_the_service_config_retries_exactly_the_idempotent_rpcs() -> None:
    config = json.loads(service_config())
    assert config["loadBalancingConfig"] == [{"round_robin": {}}]
    (method,) = config["methodConfig"]
    named = {(n["service"], n["method"]) for n in method["name"]}
    reads = {("google.longrunning.Operations", name) for name in ("GetOperation", "ListOperations")}
    assert (
        named - {("google.longrunning.Operations", "WaitOperation")}
        == {(op.service, op.name) for op in OPERATIONS if op.idempotent} | reads
    )
    assert ("mlgw.bedrock.v1.BedrockService", "CreateModelInvocationJob") not in named
    assert method["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE"]


def test_every_service_is_an_attribute() -> None:
    client = Client("127.0.0.1:1")
    try:
        assert client.personalize_runtime.get_recommendations.__doc__ == (
            "/mlgw.personalize_runtime.v1.PersonalizeRuntimeService/GetRecommendations"
        )
        assert "list_batch_inference_jobs" in dir(client.personalize)
        with pytest.raises(AttributeError, match="no RPC"):
            _ = client.bedrock.no_such_rpc
    finally:
        client.close()


async def test_the_service_config_retries_unavailable_for_idempotent_rpcs_only() -> None:
    from mlgw.personalize_runtime.v1 import personalize_runtime_pb2 as runtime
    from mlgw_client import AsyncClient, GatewayError

    attempts = {"GetRecommendations": 0, "CreateBatchInferenceJob": 0}

    def handler(name: str, failures: int, answer: bytes) -> grpc.RpcMethodHandler:
        async def handle(request: bytes, context: grpc.aio.ServicerContext) -> bytes:  # type: ignore[type-arg]
            attempts[name] += 1
            if attempts[name] <= failures:
                await context.abort(grpc.StatusCode.UNAVAILABLE, "try again")
            return answer

        return grpc.unary_unary_rpc_method_handler(handle)

    answer = runtime.GetRecommendationsResponse(recommendation_id="r").SerializeToString()
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                "mlgw.personalize_runtime.v1.PersonalizeRuntimeService",
                {"GetRecommendations": handler("GetRecommendations", 2, answer)},
            ),
            grpc.method_handlers_generic_handler(
                "mlgw.personalize.v1.PersonalizeService",
                {"CreateBatchInferenceJob": handler("CreateBatchInferenceJob", 99, b"")},
            ),
        ]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with AsyncClient(f"127.0.0.1:{port}", timeout=10) as client:
            got = await client.personalize_runtime.get_recommendations(user_id="u-1")
            assert got.recommendation_id == "r"
            assert attempts["GetRecommendations"] == 3  # two UNAVAILABLE, retried
            with pytest.raises(GatewayError) as caught:
                await client.personalize.create_batch_inference_job(job_name="j")
            assert caught.value.code is grpc.StatusCode.UNAVAILABLE
            assert attempts["CreateBatchInferenceJob"] == 1  # not idempotent: never retried
    finally:
        await server.stop(0)


def _certificates(folder: Path) -> dict[str, bytes]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate (PEM), by file name."""
    write_server_certificates(folder, client=True)
    return {p.name: p.read_bytes() for p in folder.iterdir()}


async def test_tls_and_mtls(tmp_path: Path) -> None:
    from mlgw.personalize_runtime.v1 import personalize_runtime_pb2 as runtime
    from mlgw_client import AsyncClient, GatewayError, Tls

    pem = _certificates(tmp_path)
    seen: list[str] = []

    async def handle(request: bytes, context: grpc.aio.ServicerContext) -> bytes:  # type: ignore[type-arg]
        seen.extend(v for k, v in context.invocation_metadata() or () if k == "authorization")
        return runtime.GetRecommendationsResponse(recommendation_id="tls").SerializeToString()

    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                "mlgw.personalize_runtime.v1.PersonalizeRuntimeService",
                {"GetRecommendations": grpc.unary_unary_rpc_method_handler(handle)},
            )
        ]
    )
    credentials = grpc.ssl_server_credentials(
        [(pem["server.key"], pem["server.crt"])],
        root_certificates=pem["ca.crt"],
        require_client_auth=True,
    )
    port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    try:
        mtls = Tls(pem["ca.crt"], pem["client.crt"], pem["client.key"], server_name="127.0.0.1")
        async with AsyncClient(f"127.0.0.1:{port}", tls=mtls, api_key="k") as client:
            got = await client.personalize_runtime.get_recommendations(user_id="u-1")
        assert got.recommendation_id == "tls"
        assert seen == ["Bearer k"]
        # Without a client certificate the server refuses the handshake.
        async with AsyncClient(f"127.0.0.1:{port}", tls=Tls(pem["ca.crt"]), timeout=5) as client:
            with pytest.raises(GatewayError) as caught:
                await client.personalize_runtime.get_recommendations(user_id="u-1")
        assert caught.value.code is grpc.StatusCode.UNAVAILABLE
    finally:
        await server.stop(0)


async def test_wait_operation_polls_until_done() -> None:
    from google.longrunning import operations_pb2
    from mlgw.personalize_runtime.v1 import personalize_runtime_pb2 as runtime
    from mlgw_client import AsyncClient, GatewayError, Polling

    polls: Counter[str] = Counter()
    result = any_pb2.Any()
    result.Pack(runtime.GetRecommendationsResponse(recommendation_id="done"))
    failure = status_pb2.Status.FromString(
        _packed(error_details_pb2.ErrorInfo(reason="UPSTREAM_VALIDATION"))
    )

    async def get(request: bytes, context: grpc.aio.ServicerContext) -> bytes:  # type: ignore[type-arg]
        name = operations_pb2.GetOperationRequest.FromString(request).name
        polls[name] += 1
        if polls[name] < 3 or name == "never":
            return operations_pb2.Operation(name=name).SerializeToString()
        if name == "ok":
            return operations_pb2.Operation(
                name=name, done=True, response=result
            ).SerializeToString()
        return operations_pb2.Operation(name=name, done=True, error=failure).SerializeToString()

    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                "google.longrunning.Operations",
                {"GetOperation": grpc.unary_unary_rpc_method_handler(get)},
            )
        ]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    fast = Polling(initial=0.01, maximum=0.02, timeout=10)
    try:
        async with AsyncClient(f"127.0.0.1:{port}") as client:
            done = await client.wait_operation("ok", fast)
            answer = runtime.GetRecommendationsResponse()
            assert done.response.Unpack(answer)
            assert answer.recommendation_id == "done"
            assert polls["ok"] == 3
            with pytest.raises(GatewayError) as caught:
                await client.wait_operation(operations_pb2.Operation(name="failed"), fast)
            assert caught.value.code is grpc.StatusCode.RESOURCE_EXHAUSTED
            assert caught.value.reason == contract.ERROR_REASON_UPSTREAM_VALIDATION
            with pytest.raises(TimeoutError):
                await client.wait_operation("never", Polling(initial=0.01, timeout=0.05))
    finally:
        await server.stop(0)
