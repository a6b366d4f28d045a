"""Proto messages <-> botocore parameters, driven by descriptors alone.

The protos mirror botocore's shapes member for member, and every field's proto3 JSON name
is the AWS member name, so one walk over a message descriptor knows how to convert any
mirrored message in either direction:

- unset fields are absent (`ListFields` yields only fields with presence or a non-default
  value), so nothing unset is ever sent to AWS as 0 or "";
- enums travel as the AWS wire string read from the `(mlgw.options.v1.aws_value)` option;
- google.protobuf.Timestamp <-> timezone-aware datetime;
- int64 is a plain int (never the proto3 JSON string form);
- a map value message with one repeated field named `values` is an AWS list;
- an enum string the pinned model does not know (AWS adds values over time) reads as the
  field's `_UNSPECIFIED` zero, so the answer is still served; the raw string goes to one
  WARNING per (field, value) per process and `mlgw_unknown_enum_values` counts it.

Plans are compiled once per descriptor and cached, so the per-call cost is a loop over the
fields that are actually set.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache
from typing import Any, TypeVar

from google.protobuf import descriptor as _d
from google.protobuf import timestamp_pb2
from google.protobuf.message import Message
from mlgw.options.v1 import options_pb2

from gateway import metrics

M = TypeVar("M", bound=Message)
_Convert = Callable[[Any], Any]

_TIMESTAMP = timestamp_pb2.Timestamp.DESCRIPTOR.full_name
_UTC = dt.UTC
log = logging.getLogger(__name__)

#: The operation whose answer `from_aws` is converting, for the unknown-enum report.
_operation: ContextVar[str] = ContextVar("mlgw_mapping_operation", default="")
#: (field, value) pairs already logged: one line each per process, however often AWS sends it.
_logged_unknown: set[tuple[str, str]] = set()
_MAX_LOGGED_UNKNOWN = 1000


def to_aws(message: Message) -> dict[str, Any]:
    """The botocore parameters for a mirrored request (or any mirrored message)."""
    return _plan(message.DESCRIPTOR).to_aws(message)


def from_aws(cls: type[M], data: dict[str, Any]) -> M:
    """The message of type `cls` for a botocore response dict; unknown keys are ignored.

    Unknown enum strings are reported under the operation the response type mirrors
    (`GetModelInvocationJobResponse` -> `GetModelInvocationJob`).
    """
    token = _operation.set(cls.DESCRIPTOR.name.removesuffix("Response"))
    try:
        return cls(**_plan(cls.DESCRIPTOR).kwargs(data))
    finally:
        _operation.reset(token)


def aws_enum_values(enum: _d.EnumDescriptor) -> dict[int, str]:
    """Proto enum number -> AWS wire string, for every value but the UNSPECIFIED zero."""
    out: dict[int, str] = {}
    for value in enum.values:
        wire: str = value.GetOptions().Extensions[options_pb2.aws_value]  # type: ignore[index]
        if wire:
            out[value.number] = wire
    return out


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    aws: str
    to_aws: _Convert
    to_proto: _Convert


class _Plan:
    """How to convert one message type: a field table keyed both ways."""

    def __init__(self, descriptor: _d.Descriptor) -> None:
        self.by_number: dict[int, _Field] = {}
        self.by_aws: dict[str, _Field] = {}
        self._descriptor = descriptor

    def compile(self) -> None:
        for fd in self._descriptor.fields:
            field = _Field(fd.name, fd.json_name, *_converters(fd))
            self.by_number[fd.number] = field
            self.by_aws[fd.json_name] = field

    def to_aws(self, message: Message) -> dict[str, Any]:
        by_number = self.by_number
        out: dict[str, Any] = {}
        for fd, value in message.ListFields():
            field = by_number[fd.number]
            out[field.aws] = field.to_aws(value)
        return out

    def kwargs(self, data: dict[str, Any]) -> dict[str, Any]:
        by_aws = self.by_aws
        out: dict[str, Any] = {}
        for key, value in data.items():
            field = by_aws.get(key)
            if field is not None and value is not None:
                out[field.name] = field.to_proto(value)
        return out


@cache
def _plan(descriptor: _d.Descriptor) -> _Plan:
    plan = _Plan(descriptor)
    plan.compile()
    return plan


def _converters(fd: _d.FieldDescriptor) -> tuple[_Convert, _Convert]:
    if _is_map(fd):
        value_fd = _message_type(fd).fields_by_name["value"]
        to_v, from_v = _value_converters(value_fd, map_value=True)
        return (
            lambda m: {k: to_v(v) for k, v in m.items()},
            lambda d: {k: from_v(v) for k, v in d.items()},
        )
    to_one, from_one = _value_converters(fd)
    if fd.is_repeated:
        return (lambda xs: [to_one(x) for x in xs], lambda xs: [from_one(x) for x in xs])
    return to_one, from_one


def _value_converters(fd: _d.FieldDescriptor, map_value: bool = False) -> tuple[_Convert, _Convert]:
    if fd.type == _d.FieldDescriptor.TYPE_ENUM:
        assert fd.enum_type is not None
        to_wire = aws_enum_values(fd.enum_type)
        # Requests never hold an unknown number here: the precheck stage rejects it first.
        return to_wire.__getitem__, _enum_from_wire(fd, to_wire)
    if fd.type != _d.FieldDescriptor.TYPE_MESSAGE:
        return _identity, _identity
    message_type = _message_type(fd)
    if message_type.full_name == _TIMESTAMP:
        return _timestamp_to_datetime, _datetime_to_timestamp
    if map_value and _is_list_wrapper(message_type):
        inner = message_type.fields_by_name["values"]
        to_v, from_v = _converters(inner)
        return lambda m: to_v(m.values), lambda xs: {"values": from_v(xs)}
    # Nested plans are looked up at call time, so recursive shapes compile without looping.
    return (
        lambda m: _plan(message_type).to_aws(m),
        lambda d: _plan(message_type).kwargs(d),
    )


def _enum_from_wire(fd: _d.FieldDescriptor, to_wire: dict[int, str]) -> _Convert:
    from_wire = {wire: number for number, wire in to_wire.items()}
    field = fd.full_name

    def convert(wire: str) -> int:
        number = from_wire.get(wire)
        if number is None:
            _unknown_enum(field, wire)
            return 0
        return number

    return convert


def _unknown_enum(field: str, wire: str) -> None:
    operation = _operation.get()
    metrics.unknown_enum_value(operation, field)
    if (field, wire) not in _logged_unknown and len(_logged_unknown) < _MAX_LOGGED_UNKNOWN:
        _logged_unknown.add((field, wire))
        log.warning(
            "AWS sent an enum value the pinned model does not know; served as UNSPECIFIED",
            extra={"operation": operation, "field": field, "value": wire[:100]},
        )


def _identity(value: Any) -> Any:
    return value


def _timestamp_to_datetime(ts: timestamp_pb2.Timestamp) -> dt.datetime:
    return ts.ToDatetime(tzinfo=_UTC)


def _datetime_to_timestamp(value: dt.datetime) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    if value.tzinfo is None:  # botocore parses to aware datetimes; be lenient with naive UTC
        value = value.replace(tzinfo=_UTC)
    ts.FromDatetime(value)
    return ts


def _message_type(fd: _d.FieldDescriptor) -> _d.Descriptor:
    if fd.message_type is None:
        raise TypeError(f"{fd.full_name} is not a message field")
    return fd.message_type


def _is_map(fd: _d.FieldDescriptor) -> bool:
    return fd.message_type is not None and fd.is_repeated and fd.message_type.GetOptions().map_entry


def _is_list_wrapper(descriptor: _d.Descriptor) -> bool:
    fields = descriptor.fields
    return len(fields) == 1 and fields[0].name == "values" and fields[0].is_repeated
