"""AWS errors -> gRPC status: the table the docs print, applied in one place.

Modelled AWS error codes map by name; throttling is recognised by the same code list
botocore's standard retry mode uses; transport failures and timeouts have their own rows;
anything unknown is UNKNOWN (4xx) or UNAVAILABLE (5xx). AWS's message passes through, the
AWS request id goes into ErrorInfo metadata, and RetryInfo is attached where a retry can
help. Parameters, credentials and signatures are never part of the message.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import aiohttp
import grpc
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from gateway.errors import DeadlineExceeded, GatewayError, InternalError, UpstreamError

S = grpc.StatusCode

#: How long a caller should wait before retrying, when the upstream gave no hint.
DEFAULT_RETRY_AFTER = 1.0


@dataclass(frozen=True, slots=True)
class ErrorRow:
    code: grpc.StatusCode
    reason: str
    retryable: bool = False
    throttled: bool = False


#: AWS error code -> gRPC. Covers every error modelled by every mirrored operation.
AWS_ERRORS: dict[str, ErrorRow] = {
    "InvalidInputException": ErrorRow(S.INVALID_ARGUMENT, "UPSTREAM_INVALID_INPUT"),
    "ValidationException": ErrorRow(S.INVALID_ARGUMENT, "UPSTREAM_VALIDATION"),
    "InvalidNextTokenException": ErrorRow(S.INVALID_ARGUMENT, "INVALID_NEXT_TOKEN"),
    "TooManyTagsException": ErrorRow(S.INVALID_ARGUMENT, "TOO_MANY_TAGS"),
    "ResourceNotFoundException": ErrorRow(S.NOT_FOUND, "RESOURCE_NOT_FOUND"),
    "ResourceAlreadyExistsException": ErrorRow(S.ALREADY_EXISTS, "RESOURCE_ALREADY_EXISTS"),
    "IdempotentParameterMismatchException": ErrorRow(
        S.ALREADY_EXISTS, "IDEMPOTENT_PARAMETER_MISMATCH"
    ),
    "ConflictException": ErrorRow(S.FAILED_PRECONDITION, "CONFLICT"),
    "ResourceInUseException": ErrorRow(S.FAILED_PRECONDITION, "RESOURCE_IN_USE"),
    # Personalize uses LimitExceeded both for request rates and for its 5-job quota.
    "LimitExceededException": ErrorRow(S.RESOURCE_EXHAUSTED, "LIMIT_EXCEEDED", True, True),
    "ServiceQuotaExceededException": ErrorRow(S.RESOURCE_EXHAUSTED, "SERVICE_QUOTA_EXCEEDED"),
    # The gateway's own IAM role lacks access: a deployment problem, not the caller's.
    "AccessDeniedException": ErrorRow(S.INTERNAL, "UPSTREAM_ACCESS_DENIED"),
    # AWS refused the gateway's credentials or signature (common to every service): the
    # same kind of deployment problem.
    **dict.fromkeys(
        (
            "UnrecognizedClientException",
            "InvalidSignatureException",
            "IncompleteSignatureException",
            "MissingAuthenticationTokenException",
            "ExpiredTokenException",
        ),
        ErrorRow(S.INTERNAL, "UPSTREAM_AUTH_FAILED"),
    ),
    "InternalServerException": ErrorRow(S.UNAVAILABLE, "UPSTREAM_INTERNAL", True),
    "ServiceUnavailableException": ErrorRow(S.UNAVAILABLE, "UPSTREAM_UNAVAILABLE", True),
    "ServiceUnavailable": ErrorRow(S.UNAVAILABLE, "UPSTREAM_UNAVAILABLE", True),
}

#: Throttling codes, as botocore's standard retry mode lists them.
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "RequestThrottled",
        "SlowDown",
        "EC2ThrottledException",
    }
)
_THROTTLED = ErrorRow(S.RESOURCE_EXHAUSTED, "UPSTREAM_THROTTLED", True, True)


def from_client_error(error: ClientError, service: str) -> UpstreamError:
    body: dict[str, Any] = error.response
    info = body.get("Error", {})
    aws_code = str(info.get("Code") or "Unknown")
    meta = body.get("ResponseMetadata", {})
    status = int(meta.get("HTTPStatusCode") or 0)
    row = AWS_ERRORS.get(aws_code)
    if row is None:
        if aws_code in THROTTLING_CODES or status == 429:
            row = _THROTTLED
        elif status >= 500:
            row = ErrorRow(S.UNAVAILABLE, "UPSTREAM_UNAVAILABLE", True)
        else:
            row = ErrorRow(S.UNKNOWN, "UPSTREAM_UNKNOWN_ERROR")
    hint = _retry_after(meta) if row.retryable else None
    return UpstreamError(
        str(info.get("Message") or aws_code),
        code=row.code,
        reason=row.reason,
        service=service,
        request_id=meta.get("RequestId"),
        aws_code=aws_code,
        retry_after=DEFAULT_RETRY_AFTER if row.retryable and hint is None else hint,
        retryable=row.retryable,
        throttled=row.throttled,
        retry_hint=hint,
    )


def from_exception(error: BaseException, service: str, *, idempotent: bool) -> GatewayError:
    """Any failure of an upstream attempt other than an AWS error response."""
    if isinstance(error, GatewayError):  # already mapped (e.g. the fast path's bad answer)
        return error
    if isinstance(error, ClientError):
        return from_client_error(error, service)
    if isinstance(error, ReadTimeoutError | asyncio.TimeoutError):
        return DeadlineExceeded(
            f"{service} did not answer within the call's deadline",
            reason="UPSTREAM_TIMEOUT",
            metadata={"service": service},
        )
    if isinstance(error, NoCredentialsError):
        return UpstreamError(
            "the gateway has no AWS credentials",
            code=S.INTERNAL,
            reason="UPSTREAM_NO_CREDENTIALS",
            service=service,
        )
    if isinstance(
        error,
        EndpointConnectionError
        | ConnectTimeoutError
        | ConnectionClosedError
        | aiohttp.ClientError
        | ConnectionError,
    ):
        return UpstreamError(
            f"connection to {service} failed",
            code=S.UNAVAILABLE,
            reason="UPSTREAM_CONNECTION_FAILED",
            service=service,
            retry_after=DEFAULT_RETRY_AFTER,
            retryable=idempotent,
        )
    if isinstance(error, BotoCoreError):
        return UpstreamError(
            f"{service} call failed: {type(error).__name__}",
            code=S.INTERNAL,
            reason="UPSTREAM_CLIENT_ERROR",
            service=service,
        )
    # Not a failure of AWS or of the connection: a bug. Keep the exception so the edge can
    # log its traceback (a routine warning would hide it).
    return InternalError(error)


def _retry_after(meta: dict[str, Any]) -> float | None:
    """AWS's own hint (Retry-After seconds, x-amz-retry-after milliseconds), if any."""
    headers = meta.get("HTTPHeaders") or {}
    for name in ("retry-after", "x-amz-retry-after"):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value)
        except ValueError:
            continue
        # x-amz-retry-after is in milliseconds, Retry-After in seconds.
        return seconds / 1000 if name.startswith("x-amz") else seconds
    return None
