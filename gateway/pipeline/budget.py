"""Budget stage: work bound upstream needs time for one round trip, or is answered at once.

It sits after the cache and validation, where a call is about to become upstream work
(a shared call, a merge window, a token, an HTTP request). A call with less than
`[upstream] min_upstream_budget_seconds` left cannot be answered by any AWS endpoint in
time, so it gets the README's "deadline passed before sending" verdict now, without
starting work the caller will never see. Without this, such a call would start a shared
call whose wait ends before the shared call reaches the upstream, and read
UPSTREAM_TIMEOUT for an upstream that was never called.
"""

from __future__ import annotations

from google.protobuf.message import Message

from gateway.errors import DeadlineExceeded
from gateway.operations import Operation
from gateway.pipeline.call import Call, Handler


class Budget:
    """Stage: refuse upstream-bound work that cannot fit in the time left."""

    def __init__(self, minimum: float) -> None:
        self.minimum = minimum

    def wrap(self, op: Operation, inner: Handler) -> Handler:
        if self.minimum <= 0:
            return inner
        minimum, service = self.minimum, op.upstream

        async def budgeted(call: Call) -> Message:
            if call.remaining() < minimum:
                raise DeadlineExceeded.before_sending(service)
            return await inner(call)

        return budgeted
