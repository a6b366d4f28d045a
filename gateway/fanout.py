"""The mechanics of the two fan-out shapes: a batch's bounded fan-out, a stream's flow control.

Both run entries through a caller-supplied `run` (the edge's entry runner, which drives one
call through the operation's pipeline and never raises but for cancellation), so neither
knows anything about stages, statuses or messages:

- `fan_out`: at most `limit` entries of one batch at once, each result stored at its own
  index (request order). Workers pull the next index as they finish, so entries answered
  without suspending (cache hits) run back to back in one worker, with no task per entry.
- `Flow`: a stream's entries, at most `limit` read and not yet written. The reader takes a
  slot per entry (and one before it reads a message) and the writer gives it back once the
  result is written to the transport; when the client stops reading, `write` blocks, no
  slot comes back and the reader stops reading, so the client's own flow control holds the
  rest of its requests and the gateway's memory stays bounded by `limit` entries (plus the
  rest of the one message being admitted).

Cancellation (the client went away) cancels the workers, and with them each entry's call:
the coalescing and merging stages abandon upstream work nobody else shares. CancelledError
is always re-raised (grpc/grpc#43360: a handler that swallows it leaks).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from gateway import metrics

T = TypeVar("T")
R = TypeVar("R")


async def fan_out(
    items: Sequence[T], run: Callable[[T], Awaitable[R]], limit: int
) -> list[R | None]:
    """`run` over every item, at most `limit` at once; results in item order."""
    results: list[R | None] = [None] * len(items)
    pending = iter(enumerate(items))

    async def worker() -> None:
        for index, item in pending:
            results[index] = await run(item)

    workers = min(limit, len(items))
    if workers <= 1:
        await worker()
        return results
    async with asyncio.TaskGroup() as group:
        for _ in range(workers):
            group.create_task(worker())
    return results


#: The most results one stream message carries (the writer packs what completed meanwhile).
MAX_RESULTS_PER_WRITE = 1000


class Flow(Generic[T, R]):
    """One stream's entries: read (bounded), run concurrently, written as they complete.

    `read` returns the entries of the next message (or None at half-close); `write` sends
    the results that completed since the previous write, in one message: while a write is
    in flight results accumulate, so a busy stream packs many results per message (a stream
    message costs grpc.aio about what five cache hits cost) and an idle one answers each
    result at once. Plain deques and one future per sleeper rather than asyncio.Queue and
    Semaphore: a cache-hit entry costs a few microseconds, and so did their per-item work.
    """

    def __init__(
        self,
        read: Callable[[], Awaitable[Sequence[T] | None]],
        run: Callable[[T], Awaitable[R]],
        write: Callable[[list[R]], Awaitable[None]],
        limit: int,
        recorded: metrics.StreamMetrics,
    ) -> None:
        self._read = read
        self._run = run
        self._write = write
        self._limit = limit
        self._recorded = recorded
        #: Entries that may still be read: `limit` less those read and not yet written.
        self._free = limit
        self._slot_waiter: asyncio.Future[None] | None = None
        self._todo: deque[T] = deque()
        self._idle: deque[asyncio.Future[None]] = deque()
        self._done: list[R] = []
        self._done_waiter: asyncio.Future[None] | None = None
        self._workers = 0
        #: Workers woken or started that have not looked at `_todo` yet.
        self._ready = 0
        self._group: asyncio.TaskGroup | None = None
        self._reading = True
        #: Entries read and not yet written (some may still wait for a slot).
        self._in_flight = 0
        #: Resolved when the write in flight (if any) returns.
        self._writing: asyncio.Future[None] | None = None
        #: A read failed: no write starts any more.
        self._failed = False

    async def run(self) -> None:
        """Until the client half-closes and every entry read is written; raises what a read
        or a write raises (the stream then ends with that error)."""
        recorded, todo, idle = self._recorded, self._todo, self._idle
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                writer = group.create_task(self._writer())
                while True:
                    await self._take_slot()  # read only with room for an entry
                    try:
                        items = await self._read()
                    except Exception:
                        await self._stop_writing()
                        raise
                    if not items:
                        self._free += 1
                        if items is None:
                            break
                        continue
                    # Counted per message: a prometheus child takes a lock.
                    self._in_flight += len(items)
                    recorded.in_flight.inc(len(items))
                    recorded.per_stream.observe(self._in_flight)
                    for index, item in enumerate(items):
                        if index:
                            await self._take_slot()
                        todo.append(item)
                        if self._ready == 0:
                            self._summon()
                # Half-closed: the workers finish what was read, then the writer drains.
                self._reading = False
                while idle:
                    self._ready += 1
                    _wake(idle.popleft())
                if self._workers == 0:
                    self._wake_writer()
                await writer
        except BaseExceptionGroup as group_error:
            # One cause is the story: a failed read or write, or cancellation.
            cancelled = group_error.subgroup(asyncio.CancelledError)
            if cancelled is not None:
                raise asyncio.CancelledError() from group_error
            raise group_error.exceptions[0] from None
        finally:
            recorded.in_flight.dec(self._in_flight)  # what a cancelled stream left unanswered

    async def _stop_writing(self) -> None:
        """Let the write in flight return before a failed read ends the stream. Cancelled
        mid-write, grpc's core still holds the write (and, on the first, the initial
        metadata): the error status sent next collides with it and the caller gets a bare
        INTERNAL (GRPC_CALL_ERROR_TOO_MANY_OPERATIONS) instead of the read's error."""
        self._failed = True
        while self._writing is not None:
            await asyncio.shield(self._writing)

    async def _take_slot(self) -> None:
        if self._free > 0:
            self._free -= 1
            return
        # The client is not reading (or entries are slow): this is the backpressure.
        start = time.perf_counter()
        loop = asyncio.get_running_loop()
        while self._free == 0:
            self._slot_waiter = loop.create_future()
            await self._slot_waiter
        self._free -= 1
        self._recorded.backpressure.observe(time.perf_counter() - start)

    def _summon(self) -> None:
        """One more worker to look at `_todo`: an idle one, else a new one (up to `limit`).

        Only one is summoned at a time, and a worker that takes an entry and leaves others
        behind summons the next: entries answered without suspending (cache hits) are run
        back to back by one worker, and concurrency grows one worker per entry that waits."""
        if self._idle:
            self._ready += 1
            _wake(self._idle.popleft())
        elif self._workers < self._limit and self._group is not None:
            self._ready += 1
            self._workers += 1
            self._group.create_task(self._worker())

    async def _worker(self) -> None:
        todo, idle, done, run = self._todo, self._idle, self._done, self._run
        loop = asyncio.get_running_loop()
        self._ready -= 1
        while True:
            while not todo and self._reading:
                sleeping = loop.create_future()
                idle.append(sleeping)
                await sleeping
                self._ready -= 1
            if not todo:
                break  # half-closed and nothing left
            item = todo.popleft()
            if todo and self._ready == 0:
                self._summon()
            done.append(await run(item))
            self._wake_writer()
        self._workers -= 1
        if self._workers == 0:
            self._wake_writer()

    def _wake_writer(self) -> None:
        waiter = self._done_waiter
        if waiter is not None:
            self._done_waiter = None
            _wake(waiter)

    async def _writer(self) -> None:
        done, in_flight = self._done, self._recorded.in_flight
        loop = asyncio.get_running_loop()
        while True:
            if not done:
                if not self._reading and self._workers == 0:
                    return  # half-closed and every result written
                self._done_waiter = loop.create_future()
                await self._done_waiter
                continue
            if self._failed:
                return
            results = done[:MAX_RESULTS_PER_WRITE]
            del done[:MAX_RESULTS_PER_WRITE]
            writing = self._writing = loop.create_future()
            try:
                await self._write(results)
            finally:
                self._writing = None
                _wake(writing)
            count = len(results)
            self._in_flight -= count
            in_flight.dec(count)
            self._free += count
            waiter = self._slot_waiter
            if waiter is not None:
                self._slot_waiter = None
                _wake(waiter)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
