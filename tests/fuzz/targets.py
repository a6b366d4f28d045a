"""The offline fuzz target: one request body through every stage that reads it untrusted.

`check(op, body)` runs what a hostile body meets before any upstream call, in the order the
gateway runs it: the edge's decoder (`request_parser`), `Precheck`, the cache key, the
conversion to AWS parameters (`to_aws`, through `Call.params`) and `Validate`. A body may
fail only as the edge would answer it: a `DecodeError` (MALFORMED_REQUEST) or a
`GatewayError` that is not INTERNAL/UNKNOWN and carries exactly one ErrorInfo. Anything else
escaping is a defect (it would reach the caller as INTERNAL); `check` lets it propagate so
the fuzzer reports the input.

The stages are driven without an event loop: with a terminal that never suspends, each
stage's coroutine finishes on its first step, which keeps a fuzz iteration in microseconds.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Coroutine
from functools import cache
from typing import Any, cast

import grpc
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import DecodeError, Message
from google.rpc import error_details_pb2, status_pb2

from gateway.errors import STATUS_DETAILS_KEY, GatewayError
from gateway.operations import OPERATIONS, Operation
from gateway.pipeline.cachekey import request_key
from gateway.pipeline.call import Call, Handler
from gateway.pipeline.validate import Precheck, Validate, request_parser

#: Codes a body may never earn: they say the gateway, not the caller, failed.
FORBIDDEN_CODES = frozenset({grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL})


class Target:
    """One operation's decoder and stages, composed once."""

    def __init__(self, op: Operation) -> None:
        self.op = op
        self.parse = request_parser(op)
        self.key = request_key(op)

        async def terminal(call: Call) -> Message:
            return op.response()

        async def keyed(call: Call) -> Message:
            # Where the cache stage sits: it keys the request (and may read its params).
            self.key(call.request)
            return await validated(call)

        validated: Handler = Validate().wrap(op, terminal)
        self.pipeline: Handler = Precheck().wrap(op, keyed)

    def run(self, body: bytes) -> Message | None:
        """The stages' answer, or None when the edge would answer MALFORMED_REQUEST."""
        try:
            request = self.parse(body)
        except DecodeError:
            return None
        return finish(self.pipeline(Call(self.op, request, math.inf)))


def finish(awaitable: Awaitable[Message]) -> Message:
    coroutine = cast(Coroutine[Any, Any, Message], awaitable)  # stages are `async def`
    try:
        coroutine.send(None)
    except StopIteration as done:
        result: Message = done.value
        return result
    coroutine.close()
    raise AssertionError("a stage suspended: the offline target assumes none does")


@cache
def targets() -> tuple[Target, ...]:
    return tuple(Target(op) for op in OPERATIONS)


def check(op_index: int, body: bytes) -> None:
    """Run one body through operation `op_index % len(OPERATIONS)`; raise on a defect."""
    all_targets = targets()
    target = all_targets[op_index % len(all_targets)]
    try:
        target.run(body)
    except GatewayError as error:
        assert_clear(error)


def assert_clear(error: GatewayError) -> None:
    """A caller-facing error: not INTERNAL/UNKNOWN, exactly one ErrorInfo in its details."""
    if error.code in FORBIDDEN_CODES:
        raise AssertionError(f"{error!r} escaped the stages") from error
    trailers = error.trailing_metadata()
    status = status_from_trailers(trailers)
    if count_error_infos(status) != 1:
        raise AssertionError(f"{error!r}: not exactly one ErrorInfo")
    size = trailer_size(trailers, error.caller_message)
    if size > MAX_TRAILER_BYTES:
        # grpc clients refuse trailers past their metadata limit: the caller would get a
        # bare RESOURCE_EXHAUSTED instead of this error.
        raise AssertionError(f"{error!r}: {size} bytes of trailers")


#: grpc's default (soft) metadata limit on clients: 8 KiB, counting 32 bytes per entry.
MAX_TRAILER_BYTES = 8192


def trailer_size(trailers: Any, message: str) -> int:
    """The size grpc counts for an error's trailers: binary values travel as base64 and the
    status message percent-encoded (3 bytes for `%` and each byte outside printable ASCII)."""
    encoded = sum(3 if b < 0x20 or b > 0x7E or b == 0x25 else 1 for b in message.encode())
    size = len("grpc-message") + 32 + encoded
    for key, value in trailers or ():
        encoded = 4 * ((len(value) + 2) // 3) if key.endswith("-bin") else len(value)
        size += len(key) + encoded + 32
    return size


def status_from_trailers(trailers: Any) -> status_pb2.Status:
    for key, value in trailers or ():
        if key == STATUS_DETAILS_KEY:
            return status_pb2.Status.FromString(value)
    return status_pb2.Status()


def count_details(status: status_pb2.Status, kind: Descriptor) -> int:
    """How many of `status`'s details are of message type `kind`."""
    return sum(box.Is(kind) for box in status.details)


def count_error_infos(status: status_pb2.Status) -> int:
    return count_details(status, error_details_pb2.ErrorInfo.DESCRIPTOR)
