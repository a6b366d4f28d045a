"""The gRPC edge: how every RPC shape reaches the same per-operation pipelines.

There are no hand-written servicers. Each operation has one pipeline, composed once at
start-up (gateway/server.py), and three shapes of RPC reach it:

    unary   /mlgw.<service>.v1.<Service>/<Operation>      `_endpoint`: one call
    batch   /mlgw.batch.v1.BatchService/Batch<Operation>  `_batch_endpoint`: one call per
            entry, at most `[batch] max_concurrency` at once (`fanout.fan_out`)
    stream  /mlgw.batch.v1.BatchService/StreamRecommendations  `_stream_endpoint`: one call
            per request read, at most `[batch] stream_max_in_flight` unanswered (`fanout.Flow`)

Each shape parses its RPC's metadata once into a `Context` (deadline, priority, request id,
cache directives) and makes its calls with `Call.at_edge`, so a batch or stream entry is
the same call as a unary one: it shares the cache, coalescing, merging and admission with
everyone's calls. What differs by shape is decided here, and only here:

    | concern                        | unary              | batch / stream entry          |
    | ------------------------------ | ------------------ | ----------------------------- |
    | admission lane                 | op row / metadata  | batch, always                 |
    | deadline                       | the RPC's          | batch: the RPC's; stream: the |
    |                                |                    | RPC's, from the entry's read  |
    | answer metadata (mlgw-cache)   | trailers           | the entry's `metadata` map    |
    | an exception becomes           | the RPC's status   | the entry's google.rpc.Status |
    | `[server] max_concurrent_rpcs` | counts the call    | counts the batch/stream once  |

This is the only place exceptions become statuses: each has exactly one ErrorInfo.
"""

from __future__ import annotations

import asyncio
import logging
import math
import statistics
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import DecodeError, Message
from mlgw.batch.v1 import batch_pb2

from gateway import metrics
from gateway.config import BatchConfig, UpstreamConfig
from gateway.errors import (
    BatchTooLarge,
    DeadlineExceeded,
    FieldViolation,
    GatewayError,
    InternalError,
    InvalidRequest,
    MalformedRequest,
    Overloaded,
    QuotaExceeded,
)
from gateway.fanout import Flow, fan_out
from gateway.logs import LogBudget
from gateway.operations import Operation, Priority
from gateway.pipeline import cachecontrol as cc
from gateway.pipeline.call import Call, Context, Handler, Shape
from gateway.pipeline.validate import request_parser
from gateway.security import audit
from gateway.security.guard import Guard, first_resource
from gateway.security.identity import Caller

log = logging.getLogger("gateway.rpc")


class LoopLag:
    """How late this process's event loop runs timers, measured by a periodic timer.

    The gateway answers a call that runs out of time `margin` before the caller's deadline,
    so its status (with ErrorInfo) arrives before the caller's own timer fires. A fixed
    margin is too small as soon as the loop is busy: the timer that ends the call fires late
    by however long the loop is behind, and calls that expire together are answered one
    after the other. So the margin is the configured base, plus a high percentile of
    recent lateness (of a periodic timer, and of the gateway's own timeout answers past
    their deadline), plus the time to answer every call now in flight should they all
    expire at once; capped.

    That last term needs what one timeout answer costs here, which depends on how busy the
    machine is (0.5 ms on an idle core, three times that when other processes compete):
    it is measured, as the gap between consecutive timeout answers when the later one had
    to wait for the earlier (so the gap is the answer's own cost, not idle time).
    """

    #: The loop time one timeout answer takes on an idle core, until measured.
    ANSWER_COST = 0.0005
    #: A timeout answer this late waited behind another one: the gap between them is a cost.
    QUEUED = 0.001

    #: Samples every 10 ms over the last 2 s: reacts within a burst, forgets it soon after.
    INTERVAL = 0.01
    WINDOW = 200
    QUANTILE = 0.99
    #: Answer costs: the median of the last 200 gaps (one slow gap must not set it).
    COST_WINDOW = 200

    def __init__(self, base: float, maximum: float) -> None:
        self.base = base
        self.maximum = max(base, maximum)
        self._high = 0.0
        self._samples: deque[float] = deque(maxlen=self.WINDOW)
        self._cost = self.ANSWER_COST
        self._costs: deque[float] = deque(maxlen=self.COST_WINDOW)
        self._last_answer: float | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._expected = 0.0

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._expected = loop.time() + self.INTERVAL
        self._handle = loop.call_at(self._expected, self._tick)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def observe(self, lateness: float) -> None:
        # Only recorded here: the percentiles are recomputed by the periodic timer, so a
        # burst of timeout answers does not sort the window once per answer.
        self._samples.append(max(lateness, 0.0))

    def answered_late(self, now: float, lateness: float) -> None:
        """A timeout answer given `lateness` seconds after the call's own deadline."""
        if lateness > self.QUEUED and self._last_answer is not None:
            gap = now - self._last_answer
            if 0 < gap < self.QUEUED + lateness:  # it waited behind the previous answer
                self._costs.append(gap)
        self._last_answer = now
        self.observe(lateness)

    def margin(self, in_flight: int) -> float:
        return min(self.base + 2 * self._high + in_flight * self._cost, self.maximum)

    def refresh(self) -> None:
        """Recompute the lateness percentile and the answer cost from the samples."""
        if self._samples:
            ordered = sorted(self._samples)
            self._high = ordered[min(len(ordered) - 1, int(len(ordered) * self.QUANTILE))]
        if self._costs:
            self._cost = max(self.ANSWER_COST, statistics.median(self._costs))

    def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        self.observe(now - self._expected)
        self.refresh()
        self._expected = now + self.INTERVAL
        self._handle = loop.call_at(self._expected, self._tick)


@dataclass(frozen=True, slots=True)
class Deadlines:
    """How long upstream work may take: the caller's deadline, clamped sensibly."""

    default: float
    maximum: float
    lag: LoopLag

    @classmethod
    def from_config(cls, cfg: UpstreamConfig) -> Deadlines:
        lag = LoopLag(cfg.deadline_margin_seconds, cfg.max_deadline_margin_seconds)
        return cls(cfg.default_deadline_seconds, cfg.max_deadline_seconds, lag)

    def absolute(self, remaining: float | None, now: float, in_flight: int = 0) -> float:
        # grpc reports no deadline as None (passing it on as a timeout would expire at once,
        # grpc/grpc#26236), and absurdly far deadlines are capped.
        budget = self.default if remaining is None else min(remaining, self.maximum)
        return now + budget - self.lag.margin(in_flight)


class Capacity:
    """Calls in flight in this process, against `[server] max_concurrent_rpcs`.

    The edge enforces it (not grpc's own limiter) so that a refusal is RESOURCE_EXHAUSTED
    with ErrorInfo and RetryInfo, counted in the request metrics like any other answer."""

    __slots__ = ("in_flight", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0


def method_handlers(
    operations: Iterable[Operation],
    pipeline_for: Callable[[Operation], Handler],
    deadlines: Deadlines,
    capacity: Capacity,
    guard: Guard | None = None,
) -> dict[str, dict[str, grpc.RpcMethodHandler[Any, Any]]]:
    """Service name -> {method name -> handler}, ready for `add_registered_method_handlers`.

    The request arrives as bytes and the endpoint decodes it: grpc's own deserializer would
    fail before any code of ours runs (UNKNOWN, a Python exception name, nothing counted)."""
    services: dict[str, dict[str, grpc.RpcMethodHandler[Any, Any]]] = defaultdict(dict)
    for op in operations:
        services[op.service][op.name] = grpc.unary_unary_rpc_method_handler(
            _endpoint(op, pipeline_for(op), deadlines, capacity, guard),
            request_deserializer=None,
            response_serializer=op.response.SerializeToString,
        )
    return dict(services)


RpcContext = grpc.aio.ServicerContext[Any, Any]


def _endpoint(
    op: Operation,
    pipeline: Handler,
    deadlines: Deadlines,
    capacity: Capacity,
    guard: Guard | None = None,
) -> Callable[[bytes, RpcContext], Awaitable[Message]]:
    recorded = metrics.request_metrics(op.name)
    ok = recorded.code(grpc.StatusCode.OK)
    decode = request_parser(op)  # a hostile count never gets a full parse
    message_type = op.request.DESCRIPTOR.full_name
    rpc = f"{op.service}/{op.name}"
    control = audit.is_control_plane(op.name)

    async def endpoint(body: bytes, context: RpcContext) -> Message:
        start = time.perf_counter()
        recorded.in_flight.inc()
        capacity.in_flight += 1
        metadata = _metadata(context)
        caller: Caller | None = None
        request: Message | None = None
        try:
            # Identity and the RPC's right come before anything else, the resources' right
            # as soon as the request is decoded: before the cache, so no answer leaks. The
            # quota is charged before decoding: a caller over it is refused at the least
            # cost, and what it sent (well-formed or not, allowed or not) still took a share.
            if guard is not None:
                caller = guard.identify(metadata, context, rpc)
                guard.check_rpc(caller, rpc)
                await guard.charge(caller, rpc)
            if capacity.in_flight > capacity.limit:
                raise Overloaded(capacity.limit)
            try:
                request = decode(body)
            except DecodeError:
                raise MalformedRequest(message_type) from None
            if caller is not None and guard is not None:
                guard.check_request(caller, rpc, request)
            loop = asyncio.get_running_loop()
            now = loop.time()
            deadline = deadlines.absolute(context.time_remaining(), now, capacity.in_flight)
            if deadline <= now:
                # Less time left than the margin the gateway needs to answer: nothing can be
                # sent, so it is answered at once.
                raise DeadlineExceeded.before_sending()
            call = Call.at_edge(op, request, Context.parse(metadata, deadline, caller=caller))
            try:
                response = await pipeline(call)
            except DeadlineExceeded:
                answered = loop.time()
                deadlines.lag.answered_late(answered, answered - call.deadline)
                raise
            if call.reply_metadata:
                context.set_trailing_metadata(tuple(call.reply_metadata))
        except asyncio.CancelledError:
            recorded.code(grpc.StatusCode.CANCELLED).inc()
            raise
        except Exception as exc:
            error = exc if isinstance(exc, GatewayError) else InternalError(exc)
            recorded.code(error.code).inc()
            _log_error(op.name, error, metadata)
            if control and request is not None and error.reason not in _SECURITY_REASONS:
                _audit(caller, rpc, request, error.code.name)
            await context.abort(error.code, error.caller_message, error.trailing_metadata())
            raise  # abort() raises; this line only tells readers and mypy so
        finally:
            capacity.in_flight -= 1
            recorded.in_flight.dec()
            recorded.latency.observe(time.perf_counter() - start)
        ok.inc()
        if control:
            _audit(caller, rpc, request, "OK")
        return response

    return endpoint


#: Reasons the guard already audited (gateway/security/guard.py).
_SECURITY_REASONS = frozenset({"UNAUTHENTICATED", "PERMISSION_DENIED", "CALLER_QUOTA_EXCEEDED"})


def _audit(caller: Caller | None, rpc: str, request: Message, outcome: str) -> None:
    audit.record(caller.name if caller else None, rpc, first_resource(request), outcome)


# ---- batch and stream RPCs: entries are calls like any other --------------------------


@dataclass(frozen=True)
class BatchRpc:
    """One batch RPC of mlgw.batch.v1: a list of one operation's requests."""

    name: str
    op: Operation
    request: type[Message]
    response: type[Message]


def batch_rpcs(operations: Iterable[Operation]) -> list[BatchRpc]:
    """The batch RPCs, read from BatchService's descriptor: `Batch<Op>` takes a list of
    `<Op>Request` as `requests` and answers a list of results as `results`."""
    by_request = {op.request.DESCRIPTOR.full_name: op for op in operations}
    out = []
    for method in _BATCH_SERVICE.methods:
        if method.client_streaming:
            continue
        entry = method.input_type.fields_by_name["requests"].message_type
        op = by_request.get(entry.full_name) if entry is not None else None
        if op is not None:
            request = getattr(batch_pb2, method.input_type.name)
            response = getattr(batch_pb2, method.output_type.name)
            out.append(BatchRpc(method.name, op, request, response))
    return out


_BATCH_SERVICE = batch_pb2.DESCRIPTOR.services_by_name["BatchService"]
BATCH_SERVICE = _BATCH_SERVICE.full_name
STREAM_METHOD = next(m.name for m in _BATCH_SERVICE.methods if m.client_streaming)


def fanout_handlers(
    operations: Iterable[Operation],
    pipeline_for: Callable[[Operation], Handler],
    deadlines: Deadlines,
    capacity: Capacity,
    cfg: BatchConfig,
    guard: Guard | None = None,
) -> dict[str, grpc.RpcMethodHandler[Any, Any]]:
    """BatchService's method handlers, over the same pipelines as the unary RPCs."""
    ops = tuple(operations)
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
    for rpc in batch_rpcs(ops):
        handlers[rpc.name] = grpc.unary_unary_rpc_method_handler(
            _batch_endpoint(rpc, pipeline_for(rpc.op), deadlines, capacity, cfg, guard),
            request_deserializer=None,
            response_serializer=rpc.response.SerializeToString,
        )
    streamed = _streamed_operations(ops)
    if streamed:
        pipelines = {field: (op, pipeline_for(op)) for field, op in streamed.items()}
        handlers[STREAM_METHOD] = grpc.stream_stream_rpc_method_handler(
            _stream_endpoint(pipelines, deadlines, capacity, cfg, guard),
            # The endpoint writes each response as bytes it assembles (`repeated_field_1`).
            request_deserializer=None,
            response_serializer=None,
        )
    return handlers


async def _run_entry(
    pipeline: Handler, call: Call, counted: metrics.EntryMetrics
) -> Message | GatewayError:
    """One entry's call through its pipeline: the answer, or the error as the value the
    entry's google.rpc.Status is made from (only cancellation propagates)."""
    try:
        response = await pipeline(call)
    except asyncio.CancelledError:
        raise  # grpc/grpc#43360: never swallow the cancellation of a call
    except Exception as exc:
        error = exc if isinstance(exc, GatewayError) else InternalError(exc)
        counted.failed(error.code)
        # One RPC may carry a thousand bad entries: counted, and logged at debug (a bug's
        # traceback still at error), so a batch cannot flood the log.
        _log_error(call.op.name, error, call.context.metadata, quiet=True)
        return error
    counted.ok += 1
    return response


#: Loop time one entry adds to a batch's answer (its result serialised and sent; about 20 µs
#: measured, doubled), kept back from the entries' deadline as `LoopLag.ANSWER_COST` is.
BATCH_ENTRY_ANSWER_COST = 0.00004


_LATE_ENTRY = DeadlineExceeded(
    "the RPC's deadline passed before this entry could start", reason="DEADLINE_EXCEEDED"
).to_status()


def _batch_endpoint(
    rpc: BatchRpc,
    pipeline: Handler,
    deadlines: Deadlines,
    capacity: Capacity,
    cfg: BatchConfig,
    guard: Guard | None = None,
) -> Callable[[bytes, RpcContext], Awaitable[Message]]:
    op, limit, concurrency = rpc.op, cfg.max_entries, cfg.max_concurrency
    recorded = metrics.request_metrics(rpc.name)
    sizes = metrics.BATCH_ENTRIES.labels(rpc.name)
    counted = metrics.entry_metrics(Shape.BATCH.value, op.name)
    message_type = rpc.request.DESCRIPTOR.full_name
    batch_rpc = f"{BATCH_SERVICE}/{rpc.name}"
    entry_rpc = f"{op.service}/{op.name}"

    async def batch(body: bytes, context: RpcContext) -> Message:
        metadata = _metadata(context)
        caller = None
        if guard is not None:
            caller = guard.identify(metadata, context, batch_rpc)
            guard.check_rpc(caller, batch_rpc)
        try:
            request = rpc.request.FromString(body)
        except DecodeError:
            raise MalformedRequest(message_type) from None
        entries = request.requests  # type: ignore[attr-defined]
        if len(entries) > limit:
            raise BatchTooLarge(len(entries), limit)
        sizes.observe(len(entries))
        loop = asyncio.get_running_loop()
        now = loop.time()
        deadline = deadlines.absolute(context.time_remaining(), now, capacity.in_flight)
        # The answer is assembled and serialised after the last entry: keep time for it.
        deadline -= len(entries) * BATCH_ENTRY_ANSWER_COST
        if deadline <= now:
            raise DeadlineExceeded.before_sending()
        rpc_context = Context.parse(metadata, deadline, Shape.BATCH, Priority.BATCH, caller)
        # Each entry costs one of the caller's tokens and is authorized on its own: the
        # entries refused get their own status, the others run.
        response: Any = rpc.response()
        results = response.results
        work = [(entry, results.add()) for entry in entries]
        if caller is not None and guard is not None:
            taken = await guard.charge(caller, batch_rpc, len(entries)) if entries else 0
            work = _refuse_entries(guard, caller, entry_rpc, work, taken, counted)

        async def run(pair: tuple[Message, Any]) -> None:
            entry, out = pair
            if loop.time() >= deadline:
                # Past the deadline every entry not started gets the same status, cheaply:
                # hundreds may be left, and the answer must still go out in time.
                out.error.CopyFrom(_LATE_ENTRY)
                counted.failed(grpc.StatusCode.DEADLINE_EXCEEDED)
                return
            call = Call.at_edge(op, entry, rpc_context)
            answer = await _run_entry(pipeline, call, counted)
            if isinstance(answer, GatewayError):
                out.error.CopyFrom(answer.to_status())
            else:
                out.response.CopyFrom(answer)
            if call.reply_metadata:
                out.metadata.update(call.reply_metadata)

        # Each entry fills its own result in place: in request order, copied once.
        await fan_out(work, run, concurrency)
        return response  # type: ignore[no-any-return]

    return _guarded(rpc.name, recorded, capacity, batch)


def _refuse_entries(
    guard: Guard,
    caller: Caller,
    rpc: str,
    work: list[tuple[Message, Any]],
    taken: int,
    counted: metrics.EntryMetrics,
) -> list[tuple[Message, Any]]:
    """The entries that may run; the others' results get their refusal: PERMISSION_DENIED
    for a denied one, RESOURCE_EXHAUSTED past the `taken` tokens the caller had."""
    allowed = []
    over = None
    for index, (entry, out) in enumerate(work):
        refusal = guard.entry_error(caller, rpc, entry)
        if refusal is None and index >= taken:
            over = over or guard.quotas.exceeded(caller, 1.0 / (caller.rate or 1.0)).to_status()
            out.error.CopyFrom(over)
            counted.failed(grpc.StatusCode.RESOURCE_EXHAUSTED)
        elif refusal is not None:
            out.error.CopyFrom(refusal.to_status())
            counted.failed(refusal.code)
        else:
            allowed.append((entry, out))
    return allowed


def _streamed_operations(operations: Iterable[Operation]) -> dict[str, Operation]:
    """The stream request's `request` oneof: field name -> the operation it calls."""
    by_request = {op.request.DESCRIPTOR.full_name: op for op in operations}
    oneof = batch_pb2.StreamRecommendationsEntry.DESCRIPTOR.oneofs_by_name["request"]
    named = {f.name: f.message_type.full_name for f in oneof.fields if f.message_type}
    return {name: by_request[full] for name, full in named.items() if full in by_request}


def _stream_endpoint(
    pipelines: Mapping[str, tuple[Operation, Handler]],
    deadlines: Deadlines,
    capacity: Capacity,
    cfg: BatchConfig,
    guard: Guard | None = None,
) -> Callable[[AsyncIterator[bytes], RpcContext], Awaitable[None]]:
    recorded = metrics.request_metrics(STREAM_METHOD)
    counted = {
        field: metrics.entry_metrics(Shape.STREAM.value, op.name)
        for field, (op, _) in pipelines.items()
    }
    message = batch_pb2.StreamRecommendationsRequest
    decode = message.FromString
    result_type = batch_pb2.StreamRecommendationsResult
    limit = cfg.max_entries
    missing = InvalidRequest(
        [FieldViolation("request", f"set one of {', '.join(sorted(pipelines))}")]
    )

    stream_rpc = f"{BATCH_SERVICE}/{STREAM_METHOD}"
    entry_rpcs = {field: f"{op.service}/{op.name}" for field, (op, _) in pipelines.items()}

    async def stream(body: AsyncIterator[bytes], context: RpcContext) -> None:
        metadata = _metadata(context)
        if guard is None:
            await serve(body, context, metadata, None)
            return
        caller = guard.identify(metadata, context, stream_rpc)
        guard.check_rpc(caller, stream_rpc)
        lease = await guard.open_stream(caller)
        try:
            await serve(body, context, metadata, caller)
        finally:  # also on cancel and when the client is gone; never raises nor waits
            guard.quotas.close_stream(caller, lease)

    async def serve(
        _: AsyncIterator[bytes],
        context: RpcContext,
        metadata: dict[str, str],
        caller: Caller | None,
    ) -> None:
        loop = asyncio.get_running_loop()
        # The stream's own deadline (if any) bounds each entry's, counted from its read.
        rpc_context = Context.parse(metadata, math.inf, Shape.STREAM, Priority.BATCH, caller)

        async def read() -> list[tuple[batch_pb2.StreamRecommendationsEntry, float, int]] | None:
            body = await context.read()
            if body is grpc.aio.EOF:
                return None
            try:
                entries = decode(body).entries
            except DecodeError:
                raise MalformedRequest(message.DESCRIPTOR.full_name) from None
            if len(entries) > limit:
                raise BatchTooLarge(len(entries), limit, "entries")
            # The entries of one message arrived together: one deadline for them all.
            now = loop.time()
            deadline = deadlines.absolute(context.time_remaining(), now, capacity.in_flight)
            taken = len(entries)
            if caller is not None and guard is not None and entries:
                try:
                    taken = await guard.charge(caller, stream_rpc, len(entries))
                except QuotaExceeded:
                    taken = 0  # the stream goes on; these entries are refused one by one
            return [(entry, deadline, taken - i) for i, entry in enumerate(entries)]

        async def write(results: list[bytes]) -> None:
            try:
                await context.write(repeated_field_1(results))
            except Exception as exc:
                # Our bytes always serialise: a failed write is grpc's core refusing it for
                # a call already over (the client cancelled or reset it) before grpc.aio
                # cancels this handler. Nobody is left to answer (found by the live fuzz).
                raise _CallGone() from exc

        async def run(pair: tuple[batch_pb2.StreamRecommendationsEntry, float, int]) -> bytes:
            entry, deadline, tokens = pair
            out = result_type(id=entry.id)
            which = entry.WhichOneof("request")
            if which is None:
                out.error.CopyFrom(missing.to_status())
                return out.SerializeToString()
            op, pipeline = pipelines[which]
            if caller is not None and guard is not None:
                refusal = guard.entry_error(caller, entry_rpcs[which], getattr(entry, which))
                if refusal is None and tokens <= 0:
                    refusal = guard.quotas.exceeded(caller, 1.0 / (caller.rate or 1.0))
                if refusal is not None:
                    counted[which].failed(refusal.code)
                    out.error.CopyFrom(refusal.to_status())
                    return out.SerializeToString()
            if deadline <= loop.time():
                out.error.CopyFrom(DeadlineExceeded.before_sending().to_status())
                return out.SerializeToString()
            call = Call.at_edge(op, getattr(entry, which), rpc_context, deadline)
            answer = await _run_entry(pipeline, call, counted[which])
            if isinstance(answer, GatewayError):
                out.error.CopyFrom(answer.to_status())
            else:
                getattr(out, which).CopyFrom(answer)
            if call.reply_metadata:
                out.metadata.update(call.reply_metadata)
            return out.SerializeToString()

        flow = Flow(read, run, write, cfg.stream_max_in_flight, metrics.STREAM)
        try:
            await flow.run()
        except _CallGone:
            raise asyncio.CancelledError() from None  # counted and ended as a cancellation

    return _guarded(STREAM_METHOD, recorded, capacity, stream)


class _CallGone(Exception):
    """A stream's call ended under the gateway (see `_stream_endpoint`'s `write`)."""


def repeated_field_1(values: Iterable[bytes]) -> bytes:
    """The wire form of a message whose field 1 is a repeated message, from the serialized
    values (each its tag, length and bytes). The stream's responses are made so: building
    the message would copy every result."""
    out = bytearray()
    for value in values:
        out += _FIELD_1_TAG
        out += varint(len(value))
        out += value
    return bytes(out)


_FIELD_1_TAG = bytes([1 << 3 | 2])  # field 1, wire type 2 (length-delimited)


def varint(value: int) -> bytes:
    """A protobuf base-128 varint (non-negative values)."""
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _guarded(
    name: str,
    recorded: metrics.RequestMetrics,
    capacity: Capacity,
    serve: Callable[[Any, RpcContext], Awaitable[Any]],
) -> Callable[[Any, RpcContext], Awaitable[Any]]:
    """A batch or stream RPC as a whole: counted, within the process's capacity, and every
    exception (a malformed batch, a refusal) its status."""
    ok = recorded.code(grpc.StatusCode.OK)

    async def endpoint(body: Any, context: RpcContext) -> Any:
        start = time.perf_counter()
        recorded.in_flight.inc()
        capacity.in_flight += 1
        try:
            if capacity.in_flight > capacity.limit:
                raise Overloaded(capacity.limit)
            answer = await serve(body, context)
        except asyncio.CancelledError:
            recorded.code(grpc.StatusCode.CANCELLED).inc()
            raise
        except Exception as exc:
            error = exc if isinstance(exc, GatewayError) else InternalError(exc)
            recorded.code(error.code).inc()
            _log_error(name, error, _metadata(context))
            await context.abort(error.code, error.caller_message, error.trailing_metadata())
            raise  # abort() raises; this line only tells readers and mypy so
        finally:
            capacity.in_flight -= 1
            recorded.in_flight.dec()
            recorded.latency.observe(time.perf_counter() - start)
        ok.inc()
        return answer

    return endpoint


#: Singleton keys: the first entry wins, as for a singleton HTTP header behind proxies that
#: append their own (the first is the caller's); repeated `cache-control` entries combine.
def _metadata(context: RpcContext) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in context.invocation_metadata() or ():
        if not isinstance(value, str):
            continue
        if key not in out:
            out[key] = value
        elif key == cc.HEADER:
            # RFC 9110 5.3: repeated field lines mean the same as one line joined by commas.
            out[key] = f"{out[key]}, {value}"
    return out


#: Deliberate sheds: counted in metrics; a warning each would flood the log under overload.
#: Security refusals too: counted, and the audit log has the line (gateway/security/).
_QUIET_REASONS = frozenset({"RATE_LIMITED", "CIRCUIT_OPEN", "OVERLOADED", *_SECURITY_REASONS})
#: Undecodable bodies are the caller's to fix and free to send in bulk: a bounded log rate.
_MALFORMED_LOG = LogBudget(rate=1.0, burst=5.0)


def _log_error(
    method: str, error: GatewayError, metadata: Mapping[str, str], *, quiet: bool = False
) -> None:
    extra: dict[str, Any] = {
        "method": method,
        "code": error.code.name,
        "reason": error.reason,
        "detail": error.message,
        "request_id": metadata.get("x-request-id"),
        "aws_request_id": error.metadata.get("awsRequestId"),
    }
    if isinstance(error, InternalError):
        cause = error.cause
        if not error.logged:
            error.logged = True  # coalesced callers share the error: one traceback
            log.error(
                "unexpected failure",
                exc_info=(type(cause), cause, cause.__traceback__),
                extra=extra,
            )
            return
    elif isinstance(error, MalformedRequest):
        suppressed = _MALFORMED_LOG.take()
        if suppressed is None:
            return
        extra["suppressed"] = suppressed
    level = logging.DEBUG if quiet or error.reason in _QUIET_REASONS else logging.WARNING
    log.log(level, "rpc failed", extra=extra)
