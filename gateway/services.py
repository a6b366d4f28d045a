"""The gRPC edge: one generic method handler per row of the operation table.

There are no hand-written servicers: each RPC's handler is the operation's composed
pipeline wrapped in the same edge function, which sets the deadline, records metrics and
turns a `GatewayError` into a gRPC status with google.rpc details. This is the only place
exceptions become statuses.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import Message

from gateway import metrics
from gateway.config import UpstreamConfig
from gateway.errors import GatewayError
from gateway.operations import Operation
from gateway.pipeline.call import Call, Handler
from gateway.pipeline.validate import request_parser

log = logging.getLogger("gateway.rpc")


@dataclass(frozen=True, slots=True)
class Deadlines:
    """How long upstream work may take: the caller's deadline, clamped sensibly."""

    default: float
    maximum: float
    margin: float

    @classmethod
    def from_config(cls, cfg: UpstreamConfig) -> Deadlines:
        return cls(
            cfg.default_deadline_seconds, cfg.max_deadline_seconds, cfg.deadline_margin_seconds
        )

    def absolute(self, remaining: float | None, now: float) -> float:
        # grpc reports no deadline as None (passing it on as a timeout would expire at once,
        # grpc/grpc#26236), and absurdly far deadlines are capped.
        budget = self.default if remaining is None else min(remaining, self.maximum)
        return now + budget - self.margin


def method_handlers(
    operations: Iterable[Operation],
    pipeline_for: Callable[[Operation], Handler],
    deadlines: Deadlines,
) -> dict[str, dict[str, grpc.RpcMethodHandler[Any, Any]]]:
    """Service name -> {method name -> handler}, ready for `add_registered_method_handlers`."""
    services: dict[str, dict[str, grpc.RpcMethodHandler[Any, Any]]] = defaultdict(dict)
    for op in operations:
        services[op.service][op.name] = grpc.unary_unary_rpc_method_handler(
            _endpoint(op, pipeline_for(op), deadlines),
            request_deserializer=request_parser(op),
            response_serializer=op.response.SerializeToString,
        )
    return dict(services)


Context = grpc.aio.ServicerContext[Any, Any]


def _endpoint(
    op: Operation, pipeline: Handler, deadlines: Deadlines
) -> Callable[[Message, Context], Awaitable[Message]]:
    recorded = metrics.request_metrics(op.name)
    ok = recorded.code(grpc.StatusCode.OK)

    async def endpoint(request: Message, context: Context) -> Message:
        start = time.perf_counter()
        recorded.in_flight.inc()
        try:
            now = asyncio.get_running_loop().time()
            call = Call(
                op,
                request,
                deadlines.absolute(context.time_remaining(), now),
                _metadata(context),
            )
            response = await pipeline(call)
            if call.reply_metadata:
                context.set_trailing_metadata(tuple(call.reply_metadata))
        except GatewayError as error:
            recorded.code(error.code).inc()
            _log_error(op, error, context)
            await context.abort(error.code, error.message, error.trailing_metadata())
            raise  # abort() raises; this line only tells readers and mypy so
        except asyncio.CancelledError:
            recorded.code(grpc.StatusCode.CANCELLED).inc()
            raise
        except Exception:
            recorded.code(grpc.StatusCode.INTERNAL).inc()
            log.exception("unexpected failure", extra={"method": op.name})
            await context.abort(grpc.StatusCode.INTERNAL, "internal error")
            raise
        finally:
            recorded.in_flight.dec()
            recorded.latency.observe(time.perf_counter() - start)
        ok.inc()
        return response

    return endpoint


def _metadata(context: Context) -> dict[str, str]:
    return {
        key: value for key, value in (context.invocation_metadata() or ()) if isinstance(value, str)
    }


#: Deliberate sheds: counted in metrics; a warning each would flood the log under overload.
_QUIET_REASONS = frozenset({"RATE_LIMITED", "CIRCUIT_OPEN"})


def _log_error(op: Operation, error: GatewayError, context: Context) -> None:
    log.log(
        logging.DEBUG if error.reason in _QUIET_REASONS else logging.WARNING,
        "rpc failed",
        extra={
            "method": op.name,
            "code": error.code.name,
            "reason": error.reason,
            "detail": error.message,
            "request_id": _metadata(context).get("x-request-id"),
            "aws_request_id": error.metadata.get("awsRequestId"),
        },
    )
