"""The job service's upstream calls: every create, describe, list and stop goes through the
operation's composed pipeline (validation, retries, the breaker, admission at the row's batch
priority, the cache bypassed), exactly like a caller's call of the mirrored RPC.

`job_call` is the one place this package builds a `Call`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from google.protobuf.message import Message

from gateway.jobs.backends import JOB_OPERATIONS
from gateway.operations import OPERATIONS, Operation, Priority
from gateway.pipeline import Call, Context, Handler, compose
from gateway.pipeline.validate import Precheck, Validate

#: Job descriptions are cacheable for callers of the mirrored RPCs; a poller needs news.
_METADATA = {"cache-control": "no-cache"}


def job_call(op: Operation, request: Message, timeout: float) -> Call:
    """A call of the job service (no caller: its own deadline, at batch priority)."""
    deadline = asyncio.get_running_loop().time() + timeout
    context = Context.parse(_METADATA, deadline, priority=Priority.BATCH)
    return Call.at_edge(op, request, context)


async def _accepted(call: Call) -> Message:
    return call.request


class JobCalls:
    """The handlers of the job operations, composed once, and a validator per create."""

    def __init__(
        self,
        pipeline: Callable[[Operation], Handler],
        timeout: float,
        operations: Iterable[Operation] = OPERATIONS,
    ) -> None:
        self._timeout = timeout
        ops = [op for op in operations if op.name in JOB_OPERATIONS]
        self._ops = {op.name: (op, pipeline(op)) for op in ops}
        # The submit RPCs check a create request as its RPC would, before accepting it.
        self._checks = {op.name: compose(op, [Precheck(), Validate()], _accepted) for op in ops}

    async def __call__(self, name: str, request: Message) -> Message:
        op, handler = self._ops[name]
        return await handler(job_call(op, request, self._timeout))

    async def validate(self, name: str, request: Message) -> None:
        """Raises InvalidRequest as the mirrored RPC would."""
        op, _ = self._ops[name]
        await self._checks[name](job_call(op, request, self._timeout))
