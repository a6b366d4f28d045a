"""The gRPC edge: one generic method handler per row of the operation table.

There are no hand-written servicers: each RPC's handler is the operation's composed
pipeline wrapped in the same edge function, which decodes the request, sets the deadline,
records metrics and turns every exception into a gRPC status with google.rpc details
(exactly one ErrorInfo, always). This is the only place exceptions become statuses.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import DecodeError, Message

from gateway import metrics
from gateway.config import UpstreamConfig
from gateway.errors import (
    DeadlineExceeded,
    GatewayError,
    InternalError,
    MalformedRequest,
    Overloaded,
)
from gateway.logs import LogBudget
from gateway.operations import Operation
from gateway.pipeline import cachecontrol as cc
from gateway.pipeline.call import Call, Handler
from gateway.pipeline.validate import request_parser

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
) -> dict[str, dict[str, grpc.RpcMethodHandler[Any, Any]]]:
    """Service name -> {method name -> handler}, ready for `add_registered_method_handlers`.

    The request arrives as bytes and the endpoint decodes it: grpc's own deserializer would
    fail before any code of ours runs (UNKNOWN, a Python exception name, nothing counted)."""
    services: dict[str, dict[str, grpc.RpcMethodHandler[Any, Any]]] = defaultdict(dict)
    for op in operations:
        services[op.service][op.name] = grpc.unary_unary_rpc_method_handler(
            _endpoint(op, pipeline_for(op), deadlines, capacity),
            request_deserializer=None,
            response_serializer=op.response.SerializeToString,
        )
    return dict(services)


Context = grpc.aio.ServicerContext[Any, Any]


def _endpoint(
    op: Operation, pipeline: Handler, deadlines: Deadlines, capacity: Capacity
) -> Callable[[bytes, Context], Awaitable[Message]]:
    recorded = metrics.request_metrics(op.name)
    ok = recorded.code(grpc.StatusCode.OK)
    decode = request_parser(op)  # a hostile count never gets a full parse
    message_type = op.request.DESCRIPTOR.full_name

    async def endpoint(body: bytes, context: Context) -> Message:
        start = time.perf_counter()
        recorded.in_flight.inc()
        capacity.in_flight += 1
        metadata = _metadata(context)
        try:
            if capacity.in_flight > capacity.limit:
                raise Overloaded(capacity.limit)
            try:
                request = decode(body)
            except DecodeError:
                raise MalformedRequest(message_type) from None
            loop = asyncio.get_running_loop()
            now = loop.time()
            deadline = deadlines.absolute(context.time_remaining(), now, capacity.in_flight)
            if deadline <= now:
                # Less time left than the margin the gateway needs to answer: nothing can be
                # sent, so it is answered at once.
                raise DeadlineExceeded.before_sending()
            call = Call(op, request, deadline, metadata)
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
            _log_error(op, error, metadata)
            await context.abort(error.code, error.caller_message, error.trailing_metadata())
            raise  # abort() raises; this line only tells readers and mypy so
        finally:
            capacity.in_flight -= 1
            recorded.in_flight.dec()
            recorded.latency.observe(time.perf_counter() - start)
        ok.inc()
        return response

    return endpoint


#: Singleton keys: the first entry wins, as for a singleton HTTP header behind proxies that
#: append their own (the first is the caller's); repeated `cache-control` entries combine.
def _metadata(context: Context) -> dict[str, str]:
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
_QUIET_REASONS = frozenset({"RATE_LIMITED", "CIRCUIT_OPEN", "OVERLOADED"})
#: Undecodable bodies are the caller's to fix and free to send in bulk: a bounded log rate.
_MALFORMED_LOG = LogBudget(rate=1.0, burst=5.0)


def _log_error(op: Operation, error: GatewayError, metadata: dict[str, str]) -> None:
    extra: dict[str, Any] = {
        "method": op.name,
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
    level = logging.DEBUG if error.reason in _QUIET_REASONS else logging.WARNING
    log.log(level, "rpc failed", extra=extra)
