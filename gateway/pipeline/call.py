"""A call in flight through the pipeline, the per-RPC context it carries, and the stage
interface.

Two kinds of state, kept apart (tower's request extensions, Temporal's interceptor inputs):

- `Context`: the facts that come from the RPC (its deadline, the priority lane, the request
  id, the cache directives, the RPC's shape), parsed once at the edge from the metadata and
  read-only afterwards. Every call derived from another shares its context.
- `Call`: one pass through the per-operation pipeline: the operation row, the request, the
  call's own deadline (a shared call may outlive one of its callers), the botocore params
  converted once, and the answer metadata stages attach.

A call is made in one of two ways only: at the edge, from a request and its context (a
unary call, a batch entry, a stream entry), or with `Call.derive` from a parent (the
coalescer's shared call, the merger's merged call, the retry's listing, the cache's
background refresh), which decides in one place what a derived call inherits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol

from google.protobuf.message import Message

from gateway.operations import Operation, Priority
from gateway.pipeline import cachecontrol as cc
from gateway.upstream.mapping import to_aws

if TYPE_CHECKING:
    from gateway.security.identity import Caller

#: Request metadata a caller sets to choose its lane: `interactive` or `batch`.
PRIORITY_METADATA = "mlgw-priority"
#: Request metadata naming the caller's request id (logged with every error).
REQUEST_ID_METADATA = "x-request-id"

_PRIORITIES = {p.value: p for p in Priority}


class Shape(Enum):
    """How the RPC carrying a call reached the gateway. Every shape runs the same stages;
    what differs (trailers or per-entry metadata, fan-out limits) lives at the edge,
    `gateway/services.py`."""

    UNARY = "unary"
    BATCH = "batch"
    STREAM = "stream"


class Context:
    """The per-RPC facts, parsed once at the edge; read-only, shared by derived calls.

    `caller` is the identity the edge authenticated (gateway/security/), or None for an
    anonymous caller (no `[auth]`); admission already uses the context itself as the owner
    of a batch's waiting calls (round robin between RPCs)."""

    __slots__ = ("cache", "caller", "deadline", "metadata", "priority", "request_id", "shape")

    def __init__(
        self,
        deadline: float,
        priority: Priority | None = None,
        request_id: str | None = None,
        cache: cc.Directives | None = None,
        shape: Shape = Shape.UNARY,
        metadata: Mapping[str, str] | None = None,
        caller: Caller | None = None,
    ) -> None:
        #: The RPC's deadline on the loop clock, already clamped and less the answer margin.
        self.deadline = deadline
        #: The admission lane; None: the operation's own (`Operation.priority`).
        self.priority = priority
        self.request_id = request_id
        #: The `cache-control` directives; None when the caller sent none (the fast path).
        self.cache = cache
        self.shape = shape
        #: The request metadata as received (first value per key), for logs.
        self.metadata: Mapping[str, str] = metadata if metadata is not None else _NO_METADATA
        #: Who sent the RPC (its name, tenant, rights, quota); None: anonymous.
        self.caller = caller

    @classmethod
    def parse(
        cls,
        metadata: Mapping[str, str] | None,
        deadline: float,
        shape: Shape = Shape.UNARY,
        priority: Priority | None = None,
        caller: Caller | None = None,
    ) -> Context:
        """The context of an RPC from its metadata. `priority`, when given, is the lane the
        RPC's shape imposes (batch entries), which the caller's metadata cannot change."""
        if not metadata:
            return cls(deadline, priority, None, None, shape, metadata, caller)
        get = metadata.get
        if priority is None:
            chosen = get(PRIORITY_METADATA)
            if chosen:
                priority = _PRIORITIES.get(chosen.strip().lower())
        header = get(cc.HEADER)
        cache = cc.parse(header) if header is not None else None
        return cls(deadline, priority, get(REQUEST_ID_METADATA), cache, shape, metadata, caller)


_NO_METADATA: Mapping[str, str] = {}


class Call:
    """One pass through an operation's pipeline."""

    __slots__ = ("_params", "context", "deadline", "op", "reply_metadata", "request")

    def __init__(
        self,
        op: Operation,
        request: Message,
        deadline: float,
        metadata: Mapping[str, str] | None = None,
        *,
        context: Context | None = None,
    ) -> None:
        self.op = op
        self.request = request
        #: On the running loop's clock (`loop.time()`), already clamped and with the margin.
        self.deadline = deadline
        self.context = context if context is not None else Context.parse(metadata, deadline)
        self._params: dict[str, Any] | None = None
        #: Metadata stages attach to the answer (cache status, ...): a unary call's trailers,
        #: a batch or stream entry's `metadata` map.
        self.reply_metadata: list[tuple[str, str]] = []

    @classmethod
    def at_edge(
        cls, op: Operation, request: Message, context: Context, deadline: float | None = None
    ) -> Call:
        """A call the edge makes for one request (unary, batch entry, stream entry); a
        stream entry's `deadline` counts from its arrival, within the stream's."""
        # What __init__ does, without its keyword arguments and parsing: the hot path.
        call = cls.__new__(cls)
        call.op = op
        call.request = request
        call.deadline = context.deadline if deadline is None else deadline
        call.context = context
        call._params = None
        call.reply_metadata = []
        return call

    def derive(
        self,
        *,
        op: Operation | None = None,
        request: Message | None = None,
        deadline: float | None = None,
        params: dict[str, Any] | None = None,
    ) -> Call:
        """A call made on this one's behalf: the one way stages make calls.

        It inherits the context (priority lane, request id, cache directives, shape) and, by
        default, the operation, request and deadline; it gets its own answer metadata, and
        the parent's converted params when it sends the same request. `params` sets the
        botocore parameters directly (a listing built from params, not from a message).
        """
        same = op is None and request is None
        child = Call(
            self.op if op is None else op,
            self.request if request is None else request,
            self.deadline if deadline is None else deadline,
            context=self.context,
        )
        if params is not None:
            child._params = params
        elif same:
            child._params = self._params
        return child

    @property
    def metadata(self) -> Mapping[str, str]:
        """The RPC's request metadata (read the parsed `context` for decisions)."""
        return self.context.metadata

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
    """One cross-cutting behaviour. `wrap` runs once per operation at start-up.

    A stage serves every RPC shape: batch and stream entries are calls like unary ones, so
    they share the cache, coalescing, merging and admission with everyone's calls. A stage
    that does not apply to an operation returns `inner` and costs nothing per request."""

    def wrap(self, op: Operation, inner: Handler) -> Handler: ...


def compose(op: Operation, stages: Sequence[Stage], terminal: Handler) -> Handler:
    """`stages[0]` sees the call first; the terminal handler last."""
    handler = terminal
    for stage in reversed(stages):
        handler = stage.wrap(op, handler)
    return handler
