"""Adversarial request bodies for every operation, derived from its descriptor.

Each operation's valid request (tests/integration/requests.py) is the starting point; every
field it has (top level, and inside the messages the valid request sets) gets the values an
attacker tries: invalid UTF-8, strings far over their limit, 10,000-entry lists and maps,
open enum numbers, out-of-range integers, timestamps and floats, other accounts' ARNs.
Nothing here is hand-written per operation, so a new row of the operation table is covered
as soon as it has a valid request.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

from google.protobuf import timestamp_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from gateway.services import varint
from tests.integration.requests import VALID

#: Eight bytes that are not UTF-8 (a lone continuation, an overlong form, a truncated
#: sequence, a surrogate), swapped in for a same-length marker after serialisation so every
#: enclosing length prefix stays right: the body decodes up to the string.
INVALID_UTF8 = b"\xff\xc0\xaf\xe2\x28\xed\xa0\x80"
_MARKER = "\x01MARKER\x01"
_MARKER_BYTES = _MARKER.encode()
assert len(_MARKER_BYTES) == len(INVALID_UTF8)

#: The most entries a generated list or map gets: the issue's 10,000-item lists.
MANY = 10_000
OTHER_ACCOUNT = "arn:aws:personalize:us-east-1:999999999999:campaign/not-yours"
STRINGS = (
    "",
    "\x00",
    "a" * 100_000,
    "\u202e\ufeff\U0001f600",
    "../../etc/passwd",
    "%s%n{0}${jndi:ldap://x}",
    OTHER_ACCOUNT,
    "arn:aws-cn:bedrock:cn-north-1:111111111111:model-invocation-job/x",
    "arn:aws:iam::999999999999:role/admin",
)
INTEGERS = (-1, 0, 2**31 - 1, -(2**31))
INTEGERS_64 = (2**63 - 1, -(2**63))
FLOATS = (float("nan"), float("inf"), -float("inf"), -1.0, 1e308)
ENUMS = (12345, -1, 2**31 - 1)
TIMESTAMPS = ((2**62, 0), (-(2**62), 0), (0, -1), (0, 10**9), (253_402_300_800, 0))


def seed_bodies(operation: str) -> list[bytes]:
    """The valid body first, then every adversarial variant (deduplicated, in order)."""
    return list(dict.fromkeys(_bodies(operation)))


@cache
def _bodies(operation: str) -> tuple[bytes, ...]:
    valid = VALID[operation]
    return (valid.SerializeToString(), *(_serialize(m) for m in variants(valid)))


def variants(valid: Message) -> Iterator[Message]:
    """Copies of `valid` with one field (at any depth it sets) given a hostile value."""
    yield type(valid)()  # every field unset
    for path in _field_paths(valid):
        for mutate in _mutations(path[-1]):
            copy = type(valid)()
            copy.CopyFrom(valid)
            mutate(_parent(copy, path))
            yield copy


def random_variant(operation: str, rnd: random.Random, at_most: int = 3) -> bytes:
    """The valid request with up to `at_most` hostile values at random fields: combinations
    the one-at-a-time variants do not reach, still decodable."""
    message = type(VALID[operation])()
    message.CopyFrom(VALID[operation])
    paths = list(_field_paths(message))
    for _ in range(rnd.randint(1, at_most)):
        path = rnd.choice(paths)
        mutations = _mutations(path[-1])
        if mutations:
            rnd.choice(mutations)(_parent(message, path))
    return _serialize(message)


def _field_paths(message: Message, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    for fd in message.DESCRIPTOR.fields:
        yield (*prefix, fd)
        if _singular_message(fd) and message.HasField(fd.name) and len(prefix) < 3:
            yield from _field_paths(getattr(message, fd.name), (*prefix, fd))


def _parent(message: Message, path: tuple[Any, ...]) -> tuple[Message, FieldDescriptor]:
    for fd in path[:-1]:
        message = getattr(message, fd.name)
    return message, path[-1]


def _singular_message(fd: Any) -> bool:
    return fd.message_type is not None and not fd.is_repeated


#: Sets one hostile value on (parent message, field).
Mutation = Callable[[tuple[Message, FieldDescriptor]], object]


def _mutations(fd: FieldDescriptor) -> list[Mutation]:
    """Setters of one hostile value each for field `fd` (called with (parent, fd))."""
    name = fd.name
    entry = fd.message_type
    if entry is not None and entry.GetOptions().map_entry:
        value_fd = entry.fields_by_name["value"]
        if entry.fields_by_name["key"].type != FieldDescriptor.TYPE_STRING:
            return []
        return [
            _fill_map(name, value_fd, MANY),
            _fill_map(name, value_fd, 1, key=_MARKER),
            _fill_map(name, value_fd, 1, key="k" * 100_000),
        ]
    if fd.is_repeated:
        return _repeated_mutations(fd)
    values: tuple[object, ...] = ()
    if fd.type == FieldDescriptor.TYPE_STRING:
        values = (*STRINGS, _MARKER)
    elif fd.type == FieldDescriptor.TYPE_ENUM:
        values = ENUMS
    elif fd.type in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32):
        values = INTEGERS
    elif fd.type in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64):
        values = (*INTEGERS, *INTEGERS_64)
    elif fd.type in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
        values = FLOATS
    elif entry is not None and entry.full_name == "google.protobuf.Timestamp":
        return [_merge(name, _timestamp(s, n)) for s, n in TIMESTAMPS]
    elif entry is not None:
        return [_merge(name, None)]  # present but empty
    return [_set(name, v) for v in values]


def _repeated_mutations(fd: FieldDescriptor) -> list[Mutation]:
    name = fd.name
    if fd.type == FieldDescriptor.TYPE_STRING:
        return [
            _extend(name, [f"i{i}" for i in range(MANY)]),
            _extend(name, [_MARKER]),
            _extend(name, ["x" * 100_000]),
            # Many entries each breaking a rule: one violation each, unless bounded.
            _extend(name, [f"{i}{'y' * 300}" for i in range(500)]),
        ]
    if fd.type == FieldDescriptor.TYPE_ENUM:
        return [_extend(name, list(ENUMS))]
    if fd.message_type is not None:
        return [_add_empty(name, MANY)]
    return []


def _set(name: str, value: object) -> Mutation:
    def apply(target: tuple[Message, FieldDescriptor]) -> None:
        setattr(target[0], name, value)

    return apply


def _extend(name: str, values: list[object]) -> Mutation:
    def apply(target: tuple[Message, FieldDescriptor]) -> None:
        getattr(target[0], name).extend(values)

    return apply


def _add_empty(name: str, count: int) -> Mutation:
    def apply(target: tuple[Message, FieldDescriptor]) -> None:
        container = getattr(target[0], name)
        for _ in range(count):
            container.add()

    return apply


def _merge(name: str, value: Message | None) -> Mutation:
    def apply(target: tuple[Message, FieldDescriptor]) -> None:
        field = getattr(target[0], name)
        field.SetInParent()
        if value is not None:
            field.MergeFrom(value)

    return apply


def _fill_map(name: str, value_fd: FieldDescriptor, count: int, key: str = "") -> Mutation:
    def apply(target: tuple[Message, FieldDescriptor]) -> None:
        entries = getattr(target[0], name)
        for i in range(count):
            k = key or f"k{i}"
            if value_fd.message_type is not None:
                entries[k].SetInParent()
            elif value_fd.type == FieldDescriptor.TYPE_STRING:
                entries[k] = "v"
            else:
                entries[k] = 1

    return apply


def _timestamp(seconds: int, nanos: int) -> Message:
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)  # any int64 / int32 is kept


def _serialize(message: Message) -> bytes:
    return message.SerializeToString().replace(_MARKER_BYTES, INVALID_UTF8)


def mutate_bytes(body: bytes, rnd: random.Random) -> bytes:
    """A few random byte flips, inserts and deletes: bodies that break the wire format."""
    out = bytearray(body)
    for _ in range(rnd.randint(1, 6)):
        choice = rnd.random()
        if out and choice < 0.4:
            out[rnd.randrange(len(out))] = rnd.randrange(256)
        elif out and choice < 0.6:
            del out[rnd.randrange(len(out))]
        elif choice < 0.9:
            out.insert(rnd.randrange(len(out) + 1), rnd.randrange(256))
        else:
            out[rnd.randrange(len(out) + 1) :] = b""  # truncated
    return bytes(out)


def raw_bodies() -> list[bytes]:
    """Bodies that are not any request: wire-format edge cases."""
    deep = b""
    for _ in range(200):  # nested unknown length-delimited fields, deeper than the parser's limit
        deep = b"\x7a" + varint(len(deep)) + deep
    return [
        b"\xff" * 64,
        b"\x0a\xff\xff\xff\xff\x0f",  # a length far past the end
        b"\x08" + b"\xff" * 10 + b"\x01",  # an 11-byte varint
        b"\x0b" * 1000,  # start-group tags without ends
        b"\x07",  # wire type 7 does not exist
        deep,
        bytes(range(256)),
    ]
