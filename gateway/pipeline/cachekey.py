"""Cache keys: the operation plus a canonical serialization of the whole request.

Every request field can change the answer, so every field is in the key: the key is the
deterministic protobuf serialization of the request (map entries sorted by key, fields in
number order), so there is no allow-list to forget a parameter in (LiteLLM #894, #42400).
Canonical means two spellings of one AWS request get one key:

- map order never matters (deterministic serialization sorts map entries);
- a member AWS defaults (`CachePolicy.defaults`: GetRecommendations numResults 25,
  GetActionRecommendations numResults 5) is keyed the same whether the caller left it
  unset or sent the default. The field is *cleared* when it equals the default rather than
  *set* when unset: the same canonical form, but the common request needs no copy;
- unset and empty are one thing for proto3 maps and lists.

Deliberately *not* normalised, because the answer may differ: list order (ranking ties and
unknown items follow input order), an explicit `numResults = 0`, duplicates in a list.
Request metadata (`cache-control`, request ids) is never part of the key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from gateway.operations import Operation

#: request -> key bytes (the operation name, a newline, the canonical request).
KeyFunction = Callable[[Message], bytes]


def proto_field(descriptor: Descriptor | Any, member: str) -> FieldDescriptor:
    """The field whose proto3 JSON name is the AWS member `member`."""
    for fd in descriptor.fields:
        if fd.json_name == member:
            found: FieldDescriptor = fd
            return found
    raise KeyError(f"{descriptor.full_name} has no field for AWS member {member!r}")


def request_key(op: Operation, *, without: Iterable[str] = ()) -> KeyFunction:
    """The key function of `op`'s requests; members in `without` are left out of the key.

    Merging keys requests by everything but the merged member (`without=("inputList",)`).
    """
    descriptor = op.request.DESCRIPTOR
    defaults: list[tuple[str, Any]] = []
    for member, value in op.cache.defaults if op.cache is not None else ():
        fd = proto_field(descriptor, member)
        if not fd.has_presence:  # unset and default would be indistinguishable anyway
            raise ValueError(f"{fd.full_name}: a default needs a field with presence")
        defaults.append((fd.name, value))
    cleared = tuple(proto_field(descriptor, member).name for member in without)
    prefix = op.name.encode() + b"\n"
    request_type = op.request

    if not defaults and not cleared:

        def plain_key(request: Message) -> bytes:
            return prefix + request.SerializeToString(deterministic=True)

        return plain_key

    def key(request: Message) -> bytes:
        message = request
        for name, default in defaults:
            if message.HasField(name) and getattr(message, name) == default:
                if message is request:
                    message = request_type()
                    message.CopyFrom(request)
                message.ClearField(name)
        if cleared:
            if message is request:
                message = request_type()
                message.CopyFrom(request)
            for name in cleared:
                message.ClearField(name)
        return prefix + message.SerializeToString(deterministic=True)

    return key
