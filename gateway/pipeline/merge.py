"""Merge stage: compatible requests within a short window share one exact upstream call.

Requests that are equal but for the row's `MergeRule.member` (keyed by the cache key with
that member cleared) and arrive within `[merge] window_ms` of the first form a batch; the
batch makes one upstream call and splits its answer back, exactly:

- UNION (GetPersonalizedRanking, `inputList`): one call over the union of the callers'
  items (first-seen order, at most 500, or 50 with metadataColumns; a request that would
  overflow the batch flushes it and starts the next). Scores are a softmax over the input
  list, so a caller's scores are the union's scores renormalised over its own items:
  `s_i / sum(s_j for j in mine)` is exactly `exp(l_i) / sum(exp(l_j) for j in mine)`.
  Each caller gets only its own items, in the upstream's order; among equal scores (and
  for unscored items the model does not know, which AWS appends last) in its own input
  order, as a direct call would have ordered them.
- LARGEST (GetRecommendations, `numResults`): one call with the largest count; each
  caller gets the first numResults items (recommendations are sorted by score, filters
  remove items without changing the others). Requests with promotions never merge (a
  promotion's share of slots depends on numResults), nor does an explicit numResults of 0.

A batch is sent when its window ends, or at once when a member's deadline would not leave
a window's worth of time after it: the window never pushes a request past its deadline.
Every member waits at most until its own deadline; the merged call lives while any member
waits. The merged answer's recommendationId is the merged call's (see README, "Caching").
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

from google.protobuf.message import Message

from gateway import metrics
from gateway.cache_config import MergeConfig
from gateway.operations import MergeKind, MergeRule, Operation
from gateway.pipeline import cachecontrol as cc
from gateway.pipeline.cachekey import proto_field, request_key
from gateway.pipeline.call import Call, Handler
from gateway.pipeline.coalesce import wait_for_shared

#: The members of a ranked item the UNION split reads (PredictedItem in the protos).
ITEM_ID = "itemId"
SCORE = "score"


class _Batch:
    __slots__ = ("calls", "done", "flush_at", "items", "merged", "task", "timer", "waiters")

    def __init__(self, loop: asyncio.AbstractEventLoop, flush_at: float) -> None:
        self.calls: list[Call] = []
        #: UNION: the union of the members' items, in first-seen order.
        self.items: dict[str, None] = {}
        self.flush_at = flush_at
        self.timer: asyncio.TimerHandle | None = None
        self.task: asyncio.Future[Message] | None = None
        self.merged: Call | None = None
        self.done: asyncio.Future[Message] = loop.create_future()
        self.waiters = 0


class Merge:
    """Stage: batch compatible requests per the row's `CachePolicy.merge` rule."""

    def __init__(self, cfg: MergeConfig) -> None:
        self.window = cfg.window_ms / 1000.0

    def wrap(self, op: Operation, inner: Handler) -> Handler:
        rule = op.cache.merge if op.cache is not None else None
        if rule is None or self.window <= 0 or not op.idempotent:
            return inner
        return _Merger(op, rule, inner, self.window).handle


class _Merger:
    def __init__(self, op: Operation, rule: MergeRule, inner: Handler, window: float) -> None:
        self.op = op
        self.rule = rule
        self.inner = inner
        self.window = window
        request = op.request.DESCRIPTOR
        self.field = proto_field(request, rule.member)
        self.key_of = request_key(op, without=(rule.member,))
        self.unless = [proto_field(request, m) for m in rule.unless]
        self.small: tuple[str, int] | None = None
        if rule.max_items_when is not None:
            member, limit = rule.max_items_when
            self.small = (proto_field(request, member).name, limit)
        result = proto_field(op.response.DESCRIPTOR, rule.result_list)
        self.result = result.name
        if rule.kind is MergeKind.UNION:
            assert result.message_type is not None
            self.item_id = proto_field(result.message_type, ITEM_ID).name
            self.score = proto_field(result.message_type, SCORE).name
        self.default_count = 0
        if rule.kind is MergeKind.LARGEST:
            defaults = dict(op.cache.defaults) if op.cache is not None else {}
            self.default_count = int(defaults[rule.member])
        self.batches: dict[bytes, _Batch] = {}
        self.metrics = metrics.cache_metrics(op.name)
        self.split: Callable[[Message, Message], Message] = (
            self._split_union if rule.kind is MergeKind.UNION else self._split_largest
        )

    # -- admission to a batch ------------------------------------------------------------

    def _mergeable(self, request: Message) -> bool:
        for fd in self.unless:
            if fd.is_repeated:
                if len(getattr(request, fd.name)):
                    return False
            elif request.HasField(fd.name):
                return False
        if self.rule.kind is MergeKind.LARGEST:
            name = self.field.name
            if request.HasField(name) and getattr(request, name) == 0:
                return False
        return True

    def _limit(self, request: Message) -> int:
        if self.small is not None and len(getattr(request, self.small[0])):
            return self.small[1]
        return self.rule.max_items

    def _fits(self, batch: _Batch, request: Message) -> bool:
        if self.rule.kind is not MergeKind.UNION:
            return True
        items = batch.items
        new = sum(
            1 for item in dict.fromkeys(getattr(request, self.field.name)) if item not in items
        )
        return len(items) + new <= self._limit(request)

    async def handle(self, call: Call) -> Message:
        request = call.request
        if not self._mergeable(request):
            return await self.inner(call)
        key = self.key_of(request)
        loop = asyncio.get_running_loop()
        batch = self.batches.get(key)
        if batch is not None and not self._fits(batch, request):
            self._flush(key, batch)
            batch = None
        if batch is None:
            batch = self.batches[key] = _Batch(loop, loop.time() + self.window)
            batch.timer = loop.call_at(batch.flush_at, self._flush, key, batch)
        batch.calls.append(call)
        if self.rule.kind is MergeKind.UNION:
            batch.items.update(dict.fromkeys(getattr(request, self.field.name)))
        if call.deadline <= batch.flush_at + self.window:
            self._flush(key, batch)  # waiting out the window would eat its remaining time
        batch.waiters += 1
        try:
            response = await wait_for_shared(batch.done, call.deadline, self.op.upstream)
        finally:
            batch.waiters -= 1
            if batch.waiters == 0 and not batch.done.done():
                self._abandon(key, batch)
        merged = batch.merged
        if merged is None or merged is call:
            return response  # a batch of one: this call went upstream itself
        reply = call.reply_metadata
        reply += merged.reply_metadata
        reply.append((cc.MERGED, str(len(batch.calls))))
        return self.split(response, request)

    # -- sending -------------------------------------------------------------------------

    def _flush(self, key: bytes, batch: _Batch) -> None:
        if batch.task is not None:
            return
        if batch.timer is not None:
            batch.timer.cancel()
        if self.batches.get(key) is batch:
            del self.batches[key]
        calls = batch.calls
        if len(calls) == 1:
            merged = calls[0]
        else:
            merged = calls[0].derive(
                request=self._merged_request(batch), deadline=max(c.deadline for c in calls)
            )
            self.metrics.merged += len(calls)
            self.metrics.merged_calls += 1
        batch.merged = merged
        task = batch.task = asyncio.ensure_future(self.inner(merged))
        done = batch.done

        def settle(finished: asyncio.Future[Message]) -> None:
            if done.done():
                return
            if finished.cancelled():
                done.cancel()
                return
            error = finished.exception()
            if error is not None:
                done.set_exception(error)
                done.exception()  # retrieved: members that left need not see it
            else:
                done.set_result(finished.result())

        task.add_done_callback(settle)

    def _abandon(self, key: bytes, batch: _Batch) -> None:
        """Every member left: stop the window or the merged call."""
        if batch.task is None:
            if batch.timer is not None:
                batch.timer.cancel()
            if self.batches.get(key) is batch:
                del self.batches[key]
        else:
            batch.task.cancel()
        batch.done.cancel()

    def _merged_request(self, batch: _Batch) -> Message:
        name = self.field.name
        if self.rule.kind is MergeKind.LARGEST:
            return max((c.request for c in batch.calls), key=self._count)
        merged = self.op.request()
        merged.CopyFrom(batch.calls[0].request)
        merged.ClearField(name)
        getattr(merged, name).extend(batch.items)
        return merged

    def _count(self, request: Message) -> int:
        name = self.field.name
        return int(getattr(request, name)) if request.HasField(name) else self.default_count

    # -- splitting the merged answer -----------------------------------------------------

    def _shell(self, response: Message) -> Message:
        out = self.op.response()
        out.CopyFrom(response)
        out.ClearField(self.result)
        return out

    def _split_largest(self, response: Message, request: Message) -> Message:
        items = getattr(response, self.result)
        count = self._count(request)
        if count >= len(items):
            return response
        out = self._shell(response)
        getattr(out, self.result).extend(items[:count])
        return out

    def _split_union(self, response: Message, request: Message) -> Message:
        position: dict[str, int] = {}
        for index, item in enumerate(getattr(request, self.field.name)):
            position.setdefault(item, index)
        item_id, score = self.item_id, self.score
        mine: list[tuple[Message, str, float]] = []
        for item in getattr(response, self.result):
            name = getattr(item, item_id)
            if name in position:
                mine.append((item, name, getattr(item, score)))
        total = math.fsum(value for _, _, value in mine)
        # Upstream order, with runs of equal scores in this caller's input order.
        ordered: list[tuple[int, int, Message, float]] = []
        run, last = -1, None
        for item, name, value in mine:
            if value != last:
                run, last = run + 1, value
            ordered.append((run, position[name], item, value))
        ordered.sort(key=lambda entry: (entry[0], entry[1]))
        out = self._shell(response)
        ranked = getattr(out, self.result)
        for _, _, item, value in ordered:
            copy = ranked.add()
            copy.CopyFrom(item)
            if total > 0 and item.HasField(score):
                setattr(copy, score, value / total)
        return out
