"""The terminal handler: one upstream call through the long-lived aiobotocore client.

Operations the fast path can send exactly (gateway/upstream/fastpath.py) skip botocore's
per-call machinery but still use the client's connection pool, endpoint and credentials.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from google.protobuf.message import Message

from gateway import metrics
from gateway.errors import DeadlineExceeded
from gateway.operations import Operation
from gateway.pipeline.call import Call, Handler
from gateway.upstream.errors import from_exception
from gateway.upstream.fastpath import fast_call
from gateway.upstream.mapping import from_aws

log = logging.getLogger(__name__)

#: Sends one call's AWS parameters, returns AWS's parsed answer.
Send = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class Upstream:
    """Builds, per operation, the handler that calls AWS under the call's deadline."""

    def __init__(self, clients: dict[str, Any], *, fast_path: bool = True) -> None:
        self._clients = clients
        self._fast_path = fast_path

    def sender(self, op: Operation) -> Send:
        client = self._clients[op.upstream]
        fast = fast_call(client, op.name) if self._fast_path else None
        if fast is not None:
            log.debug("fast path", extra={"operation": op.name})
            return fast
        method = getattr(client, op.client_method)

        def botocore_call(params: dict[str, Any]) -> Awaitable[dict[str, Any]]:
            return method(**params)  # type: ignore[no-any-return]

        return botocore_call

    def handler(self, op: Operation) -> Handler:
        send = self.sender(op)
        service, response_type = op.upstream, op.response
        outcomes = metrics.upstream_outcomes(op.name)

        async def call_upstream(call: Call) -> Message:
            timeout = call.remaining()
            if timeout <= 0:
                raise DeadlineExceeded.before_sending(service)
            try:
                # Bounds the wait for a pooled connection too; cancellation (the caller went
                # away) propagates into aiohttp, which abandons the HTTP request.
                async with asyncio.timeout(timeout):
                    raw = await send(call.params)
            except asyncio.CancelledError:
                outcomes.cancelled.inc()
                raise
            except Exception as exc:
                error = from_exception(exc, service, idempotent=op.idempotent)
                outcomes.for_error(error).inc()
                raise error from None  # an InternalError keeps exc for the edge's log
            outcomes.ok.inc()
            return from_aws(response_type, raw)

        return call_upstream
