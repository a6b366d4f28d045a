"""Coalesce stage: identical requests in flight share one upstream call (single flight).

Applies to every idempotent operation (the row's `idempotent`), keyed like the cache (the
canonical request, `gateway.pipeline.cachekey`). The first caller starts the shared call
as its own task; every caller, the first included, then waits for it:

- each waits at most until its own deadline, and a caller that is cancelled or times out
  leaves without disturbing the others;
- the shared call lives while any caller still waits, and is cancelled (abandoning the
  HTTP request) when the last one has gone. Its deadline is the latest of its callers';
- its answer, or its error, reaches every caller. A caller whose deadline is later than
  the one the shared call started with and that got DEADLINE_EXCEEDED from it tries again;
- the flight stays joinable until the first caller has resumed with the answer, so a
  request arriving between "upstream answered" and "cache stored" joins it instead of
  calling again (with the cache in front, the first caller stores before anyone else
  runs).
"""

from __future__ import annotations

import asyncio

from google.protobuf.message import Message

from gateway import metrics
from gateway.cache_config import CoalesceConfig
from gateway.errors import DeadlineExceeded
from gateway.operations import Operation
from gateway.pipeline import cachecontrol as cc
from gateway.pipeline.cachekey import request_key
from gateway.pipeline.call import Call, Handler

_COALESCED = (cc.COALESCED, "true")


class _Flight:
    __slots__ = ("call", "started_deadline", "task", "waiters")

    def __init__(self, call: Call, task: asyncio.Future[Message]) -> None:
        self.call = call
        self.started_deadline = call.deadline
        self.task = task
        self.waiters = 0


class Coalesce:
    """Stage: one upstream call per distinct request in flight."""

    def __init__(self, cfg: CoalesceConfig) -> None:
        self.cfg = cfg

    def wrap(self, op: Operation, inner: Handler) -> Handler:
        if not self.cfg.enabled or not op.idempotent:
            return inner
        key_of = request_key(op)
        flights: dict[bytes, _Flight] = {}
        counted = metrics.cache_metrics(op.name)

        async def coalesced(call: Call) -> Message:
            key = key_of(call.request)
            while True:
                flight = flights.get(key)
                joined = flight is not None
                if flight is None:
                    shared = call.derive()
                    task = asyncio.ensure_future(inner(shared))
                    flight = flights[key] = _Flight(shared, task)
                else:
                    if call.deadline > flight.call.deadline:
                        flight.call.deadline = call.deadline
                    counted.coalesced += 1
                flight.waiters += 1
                try:
                    response = await wait_for_shared(flight.task, call.deadline, op.upstream)
                except DeadlineExceeded:
                    loop_time = asyncio.get_running_loop().time()
                    if call.deadline > flight.started_deadline and call.deadline > loop_time:
                        continue  # the shared call ran out of *its* time, not ours
                    raise
                finally:
                    flight.waiters -= 1
                    if flight.waiters == 0 and not flight.task.done():
                        flight.task.cancel()  # everyone left: abandon the upstream call
                    if (flight.waiters == 0 or flight.task.done()) and flights.get(key) is flight:
                        del flights[key]
                reply = call.reply_metadata
                reply += flight.call.reply_metadata
                if joined:
                    reply.append(_COALESCED)
                return response

        return coalesced


async def wait_for_shared(task: asyncio.Future[Message], deadline: float, service: str) -> Message:
    """Wait for a shared call until `deadline` (loop time); leaving never cancels it.

    Running out of time here is the upstream being slower than this caller's deadline, so
    the caller sees the same reason as when its own call timed out (UPSTREAM_TIMEOUT).
    """
    try:
        async with asyncio.timeout_at(deadline):
            return await asyncio.shield(task)
    except TimeoutError:
        if task.done() and not task.cancelled() and task.exception() is not None:
            # The shared call ended at the same instant (same deadline): its own verdict,
            # e.g. "deadline passed before the upstream call", is the accurate one.
            raise task.exception() from None  # type: ignore[misc]
        raise DeadlineExceeded(
            f"{service} did not answer the shared call within this call's deadline",
            reason="UPSTREAM_TIMEOUT",
            metadata={"service": service},
        ) from None
