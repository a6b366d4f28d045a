"""The wire strings of the contract enums (protos/mlgw/contract/v1/contract.proto).

The proto file states the naming rules; these functions apply them, so no reason or
metadata key is spelled by hand here.
"""

from __future__ import annotations

from functools import cache

from google.protobuf.descriptor import EnumDescriptor
from mlgw.contract.v1 import contract_pb2

ErrorReason = contract_pb2.ErrorReason
RequestMetadata = contract_pb2.RequestMetadata
ResponseMetadata = contract_pb2.ResponseMetadata
Priority = contract_pb2.Priority

_REASON_PREFIX = "ERROR_REASON_"


@cache
def _wire_names(descriptor: EnumDescriptor) -> dict[int, str]:
    prefix = _prefix(descriptor)
    out: dict[int, str] = {}
    for value in descriptor.values:
        if value.number == 0:
            continue
        stem = value.name.removeprefix(prefix)
        out[value.number] = stem if prefix == _REASON_PREFIX else stem.lower().replace("_", "-")
    return out


def _prefix(descriptor: EnumDescriptor) -> str:
    # The buf STANDARD lint prefix: the enum name in UPPER_SNAKE_CASE plus "_".
    name = descriptor.name
    snake = "".join(f"_{c}" if c.isupper() and i else c for i, c in enumerate(name))
    return snake.upper() + "_"


def wire(descriptor: EnumDescriptor, number: int) -> str:
    """The wire string of one value of a contract enum (KeyError for the zero value)."""
    return _wire_names(descriptor)[number]


def wire_strings(descriptor: EnumDescriptor) -> frozenset[str]:
    """Every wire string of a contract enum."""
    return frozenset(_wire_names(descriptor).values())


def reason_string(reason: int) -> str:
    """`ErrorReason` -> the `ErrorInfo.reason` the gateway sends."""
    return wire(contract_pb2.ErrorReason.DESCRIPTOR, reason)


def parse_reason(text: str) -> int:
    """`ErrorInfo.reason` -> `ErrorReason` (ERROR_REASON_UNSPECIFIED when unknown)."""
    descriptor = contract_pb2.ErrorReason.DESCRIPTOR
    value = descriptor.values_by_name.get(_REASON_PREFIX + text)
    return value.number if value is not None else 0


def request_key(key: int) -> str:
    """A request metadata key, for example "cache-control"."""
    return wire(contract_pb2.RequestMetadata.DESCRIPTOR, key)


def response_key(key: int) -> str:
    """A response (trailing) metadata key, for example "mlgw-cache"."""
    return wire(contract_pb2.ResponseMetadata.DESCRIPTOR, key)
