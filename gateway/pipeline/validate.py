"""Validation stages: reject what AWS would reject, before anything else runs.

Rules come from botocore's model of the pinned version (required, length, range, pattern,
enum, list and map sizes) plus the operation row's cross-field rules, in three passes:

- `request_parser`, the edge's deserializer: a body over 64 KiB is first parsed shallowly
  (top-level lists, maps and bounded strings as raw bytes: counting 50,000 map entries
  costs about a thirtieth of building them); a count or length that is certainly over
  its limit is handed on as an `OversizedRequest`, never parsed in full.
- `Precheck`, first in the pipeline: what costs O(1) per field on the proto message itself
  (list and map counts, string lengths against the model's maxima, enum numbers the model
  has no string for, timestamps outside what a datetime can hold). It does not enter a
  container that is too large, and a request that weighs more than `SMALL_REQUEST_WEIGHT`
  entries and characters is rejected with these violations alone, before the cache key,
  the conversion to botocore parameters or any per-entry pattern check spends time on it
  (each linear in the entries).
- `Validate`, after the cache: every rule, every violation reported at once.

Violations are named by their proto field path, as google.rpc.BadRequest, one entry per
field (several broken rules of one field share it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import cache
from typing import Any, TypeGuard

from botocore.model import Shape
from google.protobuf import descriptor_pb2, descriptor_pool, timestamp_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError, Message
from google.protobuf.message_factory import GetMessageClass

from gateway import metrics
from gateway.awsmodel import Path, Violation, input_validator, operation_model
from gateway.errors import FieldViolation, InvalidRequest
from gateway.operations import AtMost, Operation
from gateway.pipeline.call import Call, Handler
from gateway.upstream.mapping import aws_enum_values

#: A request whose sizes add up to at most this many entries and characters is cheap to
#: check fully, so it gets every violation at once from `Validate`; above it, a broken size
#: rule is reported alone, at once.
SMALL_REQUEST_WEIGHT = 4096


class Precheck:
    """Stage: INVALID_ARGUMENT for a hostile size or a value the conversion to AWS parameters
    cannot take (an unknown enum number, an out-of-range timestamp), cheaply."""

    def wrap(self, op: Operation, inner: Handler) -> Handler:
        descriptor = op.request.DESCRIPTOR
        check = message_precheck(descriptor, op.upstream, op.name, _list_limits(op))
        # Every entry and character takes a byte or more, so a small serialized size means a
        # small weight: no size rule can make the precheck raise, and the hot path skips the
        # walk. An unknown enum number or an out-of-range timestamp would break the conversion
        # to AWS parameters: where a request can hold one, it is always walked (these are
        # control-plane operations).
        always = _holds_unconvertible(descriptor, frozenset())
        rejected = metrics.PRECHECK_REJECTIONS.labels(op.name)

        async def precheck(call: Call) -> Message:
            request: Any = call.request
            if type(request) is OversizedRequest:  # the edge's parser stopped at its counts
                rejected.inc()
                raise InvalidRequest(request.violations)
            if not always and request.ByteSize() <= SMALL_REQUEST_WEIGHT:
                return await inner(call)
            found = check(request)
            if found.violations and (found.unconvertible or found.weight > SMALL_REQUEST_WEIGHT):
                rejected.inc()
                raise InvalidRequest(merge_violations(found.violations))
            return await inner(call)

        return precheck


#: Bodies above this size get a shallow parse first, so a hostile count never costs a full one.
LARGE_BODY_BYTES = 64 * 1024


class OversizedRequest:
    """What `request_parser` hands on instead of a request whose counts break a limit:
    the violations, for `Precheck` to raise (first stage, so nothing else sees it)."""

    __slots__ = ("violations",)

    def __init__(self, violations: list[FieldViolation]) -> None:
        self.violations = violations


def request_parser(op: Operation) -> Callable[[bytes], Message]:
    """The edge's request deserializer: `FromString`, after a shallow count for big bodies.

    Building a map or a list of messages is what makes parsing costly (a 50,000-entry map:
    about 25 ms); the shallow class declares every bounded top-level list and map as
    `repeated bytes` (and every bounded string as `bytes`) under the same field numbers, so
    counting them costs about a thirtieth of that. Only what is certainly over a limit is
    stopped here; everything else gets the full parse and the `Precheck` stage.
    """
    parse = op.request.FromString
    shallow = _shallow_counter(op)
    if shallow is None:
        return parse
    counter, counts, lengths = shallow

    def parse_guarded(body: bytes) -> Message:
        if len(body) > LARGE_BODY_BYTES:
            try:
                found = counter.FromString(body)
            except DecodeError:
                return parse(body)  # the full parse reports it as it would anyway
            over = [
                FieldViolation(name, f"must have at most {limit} entries")
                for name, limit in counts
                if len(getattr(found, name)) > limit
            ]
            # UTF-8 takes at most 4 bytes a character: more than 4 x max bytes is too long.
            over += [
                FieldViolation(name, f"must be at most {limit} characters long")
                for name, limit in lengths
                if len(getattr(found, name)) > 4 * limit
            ]
            if over:
                return OversizedRequest(over)  # type: ignore[return-value]
        return parse(body)

    return parse_guarded


_Limits = list[tuple[str, int]]


def _shallow_counter(op: Operation) -> tuple[type[Message], _Limits, _Limits] | None:
    """A message type reading the request's top-level lists, maps and bounded strings as
    raw bytes, with the count limits and the length limits it checks."""
    descriptor = op.request.DESCRIPTOR
    members = operation_model(op.upstream, op.name).input_shape.members
    extra = dict(_list_limits(op))
    length_delimited = (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES)
    counts: _Limits = []
    lengths: _Limits = []
    file = descriptor_pb2.FileDescriptorProto(
        name=f"mlgw_shallow/{descriptor.full_name}.proto", package="mlgw_shallow", syntax="proto3"
    )
    message = file.message_type.add(name=descriptor.name)
    for fd in descriptor.fields:
        shape = members.get(fd.json_name)
        delimited = fd.message_type is not None or fd.type in length_delimited
        limits = [
            x for x in (_limit(shape, "map"), _limit(shape, "list"), extra.get(fd.json_name)) if x
        ]
        high = min(limits) if limits else None
        if fd.is_repeated and delimited and high is not None:
            message.field.add(name=fd.name, number=fd.number, type=_BYTES, label=_REPEATED)
            counts.append((fd.name, high))
        elif fd.type == FieldDescriptor.TYPE_STRING and (high := _limit(shape, "string")):
            message.field.add(name=fd.name, number=fd.number, type=_BYTES, label=_OPTIONAL)
            lengths.append((fd.name, high))
    if not counts and not lengths:
        return None
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    counter = GetMessageClass(pool.FindMessageTypeByName(f"mlgw_shallow.{descriptor.name}"))
    return counter, counts, lengths


_BYTES = descriptor_pb2.FieldDescriptorProto.TYPE_BYTES
_REPEATED = descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED
_OPTIONAL = descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL


def _list_limits(op: Operation) -> tuple[tuple[str, int], ...]:
    """Unconditional count limits of the operation row (`at_most`) on top-level members."""
    return tuple((r.member, r.limit) for r in op.rules if isinstance(r, AtMost) and not r.when)


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


def _holds_unconvertible(descriptor: Descriptor | Any, seen: frozenset[str]) -> bool:
    """Whether the message can hold an enum or a timestamp (values `to_aws` may not take)."""
    seen = seen | {descriptor.full_name}
    for fd in descriptor.fields:
        if fd.type == FieldDescriptor.TYPE_ENUM:
            return True
        nested = fd.message_type
        if nested is None or nested.full_name in seen:
            continue
        if nested.full_name == _TIMESTAMP or _holds_unconvertible(nested, seen):
            return True
    return False


# ---- the precheck: compiled once per (message type, model shape) ------------------------


class Findings:
    """What one precheck saw: its violations, whether one is a value the conversion to AWS
    parameters cannot take (an unknown enum number, an out-of-range timestamp), and the
    request's weight (entries and characters: what the full validation would walk)."""

    __slots__ = ("unconvertible", "violations", "weight")

    def __init__(self) -> None:
        self.violations: list[FieldViolation] = []
        self.unconvertible = False
        self.weight = 0


#: value, its proto path, what was found so far.
_Probe = Callable[[Any, str, Findings], None]
MessageCheck = Callable[[Message], Findings]


@cache
def message_precheck(
    descriptor: Descriptor, service: str, operation: str, limits: tuple[tuple[str, int], ...] = ()
) -> MessageCheck:
    """The precheck of an operation's request; `limits` caps top-level lists (AWS members)."""
    shape = operation_model(service, operation).input_shape
    probe = _build_message_probe(descriptor, shape, dict(limits))

    def check(message: Message) -> Findings:
        found = Findings()
        probe(message, "", found)
        return found

    return check


# Shapes and messages can be recursive: probes are memoised and cycles resolve at call time.
_probes: dict[tuple[str, str | None], _Probe] = {}


def _message_probe(descriptor: Descriptor, shape: Shape | None) -> _Probe:
    key = (descriptor.full_name, shape.name if shape is not None else None)
    probe = _probes.get(key)
    if probe is None:
        _probes[key] = lambda v, p, found: _probes[key](v, p, found)  # placeholder for cycles
        probe = _probes[key] = _build_message_probe(descriptor, shape, {})
    return probe


def _build_message_probe(
    descriptor: Descriptor, shape: Shape | None, limits: dict[str, int]
) -> _Probe:
    members = shape.members if shape is not None and shape.type_name == "structure" else {}
    fields: dict[int, tuple[str, _Probe]] = {}
    for fd in descriptor.fields:
        probe = _field_probe(fd, members.get(fd.json_name), limits.get(fd.json_name))
        if probe is not None:
            fields[fd.number] = (fd.name, probe)

    def probe_message(message: Any, path: str, found: Findings) -> None:
        for fd, value in message.ListFields():
            entry = fields.get(fd.number)
            if entry is not None:
                name, probe = entry
                probe(value, f"{path}.{name}" if path else name, found)

    return probe_message


def _field_probe(fd: FieldDescriptor, shape: Shape | None, limit: int | None) -> _Probe | None:
    entry = fd.message_type
    if entry is not None and entry.GetOptions().map_entry:
        return _map_probe(entry, shape)
    if not fd.is_repeated:
        return _element_probe(fd, shape)
    element = _element_probe(fd, shape.member if _is(shape, "list") else None)
    high = _limit(shape, "list")
    if limit is not None:
        high = limit if high is None else min(high, limit)
    return _sized(high, _indexed(element))


def _map_probe(entry: Descriptor, shape: Shape | None) -> _Probe:
    key_shape, value_shape = (shape.key, shape.value) if _is(shape, "map") else (None, None)
    key = _string_probe(key_shape)
    value = _map_value_probe(entry.fields_by_name["value"], value_shape)
    if key is None and value is None:
        return _sized(_limit(shape, "map"), None)

    def each_entry(items: Any, path: str, found: Findings) -> None:
        for k, v in items.items():
            at = f'{path}["{k}"]'
            if key is not None:
                key(k, at, found)
            if value is not None:
                value(v, at, found)

    return _sized(_limit(shape, "map"), each_entry)


def _map_value_probe(fd: FieldDescriptor, shape: Shape | None) -> _Probe | None:
    wrapper = fd.message_type
    if wrapper is None or [f.name for f in wrapper.fields] != ["values"]:
        return _element_probe(fd, shape)
    # An AWS list as a map value travels in a wrapper message with one `values` field.
    member = shape.member if _is(shape, "list") else None
    inner = _sized(_limit(shape, "list"), _indexed(_element_probe(wrapper.fields[0], member)))

    def probe(value: Any, path: str, found: Findings) -> None:
        inner(value.values, f"{path}.values", found)

    return probe


def _element_probe(fd: FieldDescriptor, shape: Shape | None) -> _Probe | None:
    if fd.type == FieldDescriptor.TYPE_ENUM:
        return _enum_probe(fd)
    if fd.type == FieldDescriptor.TYPE_STRING:
        return _string_probe(shape)
    if fd.message_type is not None and fd.message_type.full_name == _TIMESTAMP:
        return _timestamp_probe
    if fd.message_type is not None and (shape is None or shape.type_name == "structure"):
        return _message_probe(fd.message_type, shape)
    return None


def _enum_probe(fd: FieldDescriptor) -> _Probe:
    assert fd.enum_type is not None
    known = frozenset(aws_enum_values(fd.enum_type))
    names = ", ".join(v.name for v in fd.enum_type.values if v.number in known)

    def probe(value: int, path: str, found: Findings) -> None:
        if value not in known:  # proto3 enums are open: any number parses
            text = f"unknown enum value {value}; must be one of {names}"
            found.violations.append(FieldViolation(path, text))
            found.unconvertible = True

    return probe


_TIMESTAMP = timestamp_pb2.Timestamp.DESCRIPTOR.full_name
#: What a Python datetime can hold (0001-01-01 to 9999-12-31, UTC), as `ToDatetime` checks.
_MIN_SECONDS, _MAX_SECONDS = -62_135_596_800, 253_402_300_799


def _timestamp_probe(value: timestamp_pb2.Timestamp, path: str, found: Findings) -> None:
    # Any int64 parses, but `to_aws` turns a timestamp into a datetime, which cannot hold it.
    if not _MIN_SECONDS <= value.seconds <= _MAX_SECONDS or not 0 <= value.nanos < 10**9:
        text = "must be a valid timestamp between 0001-01-01 and 9999-12-31 (UTC)"
        found.violations.append(FieldViolation(path, text))
        found.unconvertible = True


def _string_probe(shape: Shape | None) -> _Probe:
    high = shape.metadata.get("max") if _is(shape, "string") else None

    def probe(value: str, path: str, found: Findings) -> None:
        size = len(value)
        found.weight += size
        if high is not None and size > high:
            found.violations.append(FieldViolation(path, f"must be at most {high} characters long"))

    return probe


def _indexed(element: _Probe | None) -> _Probe | None:
    if element is None:
        return None
    probe = element

    def each(items: Any, path: str, found: Findings) -> None:
        for index, item in enumerate(items):
            probe(item, f"{path}[{index}]", found)

    return each


def _sized(high: int | None, each: _Probe | None) -> _Probe:
    """A container's count first; its entries only when the count is within the limit."""

    def probe(items: Any, path: str, found: Findings) -> None:
        count = len(items)
        found.weight += count
        if high is not None and count > high:
            found.violations.append(FieldViolation(path, f"must have at most {high} entries"))
        elif each is not None:
            each(items, path, found)

    return probe


def _limit(shape: Shape | None, kind: str) -> int | None:
    high = shape.metadata.get("max") if _is(shape, kind) else None
    return int(high) if high is not None else None


def _is(shape: Shape | None, kind: str) -> TypeGuard[Shape]:
    return shape is not None and shape.type_name == kind
