"""The gateway's one exception hierarchy.

Every failure a caller can see is a `GatewayError`: a canonical gRPC code, a message that is
safe to show (never credentials, signatures or request parameters), and the
`google.rpc.Status` details that machines act on (ErrorInfo always, RetryInfo when waiting
helps, BadRequest or QuotaFailure where they apply). Stages raise these; only the edge
(`gateway.services`) turns them into a gRPC status.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2

from gateway.logs import scrub

#: ErrorInfo.domain for errors the gateway itself decides (validation, shedding, deadlines).
GATEWAY_DOMAIN = "mlgw.gateway"
#: The trailer that carries google.rpc.Status (gRFC and grpcio-status agree on this key).
STATUS_DETAILS_KEY = "grpc-status-details-bin"


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One invalid request field, named by its proto path (for example `promotions[0].name`)."""

    field: str
    description: str


class GatewayError(Exception):
    """A failure with a canonical gRPC code and rich status details."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        domain: str = GATEWAY_DOMAIN,
        metadata: dict[str, str] | None = None,
        retry_after: float | None = None,
        extra_details: Sequence[Message] = (),
        code: grpc.StatusCode | None = None,
    ) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message
        self.reason = reason
        self.domain = domain
        self.metadata = dict(metadata or {})
        self.retry_after = retry_after
        self.extra_details = tuple(extra_details)

    @property
    def caller_message(self) -> str:
        """The message as the caller sees it: scrubbed, since upstream text passes through
        and may echo a signed request (session token, signature)."""
        return scrub(self.message)

    def details(self) -> list[Message]:
        """The google.rpc detail messages, ErrorInfo first (AIP-193: exactly one ErrorInfo)."""
        metadata = {key: scrub(value) for key, value in self.metadata.items()}
        out: list[Message] = [
            error_details_pb2.ErrorInfo(reason=self.reason, domain=self.domain, metadata=metadata)
        ]
        if self.retry_after is not None:
            delay = duration_pb2.Duration()
            delay.FromNanoseconds(int(max(self.retry_after, 0.0) * 1e9))
            out.append(error_details_pb2.RetryInfo(retry_delay=delay))
        out.extend(self.extra_details)
        return out

    def to_status(self) -> status_pb2.Status:
        packed = []
        for detail in self.details():
            box = any_pb2.Any()
            box.Pack(detail)
            packed.append(box)
        return status_pb2.Status(
            code=_RPC_CODES[self.code], message=self.caller_message, details=packed
        )

    def trailing_metadata(self) -> tuple[tuple[str, bytes], ...]:
        return ((STATUS_DETAILS_KEY, self.to_status().SerializeToString()),)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code.name}, {self.reason}, {self.message!r})"


class InvalidRequest(GatewayError):
    """The request breaks a documented rule; it never reaches the upstream.

    Field paths name map keys the caller chose and a request can break a rule in every one
    of hundreds of entries, so what the error carries is bounded: each path and description
    to `MAX_VIOLATION_CHARS`, the violations to `MAX_VIOLATIONS_CHARS` in all, a path counted
    three times as it is in the message, ErrorInfo and BadRequest (the rest are counted in
    ErrorInfo's `omittedViolations`). Unbounded, the trailers outgrow grpc's
    metadata limit and the caller gets a bare RESOURCE_EXHAUSTED instead of this error."""

    code = grpc.StatusCode.INVALID_ARGUMENT
    MAX_VIOLATION_CHARS = 200
    MAX_VIOLATIONS_CHARS = 3000

    def __init__(self, violations: Iterable[FieldViolation]) -> None:
        self.violations = tuple(violations)
        shown = _bounded_violations(
            self.violations, self.MAX_VIOLATION_CHARS, self.MAX_VIOLATIONS_CHARS
        )
        fields = ", ".join(v.field for v in shown)
        metadata = {"fields": fields}
        if len(shown) < len(self.violations):
            metadata["omittedViolations"] = str(len(self.violations) - len(shown))
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=v.field, description=v.description
                )
                for v in shown
            ]
        )
        super().__init__(
            f"invalid request: {fields}",
            reason="INVALID_REQUEST",
            metadata=metadata,
            extra_details=[bad_request],
        )


def _bounded_violations(
    violations: Sequence[FieldViolation], each: int, total: int
) -> list[FieldViolation]:
    """The first violations, each cut to `each` characters, while they fit in `total`
    (the first always; a field path counts three times: message, ErrorInfo, BadRequest)."""
    out: list[FieldViolation] = []
    used = 0
    for v in violations:
        cut = FieldViolation(_cut(v.field, each), _cut(v.description, each))
        used += 3 * len(cut.field) + len(cut.description)
        if out and used > total:
            break
        out.append(cut)
    return out


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


class MalformedRequest(GatewayError):
    """The request body is not the RPC's message in protobuf wire format (corrupt,
    truncated, or a string field that is not UTF-8): rejected before any other work."""

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, message_type: str) -> None:
        super().__init__(
            f"the request is not a valid {message_type} in protobuf wire format",
            reason="MALFORMED_REQUEST",
            metadata={"messageType": message_type},
        )


class BatchTooLarge(GatewayError):
    """A batch RPC with more entries than `[batch] max_entries`: refused whole, before any
    entry runs (one bad entry never fails a batch; a batch over the limit is not one)."""

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, entries: int, limit: int, field: str = "requests") -> None:
        violation = error_details_pb2.BadRequest.FieldViolation(
            field=field, description=f"must have at most {limit} entries"
        )
        super().__init__(
            f"at most {limit} entries per batch or stream message ([batch] max_entries); "
            f"this one has {entries}",
            reason="BATCH_TOO_LARGE",
            metadata={"maxEntries": str(limit), "entries": str(entries)},
            extra_details=[error_details_pb2.BadRequest(field_violations=[violation])],
        )


class InternalError(GatewayError):
    """A bug: an exception nothing expected. The caller gets INTERNAL with this ErrorInfo;
    the edge logs the traceback of `cause` once, at ERROR. (Not `__cause__`: stages re-raise
    errors `from None`, which clears it.)"""

    code = grpc.StatusCode.INTERNAL

    def __init__(self, cause: BaseException) -> None:
        super().__init__("internal error", reason="INTERNAL")
        self.cause = cause
        #: Set once the traceback is logged: coalesced callers share one error object.
        self.logged = False


class Overloaded(GatewayError):
    """The process already serves `[server] max_concurrent_rpcs` calls."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED

    def __init__(self, limit: int) -> None:
        super().__init__(
            "the gateway is at its limit of concurrent calls; retry shortly",
            reason="OVERLOADED",
            metadata={"maxConcurrentRpcs": str(limit)},
            retry_after=OVERLOADED_RETRY_AFTER,
        )


#: What an OVERLOADED caller is told to wait: calls finish in milliseconds.
OVERLOADED_RETRY_AFTER = 0.1


class DeadlineExceeded(GatewayError):
    """The caller's deadline passed before the upstream answered."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED

    @classmethod
    def before_sending(cls, service: str | None = None) -> DeadlineExceeded:
        """No upstream call was made, or could be in the time left (README's error table)."""
        return cls(
            "the call's deadline passed before the gateway could send it upstream",
            reason="DEADLINE_EXCEEDED",
            metadata={"service": service} if service else None,
        )


class UpstreamError(GatewayError):
    """An AWS service (or the connection to it) failed; the code comes from the error table."""

    def __init__(
        self,
        message: str,
        *,
        code: grpc.StatusCode,
        reason: str,
        service: str,
        request_id: str | None = None,
        aws_code: str | None = None,
        retry_after: float | None = None,
        retryable: bool = False,
        throttled: bool = False,
        retry_hint: float | None = None,
    ) -> None:
        metadata = {"service": service}
        if aws_code:
            metadata["awsErrorCode"] = aws_code
        if request_id:
            metadata["awsRequestId"] = request_id
        super().__init__(
            message,
            code=code,
            reason=reason,
            domain=f"{service}.amazonaws.com",
            metadata=metadata,
            retry_after=retry_after,
        )
        self.service = service
        self.aws_code = aws_code
        self.request_id = request_id
        self.retryable = retryable
        self.throttled = throttled
        #: The delay AWS itself asked for (Retry-After / x-amz-retry-after), if it sent one.
        self.retry_hint = retry_hint


_RPC_CODES: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: code_pb2.OK,
    grpc.StatusCode.CANCELLED: code_pb2.CANCELLED,
    grpc.StatusCode.UNKNOWN: code_pb2.UNKNOWN,
    grpc.StatusCode.INVALID_ARGUMENT: code_pb2.INVALID_ARGUMENT,
    grpc.StatusCode.DEADLINE_EXCEEDED: code_pb2.DEADLINE_EXCEEDED,
    grpc.StatusCode.NOT_FOUND: code_pb2.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS: code_pb2.ALREADY_EXISTS,
    grpc.StatusCode.PERMISSION_DENIED: code_pb2.PERMISSION_DENIED,
    grpc.StatusCode.RESOURCE_EXHAUSTED: code_pb2.RESOURCE_EXHAUSTED,
    grpc.StatusCode.FAILED_PRECONDITION: code_pb2.FAILED_PRECONDITION,
    grpc.StatusCode.ABORTED: code_pb2.ABORTED,
    grpc.StatusCode.OUT_OF_RANGE: code_pb2.OUT_OF_RANGE,
    grpc.StatusCode.UNIMPLEMENTED: code_pb2.UNIMPLEMENTED,
    grpc.StatusCode.INTERNAL: code_pb2.INTERNAL,
    grpc.StatusCode.UNAVAILABLE: code_pb2.UNAVAILABLE,
    grpc.StatusCode.DATA_LOSS: code_pb2.DATA_LOSS,
    grpc.StatusCode.UNAUTHENTICATED: code_pb2.UNAUTHENTICATED,
}


# -- security (gateway/security/): the same three answers whatever the caller tried -------


class Unauthenticated(GatewayError):
    """With `[auth]` configured, the RPC carried no valid identity (no key or certificate, or
    one the gateway does not know). The message never says which part was wrong."""

    code = grpc.StatusCode.UNAUTHENTICATED

    def __init__(self) -> None:
        super().__init__(
            "a valid API key (authorization: Bearer <key>) or client certificate is required",
            reason="UNAUTHENTICATED",
        )


class PermissionDenied(GatewayError):
    """The caller may not call this RPC, or not on this resource. Decided from the caller's
    patterns alone, before the cache or any upstream work, so the answer is the same whether
    or not the resource exists."""

    code = grpc.StatusCode.PERMISSION_DENIED

    def __init__(self, caller: str, rpc: str) -> None:
        super().__init__(
            f"caller {caller!r} may not call {rpc} on this resource",
            reason="PERMISSION_DENIED",
            metadata={"caller": caller, "rpc": rpc},
        )


class QuotaExceeded(GatewayError):
    """The caller is over one of its own limits (`[[auth.callers]]` rate, max_streams)."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED

    def __init__(self, caller: str, limit: str, description: str, retry_after: float) -> None:
        violation = error_details_pb2.QuotaFailure.Violation(
            subject=f"caller:{caller}", description=description
        )
        super().__init__(
            f"caller {caller!r} is over its quota: {description}",
            reason="CALLER_QUOTA_EXCEEDED",
            metadata={"caller": caller, "limit": limit},
            retry_after=retry_after,
            extra_details=[error_details_pb2.QuotaFailure(violations=[violation])],
        )
        self._trailers: tuple[tuple[str, bytes], ...] | None = None

    # A caller over its quota sends many, and gateway/security/quotas.py hands all of them
    # the same few refusals: what they carry is built once, not per refused call.
    @property
    def caller_message(self) -> str:
        return self.message  # made here from the config's caller name and limit: no upstream text

    def trailing_metadata(self) -> tuple[tuple[str, bytes], ...]:
        if self._trailers is None:
            self._trailers = super().trailing_metadata()
        return self._trailers
