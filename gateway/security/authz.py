"""Authorization: which RPCs and which resources a caller may use, from its `[auth]` globs.

Decided from the caller's patterns and the request alone, before the cache and any upstream
work: a denied caller gets the same PERMISSION_DENIED whether the resource exists or not,
and a cached or coalesced answer never reaches it. Decisions are memoised per caller (RPC
names are a fixed set; resources in a bounded map), so a cache hit pays a dict lookup.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

#: Request fields naming a resource besides `*_arn` (Bedrock's model and job, Amazon ML's model).
_RESOURCE_FIELDS = frozenset({"model_id", "job_identifier", "ml_model_id"})
#: Resources remembered per caller; beyond it decisions are recomputed (a regex match).
_MEMO = 4096


def matcher(patterns: Iterable[str]) -> Callable[[str], bool]:
    """A predicate true for names matching any glob (`*` any text, `?` one character)."""
    globs = tuple(patterns)
    if "*" in globs:
        return lambda _: True
    if not globs:
        return lambda _: False
    regex = re.compile("|".join(f"(?:{fnmatch.translate(g)})" for g in globs))
    return lambda name: regex.match(name) is not None


class Rights:
    """One caller's RPC and resource patterns, with memoised decisions."""

    __slots__ = ("_resource", "_resources", "_rpc", "_rpcs")

    def __init__(self, rpcs: Iterable[str], resources: Iterable[str]) -> None:
        self._rpc = matcher(rpcs)
        self._resource = matcher(resources)
        self._rpcs: dict[str, bool] = {}
        self._resources: dict[str, bool] = {}

    def rpc(self, name: str) -> bool:
        found = self._rpcs.get(name)
        if found is None:
            found = self._rpcs[name] = self._rpc(name)
        return found

    def resource(self, name: str) -> bool:
        found = self._resources.get(name)
        if found is None:
            found = self._resource(name)
            if len(self._resources) < _MEMO:
                self._resources[name] = found
        return found

    def request(self, request: Message) -> str | None:
        """The first resource of `request` the caller may not use, or None."""
        for value in resources_of(request):
            if not self.resource(value):
                return value
        return None


_FIELDS: dict[str, tuple[str, ...]] = {}


def resource_fields(descriptor: Any) -> tuple[str, ...]:
    found = _FIELDS.get(descriptor.full_name)
    if found is None:
        found = _FIELDS[descriptor.full_name] = tuple(
            f.name
            for f in descriptor.fields
            if f.type == FieldDescriptor.TYPE_STRING
            and not f.is_repeated
            and (f.name.endswith("_arn") or f.name in _RESOURCE_FIELDS)
        )
    return found


def resources_of(request: Message) -> list[str]:
    """The resource names (ARNs, model and job ids) a request sets, in field order."""
    if not isinstance(request, Message):
        # The edge's parser stopped at a hostile count (validate.OversizedRequest): nothing
        # was parsed, nothing is named; the precheck refuses it as INVALID_REQUEST.
        return []
    out = []
    for name in resource_fields(request.DESCRIPTOR):
        value = getattr(request, name)
        if value:
            out.append(value)
    return out
