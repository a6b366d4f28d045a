"""A call in flight through the pipeline, and the stage interface."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

from google.protobuf.message import Message

from gateway.operations import Operation
from gateway.upstream.mapping import to_aws


class Call:
    """One RPC: its operation row, request message, absolute deadline and metadata."""

    __slots__ = ("_params", "deadline", "metadata", "op", "reply_metadata", "request")

    def __init__(
        self,
        op: Operation,
        request: Message,
        deadline: float,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        self.op = op
        self.request = request
        #: On the running loop's clock (`loop.time()`), already clamped and with the margin.
        self.deadline = deadline
        self.metadata: Mapping[str, str] = metadata or {}
        self._params: dict[str, Any] | None = None
        #: Metadata stages attach to the answer (cache status, ...), sent as trailers.
        self.reply_metadata: list[tuple[str, str]] = []

    @property
    def params(self) -> dict[str, Any]:
        """The botocore parameters, converted once and shared by every stage."""
        if self._params is None:
            self._params = to_aws(self.request)
        return self._params

    def remaining(self) -> float:
        return self.deadline - asyncio.get_running_loop().time()


Handler = Callable[[Call], Awaitable[Message]]


class Stage(Protocol):
    """One cross-cutting behaviour. `wrap` runs once per operation at start-up."""

    def wrap(self, op: Operation, inner: Handler) -> Handler: ...


def compose(op: Operation, stages: Sequence[Stage], terminal: Handler) -> Handler:
    """`stages[0]` sees the call first; the terminal handler last."""
    handler = terminal
    for stage in reversed(stages):
        handler = stage.wrap(op, handler)
    return handler
