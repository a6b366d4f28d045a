"""Failed calls as exceptions carrying the gateway's status details (AIP-193)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2
from mlgw.contract.v1 import contract_pb2

from mlgw_client.contract import ErrorReason, parse_reason, response_key

_DETAILS_KEY = response_key(contract_pb2.RESPONSE_METADATA_GRPC_STATUS_DETAILS_BIN)


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One invalid request field (google.rpc.BadRequest), by proto field path."""

    field: str
    description: str


@dataclass(frozen=True, slots=True)
class QuotaViolation:
    """One limit that turned the call away (google.rpc.QuotaFailure)."""

    subject: str
    description: str


@dataclass
class GatewayError(Exception):
    """A call the gateway failed. `reason` is the contract's ErrorReason (UNSPECIFIED for a
    reason newer than this client; `reason_text` keeps the string)."""

    code: grpc.StatusCode
    message: str
    reason: int = contract_pb2.ERROR_REASON_UNSPECIFIED
    reason_text: str = ""
    domain: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    #: RetryInfo's delay in seconds, when the gateway says waiting helps.
    retry_delay: float | None = None
    field_violations: list[FieldViolation] = field(default_factory=list)
    quota_violations: list[QuotaViolation] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.code.name} ({self.reason_text or 'no reason'}): {self.message}"

    @property
    def reason_name(self) -> str:
        """The enum value's name, e.g. "ERROR_REASON_INVALID_REQUEST"."""
        return ErrorReason.Name(self.reason)


def from_rpc_error(error: grpc.RpcError) -> GatewayError:
    """The GatewayError of a failed grpc (sync or asyncio) call."""
    call: Any = error  # grpc.Call / grpc.aio.AioRpcError: code(), details(), trailing_metadata()
    out = GatewayError(code=call.code(), message=call.details() or "")
    for key, value in call.trailing_metadata() or ():
        if key == _DETAILS_KEY and isinstance(value, bytes):
            _read_status(status_pb2.Status.FromString(value), out)
    return out


def from_status(status: status_pb2.Status) -> GatewayError:
    """The GatewayError of a google.rpc.Status, e.g. a failed operation's `error`."""
    code = next((c for c in grpc.StatusCode if c.value[0] == status.code), grpc.StatusCode.UNKNOWN)
    out = GatewayError(code=code, message=status.message)
    _read_status(status, out)
    return out


def _read_status(status: status_pb2.Status, out: GatewayError) -> None:
    info = error_details_pb2.ErrorInfo()
    retry = error_details_pb2.RetryInfo()
    bad = error_details_pb2.BadRequest()
    quota = error_details_pb2.QuotaFailure()
    for box in status.details:
        if box.Unpack(info):
            out.reason, out.reason_text = parse_reason(info.reason), info.reason
            out.domain, out.metadata = info.domain, dict(info.metadata)
        elif box.Unpack(retry):
            out.retry_delay = retry.retry_delay.ToNanoseconds() / 1e9
        elif box.Unpack(bad):
            out.field_violations = [
                FieldViolation(v.field, v.description) for v in bad.field_violations
            ]
        elif box.Unpack(quota):
            out.quota_violations = [
                QuotaViolation(v.subject, v.description) for v in quota.violations
            ]
