"""The terminal handler: one upstream call through the long-lived aiobotocore client."""

from __future__ import annotations

import asyncio
from typing import Any

from google.protobuf.message import Message

from gateway import metrics
from gateway.errors import DeadlineExceeded, GatewayError
from gateway.operations import Operation
from gateway.pipeline.call import Call, Handler
from gateway.upstream.errors import from_exception
from gateway.upstream.mapping import from_aws


class Upstream:
    """Builds, per operation, the handler that calls AWS under the call's deadline."""

    def __init__(self, clients: dict[str, Any]) -> None:
        self._clients = clients

    def handler(self, op: Operation) -> Handler:
        method = getattr(self._clients[op.upstream], op.client_method)
        service, response_type = op.upstream, op.response
        outcomes = metrics.upstream_outcomes(op.name)

        async def call_upstream(call: Call) -> Message:
            timeout = call.remaining()
            if timeout <= 0:
                raise _expired(service)
            try:
                # Bounds the wait for a pooled connection too; cancellation (the caller went
                # away) propagates into aiohttp, which abandons the HTTP request.
                async with asyncio.timeout(timeout):
                    raw = await method(**call.params)
            except asyncio.CancelledError:
                outcomes.cancelled.inc()
                raise
            except Exception as exc:
                error = from_exception(exc, service, idempotent=op.idempotent)
                outcomes.for_error(error).inc()
                raise error from None
            outcomes.ok.inc()
            return from_aws(response_type, raw)

        return call_upstream


def _expired(service: str) -> GatewayError:
    return DeadlineExceeded(
        "the call's deadline passed before the upstream call",
        reason="DEADLINE_EXCEEDED",
        metadata={"service": service},
    )
