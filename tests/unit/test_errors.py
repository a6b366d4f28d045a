import grpc
from google.rpc import code_pb2, error_details_pb2

from gateway.errors import FieldViolation, InvalidRequest, UpstreamError


def unpack(status, kind):  # type: ignore[no-untyped-def]
    found = []
    for box in status.details:
        message = kind()
        if box.Unpack(message):
            found.append(message)
    return found


def test_invalid_request_names_every_field() -> None:
    error = InvalidRequest(
        [FieldViolation("user_id", "is required"), FieldViolation("promotions[0].name", "x")]
    )
    status = error.to_status()
    assert status.code == code_pb2.INVALID_ARGUMENT
    (bad,) = unpack(status, error_details_pb2.BadRequest)
    assert [v.field for v in bad.field_violations] == ["user_id", "promotions[0].name"]
    (info,) = unpack(status, error_details_pb2.ErrorInfo)
    assert info.reason == "INVALID_REQUEST"


def test_upstream_error_carries_aws_identity_and_retry() -> None:
    error = UpstreamError(
        "Rate exceeded",
        code=grpc.StatusCode.RESOURCE_EXHAUSTED,
        reason="UPSTREAM_THROTTLED",
        service="personalize-runtime",
        request_id="req-1",
        aws_code="ThrottlingException",
        retry_after=0.25,
    )
    status = error.to_status()
    (info,) = unpack(status, error_details_pb2.ErrorInfo)
    assert info.domain == "personalize-runtime.amazonaws.com"
    assert info.metadata["awsRequestId"] == "req-1"
    assert info.metadata["awsErrorCode"] == "ThrottlingException"
    (retry,) = unpack(status, error_details_pb2.RetryInfo)
    assert retry.retry_delay.ToMilliseconds() == 250
    key, value = error.trailing_metadata()[0]
    assert key == "grpc-status-details-bin"
    assert value == status.SerializeToString()
