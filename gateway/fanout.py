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


_DONE = object()

#: The most results one stream message carries (the writer packs what completed meanwhile).
MAX_RESULTS_PER_WRITE = 1000


class Flow(Generic[T, R]):
    """One stream's entries: read (bounded), run concurrently, written as they complete.

    `read` returns the entries of the next message (or None at half-close); `write` sends
    the results that completed since the previous write, in one message: while a write is
    in flight results accumulate, so a busy stream packs many results per message (a stream
    message costs grpc.aio about what five cache hits cost) and an idle one answers each
    result at once.
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
        self._slots = asyncio.Semaphore(limit)
        self._todo: asyncio.Queue[object] = asyncio.Queue()
        self._done: asyncio.Queue[object] = asyncio.Queue()
        self._workers = 0
        self._idle = 0
        #: Entries read and not yet written (some may still wait for a slot).
        self._in_flight = 0

    async def run(self) -> None:
        """Until the client half-closes and every entry read is written; raises what a read
        or a write raises (the stream then ends with that error)."""
        recorded, todo = self._recorded, self._todo
        try:
            async with asyncio.TaskGroup() as group:
                writer = group.create_task(self._writer())
                while True:
                    await self._take_slot()  # read only with room for an entry
                    items = await self._read()
                    if items is None:
                        self._slots.release()
                        break
                    if not items:
                        self._slots.release()
                        continue
                    # Counted per message: a prometheus child takes a lock.
                    self._in_flight += len(items)
                    recorded.in_flight.inc(len(items))
                    recorded.per_stream.observe(self._in_flight)
                    for index, item in enumerate(items):
                        if index:
                            await self._take_slot()
                        todo.put_nowait(item)
                        if todo.qsize() > self._idle and self._workers < self._limit:
                            self._workers += 1
                            group.create_task(self._worker())
                # Half-closed: the workers finish what was read, then the writer drains.
                if self._workers == 0:
                    self._done.put_nowait(_DONE)
                for _ in range(self._workers):
                    todo.put_nowait(_DONE)
                await writer
        except BaseExceptionGroup as group_error:
            # One cause is the story: a failed read or write, or cancellation.
            cancelled = group_error.subgroup(asyncio.CancelledError)
            if cancelled is not None:
                raise asyncio.CancelledError() from group_error
            raise group_error.exceptions[0] from None
        finally:
            recorded.in_flight.dec(self._in_flight)  # what a cancelled stream left unanswered

    async def _take_slot(self) -> None:
        if not self._slots.locked():
            await self._slots.acquire()
            return
        # The client is not reading (or entries are slow): this is the backpressure.
        start = time.perf_counter()
        await self._slots.acquire()
        self._recorded.backpressure.observe(time.perf_counter() - start)

    async def _worker(self) -> None:
        todo, done = self._todo, self._done
        while True:
            self._idle += 1
            item = await todo.get()
            self._idle -= 1
            if item is _DONE:
                break
            done.put_nowait(await self._run(item))  # type: ignore[arg-type]
        self._workers -= 1
        if self._workers == 0:
            done.put_nowait(_DONE)

    async def _writer(self) -> None:
        done, slots, in_flight = self._done, self._slots, self._recorded.in_flight
        finished = False
        while not finished:
            results: list[R] = []
            item = await done.get()
            while True:
                if item is _DONE:
                    finished = True  # the last worker's: nothing follows
                    break
                results.append(item)  # type: ignore[arg-type]
                if done.empty() or len(results) >= MAX_RESULTS_PER_WRITE:
                    break
                item = done.get_nowait()
            if results:
                await self._write(results)
                self._in_flight -= len(results)
                in_flight.dec(len(results))
                for _ in results:
                    slots.release()
