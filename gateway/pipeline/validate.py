"""Validation stages: reject what AWS would reject, before anything else runs.

Rules come from botocore's model of the pinned version (required, length, range, pattern,
enum, list and map sizes) plus the operation row's cross-field rules, in two passes:

- `Precheck`, first in the pipeline: what costs O(1) per field on the proto message itself
  (list and map counts, string lengths against the model's maxima, enum numbers the model
  has no string for). It stops at the first container that is too large, so a hostile size
  is rejected before the cache key, the conversion to botocore parameters or any per-entry
  pattern check spends time on it (each linear in the entries).
- `Validate`, after the cache: every rule, every violation reported at once.

Violations are named by their proto field path, as google.rpc.BadRequest, one entry per
field (several broken rules of one field share it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import cache
from typing import Any, TypeGuard

from botocore.model import Shape
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from gateway import metrics
from gateway.awsmodel import Path, Violation, input_validator, operation_model
from gateway.errors import FieldViolation, InvalidRequest
from gateway.operations import Operation
from gateway.pipeline.call import Call, Handler
from gateway.upstream.mapping import aws_enum_values

#: Below this serialized size no container is large enough to make the full validation
#: costly (a few hundred entries at most): such requests get every violation at once from
#: `Validate`, and the hot path pays one `ByteSize()` only.
SMALL_REQUEST_BYTES = 4096


class Precheck:
    """Stage: INVALID_ARGUMENT for a hostile size or an unknown enum number, cheaply."""

    def wrap(self, op: Operation, inner: Handler) -> Handler:
        descriptor = op.request.DESCRIPTOR
        sizes = message_precheck(descriptor, op.upstream, op.name)
        # An unknown enum number would break the conversion to AWS parameters: where a
        # request can hold an enum, small requests are checked for that alone.
        enums = enum_precheck(descriptor) if _holds_enum(descriptor, frozenset()) else None
        rejected = metrics.PRECHECK_REJECTIONS.labels(op.name)

        async def precheck(call: Call) -> Message:
            request = call.request
            if request.ByteSize() > SMALL_REQUEST_BYTES:
                found = sizes(request)
            elif enums is not None:
                found = enums(request)
            else:
                return await inner(call)
            if found:
                rejected.inc()
                raise InvalidRequest(merge_violations(found))
            return await inner(call)

        return precheck


class Validate:
    """Stage: INVALID_ARGUMENT with every violated field, or pass the call on."""

    def wrap(self, op: Operation, inner: Handler) -> Handler:
        model = input_validator(op.upstream, op.name)
        rules = op.rules
        descriptor = op.request.DESCRIPTOR

        async def validate(call: Call) -> Message:
            params = call.params
            found = model.validate(params)
            for rule in rules:
                found.extend(rule(params))
            if found:
                violations = (_field_violation(descriptor, v) for v in found)
                raise InvalidRequest(merge_violations(violations))
            return await inner(call)

        return validate


def merge_violations(violations: Iterable[FieldViolation]) -> list[FieldViolation]:
    """One violation per field, in first-seen order; its descriptions joined by "; "."""
    by_field: dict[str, list[str]] = {}
    for violation in violations:
        descriptions = by_field.setdefault(violation.field, [])
        if violation.description not in descriptions:
            descriptions.append(violation.description)
    return [FieldViolation(field, "; ".join(texts)) for field, texts in by_field.items()]


def _field_violation(descriptor: Descriptor | Any, violation: Violation) -> FieldViolation:
    return FieldViolation(proto_path(descriptor, violation.path), violation.description)


def proto_path(descriptor: Descriptor | None, path: Path) -> str:
    """Render an AWS member path with proto field names: `promotions[0].filter_values["k"]`."""
    out = ""
    for part in path:
        if descriptor is not None and descriptor.GetOptions().map_entry:
            out += f'["{part}"]'  # a map key; the value type carries on
            descriptor = descriptor.fields_by_name["value"].message_type
        elif isinstance(part, int):
            # An AWS list inside a map is a wrapper message with one `values` field.
            wrapped = descriptor is not None and "values" in descriptor.fields_by_name
            out += f".values[{part}]" if wrapped else f"[{part}]"
        else:
            field = _fields_by_json_name(descriptor).get(part) if descriptor else None
            name = field.name if field is not None else part
            out += f".{name}" if out else name
            descriptor = field.message_type if field is not None else None
    return out


@cache
def _fields_by_json_name(descriptor: Descriptor) -> dict[str, FieldDescriptor]:
    return {field.json_name: field for field in descriptor.fields}


def _holds_enum(descriptor: Descriptor | Any, seen: frozenset[str]) -> bool:
    seen = seen | {descriptor.full_name}
    for fd in descriptor.fields:
        if fd.type == FieldDescriptor.TYPE_ENUM:
            return True
        nested = fd.message_type
        if nested is not None and nested.full_name not in seen and _holds_enum(nested, seen):
            return True
    return False


# ---- the precheck: compiled once per (message type, model shape) ------------------------

#: value, its proto path, the violations found so far.
_Probe = Callable[[Any, str, list[FieldViolation]], None]
MessageCheck = Callable[[Message], list[FieldViolation]]


@cache
def message_precheck(descriptor: Descriptor, service: str, operation: str) -> MessageCheck:
    """The sizes and enum numbers of an operation's request: its violations, [] if none."""
    return _checker(_message_probe(descriptor, operation_model(service, operation).input_shape))


@cache
def enum_precheck(descriptor: Descriptor) -> MessageCheck:
    """Enum numbers only: without a model shape no size limit applies."""
    return _checker(_message_probe(descriptor, None))


def _checker(probe: _Probe) -> MessageCheck:
    def check(message: Message) -> list[FieldViolation]:
        found: list[FieldViolation] = []
        probe(message, "", found)
        return found

    return check


# Shapes and messages can be recursive: probes are memoised and cycles resolve at call time.
_probes: dict[tuple[str, str | None], _Probe] = {}


def _message_probe(descriptor: Descriptor, shape: Shape | None) -> _Probe:
    key = (descriptor.full_name, shape.name if shape is not None else None)
    probe = _probes.get(key)
    if probe is None:
        _probes[key] = lambda v, p, out: _probes[key](v, p, out)  # placeholder for cycles
        probe = _probes[key] = _build_message_probe(descriptor, shape)
    return probe


def _build_message_probe(descriptor: Descriptor, shape: Shape | None) -> _Probe:
    members = shape.members if shape is not None and shape.type_name == "structure" else {}
    fields: dict[int, tuple[str, _Probe]] = {}
    for fd in descriptor.fields:
        probe = _field_probe(fd, members.get(fd.json_name))
        if probe is not None:
            fields[fd.number] = (fd.name, probe)

    def probe_message(message: Any, path: str, out: list[FieldViolation]) -> None:
        for fd, value in message.ListFields():
            entry = fields.get(fd.number)
            if entry is not None:
                name, probe = entry
                probe(value, f"{path}.{name}" if path else name, out)

    return probe_message


def _field_probe(fd: FieldDescriptor, shape: Shape | None) -> _Probe | None:
    entry = fd.message_type
    if entry is not None and entry.GetOptions().map_entry:
        return _map_probe(entry, shape)
    if not fd.is_repeated:
        return _element_probe(fd, shape)
    element = _element_probe(fd, shape.member if _is(shape, "list") else None)
    return _sized(_limit(shape, "list"), _indexed(element))


def _map_probe(entry: Descriptor, shape: Shape | None) -> _Probe | None:
    key_shape, value_shape = (shape.key, shape.value) if _is(shape, "map") else (None, None)
    key = _string_probe(key_shape)
    value = _map_value_probe(entry.fields_by_name["value"], value_shape)
    if key is None and value is None:
        return _sized(_limit(shape, "map"), None)

    def each_entry(items: Any, path: str, out: list[FieldViolation]) -> None:
        for k, v in items.items():
            at = f'{path}["{k}"]'
            if key is not None:
                key(k, at, out)
            if value is not None:
                value(v, at, out)

    return _sized(_limit(shape, "map"), each_entry)


def _map_value_probe(fd: FieldDescriptor, shape: Shape | None) -> _Probe | None:
    wrapper = fd.message_type
    if wrapper is None or [f.name for f in wrapper.fields] != ["values"]:
        return _element_probe(fd, shape)
    # An AWS list as a map value travels in a wrapper message with one `values` field.
    member = shape.member if _is(shape, "list") else None
    values = _sized(_limit(shape, "list"), _indexed(_element_probe(wrapper.fields[0], member)))
    if values is None:
        return None
    inner = values

    def probe(value: Any, path: str, out: list[FieldViolation]) -> None:
        inner(value.values, f"{path}.values", out)

    return probe


def _element_probe(fd: FieldDescriptor, shape: Shape | None) -> _Probe | None:
    if fd.type == FieldDescriptor.TYPE_ENUM:
        assert fd.enum_type is not None
        return _enum_probe(fd)
    if fd.type == FieldDescriptor.TYPE_STRING:
        return _string_probe(shape)
    if fd.message_type is not None and (shape is None or shape.type_name == "structure"):
        return _message_probe(fd.message_type, shape)
    return None


def _enum_probe(fd: FieldDescriptor) -> _Probe:
    assert fd.enum_type is not None
    known = frozenset(aws_enum_values(fd.enum_type))
    names = ", ".join(v.name for v in fd.enum_type.values if v.number in known)

    def probe(value: int, path: str, out: list[FieldViolation]) -> None:
        if value not in known:  # proto3 enums are open: any number parses
            out.append(FieldViolation(path, f"unknown enum value {value}; must be one of {names}"))

    return probe


def _string_probe(shape: Shape | None) -> _Probe | None:
    high = shape.metadata.get("max") if _is(shape, "string") else None
    if high is None:
        return None

    def probe(value: str, path: str, out: list[FieldViolation]) -> None:
        if len(value) > high:
            out.append(FieldViolation(path, f"must be at most {high} characters long"))

    return probe


def _indexed(element: _Probe | None) -> _Probe | None:
    if element is None:
        return None
    probe = element

    def each(items: Any, path: str, out: list[FieldViolation]) -> None:
        for index, item in enumerate(items):
            probe(item, f"{path}[{index}]", out)

    return each


def _sized(high: int | None, each: _Probe | None) -> _Probe | None:
    """A container's count first; its entries only when the count is within the model's."""
    if high is None:
        return each

    def probe(items: Any, path: str, out: list[FieldViolation]) -> None:
        if len(items) > high:
            out.append(FieldViolation(path, f"must have at most {high} entries"))
        elif each is not None:
            each(items, path, out)

    return probe


def _limit(shape: Shape | None, kind: str) -> int | None:
    high = shape.metadata.get("max") if _is(shape, kind) else None
    return int(high) if high is not None else None


def _is(shape: Shape | None, kind: str) -> TypeGuard[Shape]:
    return shape is not None and shape.type_name == kind
