"""Every AWS error of every mirrored operation reaches the caller as the README says.

The expected code, ErrorInfo reason and RetryInfo presence are read from the error table
in README.md, so the documentation and the behaviour are checked together, row by row. The
emulator injects each error in AWS's own wire shape; aiobotocore parses it for real.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2

from gateway.awsmodel import operation_model
from gateway.operations import OPERATIONS, Operation
from gateway.upstream.errors import THROTTLING_CODES
from tests.integration.conftest import Stubs
from tests.integration.requests import VALID
from tests.support import details, error_info

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
THROTTLE_ROW = "ThrottlingException and the other throttling codes, or HTTP 429"
RESET_ROW = "connection refused, reset or closed"


def documented() -> dict[str, tuple[str, str, bool]]:
    block = README.split("<!-- error-table:start -->")[1].split("<!-- error-table:end -->")[0]
    rows = {}
    for line in block.strip().splitlines()[2:]:
        failure, code, reason, retry = (cell.strip() for cell in line.strip("|").split("|"))
        rows[failure] = (code, reason, retry == "yes")
    return rows


TABLE = documented()


def cases() -> list[tuple[Operation, str]]:
    out = []
    for op in OPERATIONS:
        modelled = {e.name for e in operation_model(op.upstream, op.name).error_shapes}
        kinds = modelled | {"ThrottlingException", "InternalServerException", "connection_reset"}
        out += [(op, kind) for kind in sorted(kinds)]
    return out


def expected(kind: str) -> tuple[str, str, bool]:
    if kind == "connection_reset":
        return TABLE[RESET_ROW]
    if kind in THROTTLING_CODES:
        return TABLE[THROTTLE_ROW]
    return TABLE[kind]


def service_stub(stubs: Stubs, op: Operation) -> Any:
    return {
        "personalize-runtime": stubs.runtime,
        "personalize": stubs.personalize,
        "machinelearning": stubs.aml,
        "bedrock": stubs.bedrock,
    }[op.upstream]


@pytest.mark.parametrize(("op", "kind"), cases(), ids=lambda v: getattr(v, "name", v))
async def test_error_is_mapped_as_documented(
    op: Operation, kind: str, stubs: Stubs, emulator: Any
) -> None:
    emulator.set_faults({"errors": {op.name: {kind: 1.0}}})
    method = getattr(service_stub(stubs, op), op.name)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await method(VALID[op.name], timeout=5)
    error = caught.value
    code, reason, retryable = expected(kind)
    assert error.code().name == code
    info = error_info(error)
    assert info.reason == reason
    assert info.domain == f"{op.upstream}.amazonaws.com"
    assert bool(details(error, error_details_pb2.RetryInfo)) == retryable
    if kind != "connection_reset":
        assert info.metadata["awsErrorCode"] in (kind, f"{kind}Exception")
        assert info.metadata["awsRequestId"]  # AWS's request id, for support cases
        assert error.details()  # AWS's message passes through
    assert "testing-secret-key" not in (error.details() or "")
    assert "Signature=" not in (error.details() or "")


async def test_credentials_aws_refuses_are_the_gateways_problem(
    make_gateway: Any, emulator: Any
) -> None:
    """The emulator checks signatures with botocore's signer; a wrong secret fails the same
    way on the fast path (GetRecommendations) and through botocore (ListBatchInferenceJobs),
    and the secret appears nowhere in the answer."""
    gateway = await make_gateway(credentials=("testing-access-key", "not-the-secret"))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
        stubs = Stubs(channel)
        for call, request in (
            (stubs.runtime.GetRecommendations, VALID["GetRecommendations"]),
            (stubs.personalize.ListBatchInferenceJobs, VALID["ListBatchInferenceJobs"]),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await call(request, timeout=5)
            assert caught.value.code() == grpc.StatusCode.INTERNAL
            info = error_info(caught.value)
            assert info.reason == "UPSTREAM_AUTH_FAILED"
            assert info.metadata["awsErrorCode"] == "InvalidSignatureException"
            assert "not-the-secret" not in f"{caught.value.details()} {info}"
    assert emulator.stats()["calls"] == {}
