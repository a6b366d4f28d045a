"""Admission stage: keep every upstream quota, shed early, let nothing wait past its deadline.

Every upstream *attempt* (the retry stage sits above this one) takes a token from:

- the bucket of its (operation, resource ARN) pair, e.g. GetRecommendations on one campaign
  (AWS: 500/s per campaign per API), and
- the bucket of each account-wide group its operation belongs to (AWS: 2500/s for
  GetRecommendations plus GetPersonalizedRanking per account and region).

Rates and bursts come from `[limits]`, else from the operation table's `Quota` (AWS's
documented defaults). A bucket is a GCRA (the "virtual scheduling" form of a token bucket):
one float of state, O(1) and allocation-free to check.

When no token is there, the call may wait, in a bounded queue per bucket with one lane per
priority (interactive before batch), but only if the predicted wait still leaves the call
enough of its deadline for the upstream call itself (the measured latency: mean plus four
mean deviations, RFC 6298 style, at least `min_latency_reserve_seconds`) and is within
`max_wait_seconds`, or within `standing_max_wait_seconds` once no call has found a token
at once for `standing_queue_seconds` (sustained overload rather than a burst: the CoDel
idea, as in adaptive request-queue timeouts). Otherwise it is rejected at once:
RESOURCE_EXHAUSTED, ErrorInfo RATE_LIMITED, RetryInfo (the predicted wait) and QuotaFailure
naming the bucket. A waiting
call that has not been admitted by its latest start (the rate dropped, or interactive calls
kept overtaking it) leaves the queue with the same error, before its deadline.

The outcome of each attempt feeds the bucket's adaptive rate (`gateway.pipeline.adaptive`):
an upstream throttle lowers it, time without one raises it back, never above the ceiling.
With Redis configured the buckets live there (`gateway.pipeline.global_limits`), shared by
every gateway process; without it, or while it is down, each process keeps its share.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import Iterator
from typing import Any

import grpc
from google.protobuf.message import Message
from google.rpc import error_details_pb2

from gateway import metrics
from gateway.errors import GatewayError, UpstreamError
from gateway.limits_config import Limit, LimitsConfig
from gateway.operations import QUOTA_GROUPS, Operation, Priority
from gateway.pipeline.adaptive import CubicRate
from gateway.pipeline.call import Call, Handler
from gateway.pipeline.global_limits import SharedBuckets

INTERACTIVE, BATCH = 0, 1
#: The lane of each priority; a call's comes from its context (the `mlgw-priority` metadata,
#: PRIORITY_METADATA, parsed at the edge), else from its operation's row.
_LANES = {Priority.INTERACTIVE: INTERACTIVE, Priority.BATCH: BATCH}

#: Why a call was not admitted (ErrorInfo metadata `cause`, metric label `reason`).
DEADLINE = "deadline"  # the predicted wait would not leave time for the upstream call
MAX_WAIT = "max_wait"  # the predicted wait is longer than max_wait_seconds
QUEUE_FULL = "queue_full"  # max_queue_length calls already wait for this bucket
DISPLACED = "displaced"  # a batch call gave its place in a full queue to an interactive one
EXPIRED = "expired"  # waited until its latest start without getting a token

_MESSAGES = {
    DEADLINE: "rate limit reached: no upstream token in time for the call's deadline",
    MAX_WAIT: "rate limit reached: the wait for an upstream token is too long",
    QUEUE_FULL: "rate limit reached: too many calls are waiting for this limit",
    DISPLACED: "rate limit reached: interactive calls took this batch call's place",
    EXPIRED: "rate limit reached: no upstream token was free before the call's deadline",
}


class RateLimited(GatewayError):
    """The gateway's own limiter turned the call away (the upstream never saw it)."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED

    def __init__(self, subject: str, cause: str, retry_after: float, rate: float) -> None:
        violation = error_details_pb2.QuotaFailure.Violation(
            subject=subject,
            description=f"upstream rate limit {subject}: {rate:.4g} calls per second now",
        )
        super().__init__(
            _MESSAGES[cause],
            reason="RATE_LIMITED",
            metadata={"limit": subject, "cause": cause},
            retry_after=retry_after,
            extra_details=[error_details_pb2.QuotaFailure(violations=[violation])],
        )
        self.cause = cause


class Latency:
    """An operation's upstream latency: smoothed mean and mean deviation (RFC 6298)."""

    __slots__ = ("dev", "floor", "mean")

    def __init__(self, initial: float, floor: float) -> None:
        self.mean = initial
        self.dev = initial / 2
        self.floor = floor

    def observe(self, seconds: float) -> None:
        error = seconds - self.mean
        self.mean += error / 8
        self.dev += (abs(error) - self.dev) / 4

    def reserve(self) -> float:
        """How much of a deadline to keep for one upstream call."""
        reserve = self.mean + 4 * self.dev
        return reserve if reserve > self.floor else self.floor


class Latencies:
    """One `Latency` per operation, shared by the admission and retry stages."""

    def __init__(self, initial: float, floor: float) -> None:
        self._initial = initial
        self._floor = floor
        self._by_op: dict[str, Latency] = {}

    def of(self, operation: str) -> Latency:
        found = self._by_op.get(operation)
        if found is None:
            found = self._by_op[operation] = Latency(self._initial, self._floor)
        return found


class Gcra:
    """A token bucket as GCRA: `tat` is when the bucket will be full again.

    `rate` tokens per second, `burst` tokens at most. Not thread-safe: one event loop.
    """

    __slots__ = ("burst", "interval", "tat")

    def __init__(self, rate: float, burst: float) -> None:
        self.interval = 1.0 / rate
        self.burst = burst
        self.tat = float("-inf")

    def tokens(self, now: float) -> float:
        debt = self.tat - now
        return self.burst if debt <= 0 else self.burst - debt / self.interval

    def take1(self, now: float) -> float:
        """Take one token: 0.0, or (none taken) the seconds until one is there."""
        tat = self.tat if self.tat > now else now
        slack = (self.burst - 1) * self.interval
        if tat - now <= slack + 1e-9:
            self.tat = tat + self.interval
            return 0.0
        return tat - now - slack

    def take(self, now: float, want: int) -> tuple[int, float]:
        """Take up to `want` tokens: (taken, seconds until the next one)."""
        tat = self.tat if self.tat > now else now
        available = int(self.burst - (tat - now) / self.interval + 1e-9)
        taken = min(want, available) if available > 0 else 0
        tat += taken * self.interval
        self.tat = tat
        return taken, max(0.0, tat - now - (self.burst - 1) * self.interval)

    def next_token(self, now: float) -> float:
        return max(0.0, self.tat - now - (self.burst - 1) * self.interval)

    def refund(self) -> None:
        self.tat -= self.interval

    def drain(self, now: float) -> None:
        """Spend every saved token: the next one comes one interval from now."""
        self.tat = max(self.tat, now + self.burst * self.interval)

    def set_rate(self, rate: float, burst: float, now: float) -> None:
        """Change rate and burst, keeping the tokens there are (at most the new burst)."""
        tokens = min(self.tokens(now), burst)
        self.interval = 1.0 / rate
        self.burst = burst
        self.tat = now + (burst - tokens) * self.interval


class Lane:
    """The calls waiting in one lane, by owner, served round robin (FIFO within an owner).

    The owner is the RPC a call came from (its `Context`): a batch's or a stream's entries
    share one, so two batches waiting for the same tokens take turns instead of the one that
    queued first taking them all (fair queuing in the spirit of DRR, one call a turn). The
    interactive lane has a single owner: plain FIFO.
    """

    __slots__ = ("_owners", "_size")

    def __init__(self) -> None:
        self._owners: OrderedDict[object, deque[asyncio.Future[bool]]] = OrderedDict()
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def append(self, future: asyncio.Future[bool], owner: object) -> None:
        queue = self._owners.get(owner)
        if queue is None:
            queue = self._owners[owner] = deque()
        queue.append(future)
        self._size += 1

    def popleft(self) -> asyncio.Future[bool]:
        """The next owner's oldest call; that owner's turn then goes to the back."""
        owner, queue = next(iter(self._owners.items()))
        future = queue.popleft()
        if queue:
            self._owners.move_to_end(owner)
        else:
            del self._owners[owner]
        self._size -= 1
        return future

    def pop(self) -> asyncio.Future[bool]:
        """The newest call of the owner with the most waiting (who gives up a place); among
        equals the one nearest the back (single-call owners: the newest call)."""
        owner, queue = None, deque[asyncio.Future[bool]]()
        for candidate, waiting in self._owners.items():
            if len(waiting) >= len(queue):
                owner, queue = candidate, waiting
        future = queue.pop()
        if not queue:
            del self._owners[owner]
        self._size -= 1
        return future

    def ahead(self, owner: object) -> int:
        """Calls served before a new call of `owner`: its own queue, and from each other
        owner at most one more than that (its turns come first)."""
        mine = len(self._owners.get(owner, ()))
        return mine + sum(min(len(q), mine + 1) for o, q in self._owners.items() if o != owner)

    def prune(self) -> None:
        """Forget the futures of calls that left."""
        for owner in list(self._owners):
            live = deque(f for f in self._owners[owner] if not f.done())
            self._size -= len(self._owners[owner]) - len(live)
            if live:
                self._owners[owner] = live
            else:
                del self._owners[owner]


class Bucket:
    """One limit: its rate (adaptive or fixed), its GCRA, its waiting calls in two lanes."""

    __slots__ = (
        "__weakref__", "_dispatcher", "_divisor", "_lanes", "_last_free", "_local",
        "_max_burst", "_max_queue", "_max_wait", "_remote", "_remote_burst",
        "_remote_interval", "_standing", "_waiting", "ceiling", "control", "key", "subject",
    )  # fmt: skip

    def __init__(
        self,
        subject: str,
        key: str,
        limit: Limit,
        *,
        adaptive: bool,
        divisor: int,
        max_queue: int,
        max_wait: float,
        remote: SharedBuckets | None,
        now: float,
        standing: tuple[float, float] = (float("inf"), float("inf")),
    ) -> None:
        self.subject = subject
        self.key = key
        self.ceiling = limit.rate
        self._max_burst = limit.burst
        self.control = CubicRate(limit.rate, now) if adaptive else None
        self._divisor = divisor
        self._max_queue = max_queue
        self._max_wait = max_wait
        #: (seconds without a free token after which overload is standing, the wait bound)
        self._standing = standing
        #: When a call last found a token at once (CoDel: no standing queue since then).
        self._last_free = now
        self._remote = remote
        self._local = Gcra(limit.rate / divisor, max(1.0, limit.burst / divisor))
        self._remote_interval = 1.0 / limit.rate
        self._remote_burst = limit.burst
        self._lanes = (Lane(), Lane())
        self._waiting = [0, 0]
        self._dispatcher: asyncio.Task[None] | None = None

    # -- state -------------------------------------------------------------------------

    @property
    def rate(self) -> float:
        return self.control.rate if self.control is not None else self.ceiling

    @property
    def epoch(self) -> int:
        return self.control.epoch if self.control is not None else 0

    @property
    def waiting(self) -> int:
        return self._waiting[0] + self._waiting[1]

    def idle(self) -> bool:
        return self.waiting == 0 and self._dispatcher is None

    def tokens(self, now: float) -> float:
        """Tokens this process could take now from its local share (for metrics)."""
        return max(0.0, self._local.tokens(now))

    def _shared(self, now: float) -> bool:
        return self._remote is not None and self._remote.usable(now)

    def _interval(self) -> float:
        """Seconds per token of this process's share (queue wait predictions)."""
        return self._divisor / self.rate

    # -- admission ---------------------------------------------------------------------

    def take_now(self, now: float) -> bool:
        """The fast path: a local token taken at once, when nobody is waiting."""
        waiting = self._waiting
        if waiting[0] or waiting[1] or (self._remote is not None and self._shared(now)):
            return False
        if self._local.take1(now) > 0.0:
            return False
        self._last_free = now
        if self.control is not None:
            self._sent(now)
        return True

    async def acquire(self, lane: int, latest: float, now: float, owner: object = None) -> None:
        """Admit the call by `latest` (loop time: its deadline less the latency reserve), or
        raise RateLimited: at once when the predicted wait does not fit, else when `latest`
        (or `max_wait`) passes while it waits. `owner` (batch lane): the RPC it belongs to,
        whose calls take turns with other owners' (`Lane`); None: a call of its own."""
        remote = self._remote
        queued = self._waiting[0] + self._waiting[1]
        if queued:
            wait = self._local.next_token(now) if not self._shared(now) else self._interval()
        elif remote is not None and self._shared(now):
            if remote.has_capacity():
                taken, wait = await self._take(1, now)
                if taken:
                    self._last_free = now
                    self._sent(now)
                    return
                now = asyncio.get_running_loop().time()
                queued = self._waiting[0] + self._waiting[1]  # others queued meanwhile
            else:
                wait = self._interval()
        else:
            wait = self._local.take1(now)
            if wait == 0.0:
                self._last_free = now
                self._sent(now)
                return
        owner = _own(owner)
        predicted = wait + self._ahead(lane, owner) * self._interval()
        if predicted > latest - now:
            raise self.rejected(DEADLINE, predicted)
        max_wait = self._max_wait
        if now - self._last_free > self._standing[0]:
            # No call has found a token at once for a while: sustained overload, not a
            # burst. Waiting long then only makes every admitted call finish at the edge of
            # its deadline (CoDel's insight), so waits are kept short, the excess shed.
            max_wait = min(max_wait, self._standing[1])
        if predicted > max_wait:
            raise self.rejected(MAX_WAIT, predicted)
        if queued >= self._max_queue and (lane == BATCH or not self._displace_batch()):
            raise self.rejected(QUEUE_FULL, predicted)
        await self._wait(lane, min(latest, now + max_wait), predicted, owner)

    def _ahead(self, lane: int, owner: object) -> int:
        if lane == INTERACTIVE:
            return self._waiting[INTERACTIVE]
        return self._waiting[INTERACTIVE] + self._lanes[BATCH].ahead(owner)

    def hopeless(
        self, lane: int, latest: float, now: float, owner: object = None
    ) -> RateLimited | None:
        """A peek, taking nothing: the rejection `acquire` would answer at once (the wait
        for a token cannot fit the deadline, or a standing queue's bound), else None."""
        waiting = self._waiting
        queued = waiting[0] + waiting[1]
        interval = self._interval()
        if self._shared(now):
            if not queued:
                return None  # only Redis knows
            wait = interval
        else:
            wait = self._local.next_token(now)
        predicted = wait + self._ahead(lane, _own(owner)) * interval
        if predicted <= 0.0:
            return None
        if predicted > latest - now:
            return self.rejected(DEADLINE, predicted)
        standing = now - self._last_free > self._standing[0]
        if predicted > (min(self._max_wait, self._standing[1]) if standing else self._max_wait):
            return self.rejected(MAX_WAIT, predicted)
        return None

    async def _wait(self, lane: int, latest: float, predicted: float, owner: object) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        queue = self._lanes[lane]
        if len(queue) > 2 * self._max_queue:
            queue.prune()
        queue.append(future, owner if lane == BATCH else None)
        self._waiting[lane] += 1
        if self._dispatcher is None:
            self._dispatcher = loop.create_task(self._dispatch())
        try:
            async with asyncio.timeout_at(latest):
                admitted = await future
        except BaseException as exc:
            if future.done() and not future.cancelled():
                if future.result():  # admitted at the very moment it gave up: give it back
                    self._give_back()
            else:
                future.cancel()
                self._waiting[lane] -= 1
            if isinstance(exc, TimeoutError):
                raise self.rejected(EXPIRED, self._interval() * (self.waiting + 1)) from None
            raise
        if not admitted:
            raise self.rejected(DISPLACED, predicted)
        self._sent(loop.time())

    def _displace_batch(self) -> bool:
        queue = self._lanes[BATCH]
        while queue:
            future = queue.pop()  # the newest batch call gives up its place
            if not future.done():
                future.set_result(False)
                self._waiting[BATCH] -= 1
                return True
        return False

    def _grant(self) -> bool:
        for lane in (INTERACTIVE, BATCH):
            queue = self._lanes[lane]
            while queue:
                future = queue.popleft()
                if not future.done():
                    future.set_result(True)
                    self._waiting[lane] -= 1
                    return True
        return False

    async def _dispatch(self) -> None:
        """Hands tokens to waiting calls, highest lane first, as the bucket refills."""
        loop = asyncio.get_running_loop()
        try:
            while self._waiting[0] or self._waiting[1]:
                taken, wait = await self._take(self._waiting[0] + self._waiting[1], loop.time())
                for _ in range(taken):
                    if not self._grant():
                        self._give_back()
                if self._waiting[0] or self._waiting[1]:
                    await asyncio.sleep(wait)
        finally:
            self._dispatcher = None

    async def _take(self, want: int, now: float) -> tuple[int, float]:
        remote = self._remote
        if remote is not None and remote.usable(now):
            taken = await remote.take(self.key, self._remote_interval, self._remote_burst, want)
            if taken is not None:
                return taken
        return self._local.take(now, want)

    def _give_back(self) -> None:
        if not self._shared(asyncio.get_running_loop().time()):
            self._local.refund()

    def give_back(self) -> None:
        """Return a token taken for a call that another bucket then turned away."""
        self._give_back()

    def rejected(self, cause: str, retry_after: float) -> RateLimited:
        return RateLimited(self.subject, cause, retry_after, self.rate)

    # -- adaptive rate -----------------------------------------------------------------

    def _sent(self, now: float) -> None:
        control = self.control
        if control is not None:
            rate = control.sent(now)
            if rate is not None:
                self._set_rate(rate, now)

    def throttled(self, epoch: int, now: float) -> bool:
        """The upstream throttled a call admitted in `epoch`; True if the rate was lowered."""
        if self.control is None:
            return False
        rate = self.control.throttled(epoch, now)
        if rate is None:
            return False
        self._set_rate(rate, now)
        # The upstream just said its bucket is empty: a burst of saved tokens now would only
        # be throttled too, so the next token comes one interval from now.
        self._local.drain(now)
        return True

    def _set_rate(self, rate: float, now: float) -> None:
        burst = max(1.0, self._max_burst * rate / self.ceiling)
        self._local.set_rate(rate / self._divisor, max(1.0, burst / self._divisor), now)
        self._remote_interval = 1.0 / rate
        self._remote_burst = burst

    def close(self) -> None:
        if self._dispatcher is not None:
            self._dispatcher.cancel()


_UNSET: Any = object()


def _own(owner: object) -> object:
    """A call without an owner is its own."""
    return object() if owner is None else owner


class Admission:
    """Stage: one token per upstream attempt, from every bucket the attempt counts against."""

    def __init__(
        self,
        cfg: LimitsConfig,
        latencies: Latencies,
        *,
        divisor: int = 1,
        shared: SharedBuckets | None = None,
    ) -> None:
        self.cfg = cfg
        self.latencies = latencies
        #: Processes sharing the quota: each keeps rate / divisor when not sharing buckets.
        self._divisor = divisor
        self._shared = shared
        #: Operation name -> resource ARN (or None) -> its bucket (None: not limited).
        self._buckets: dict[str, dict[str | None, Bucket | None]] = {}
        #: Every (operation, resource) of `_buckets`, least recently used first.
        self._recent: OrderedDict[tuple[str, str | None], None] = OrderedDict()
        self._groups: dict[str, Bucket | None] = {}
        metrics.LIMIT_BUCKETS.add(self)

    # -- which limits apply ---------------------------------------------------------------

    def limit(self, op: Operation, resource: str | None) -> Limit | None:
        """The (operation, resource) bucket's ceiling: per ARN, per operation, or AWS's."""
        cfg = self.cfg
        found = cfg.resources.get(resource) if resource is not None else None
        if found is None:
            found = cfg.operations.get(op.name)
        if found is None and op.quota is not None:
            found = Limit(op.quota.rate, op.quota.burst)
        return found if found is not None and found.rate > 0 else None

    def group_names(self, op: Operation) -> list[str]:
        names = [name for name, g in self.cfg.groups.items() if op.name in g.operations]
        table = op.quota.group if op.quota is not None else None
        if table is not None and table not in names:
            configured = self.cfg.groups.get(table)
            if configured is None or not configured.operations:
                names.append(table)
        return names

    def _group(self, name: str, now: float) -> Bucket | None:
        if name in self._groups:
            return self._groups[name]
        configured = self.cfg.groups.get(name)
        if configured is not None:
            limit = Limit(configured.rate, configured.burst)
        else:
            limit = Limit(*QUOTA_GROUPS[name])
        bucket = None
        if limit.rate > 0:
            bucket = self._new(f"group {name}", f"group:{name}", limit, adaptive=False, now=now)
        self._groups[name] = bucket
        return bucket

    def _bucket(self, op: Operation, resource: str | None, now: float) -> Bucket | None:
        limit = self.limit(op, resource)
        bucket = None
        if len(self._recent) >= self.cfg.max_buckets:
            self._evict()
        if limit is not None:
            subject = f"{op.name} {resource}" if resource else op.name
            key = f"{op.name}:{resource or '*'}"
            bucket = self._new(subject, key, limit, adaptive=self.cfg.adaptive, now=now)
        self._buckets.setdefault(op.name, {})[resource] = bucket
        self._recent[op.name, resource] = None
        return bucket

    def _new(self, subject: str, key: str, limit: Limit, *, adaptive: bool, now: float) -> Bucket:
        cfg = self.cfg
        return Bucket(
            subject,
            cfg.redis_key_prefix + key,
            limit,
            adaptive=adaptive,
            divisor=self._divisor,
            max_queue=cfg.max_queue_length,
            max_wait=cfg.max_wait_seconds,
            remote=self._shared,
            now=now,
            standing=(cfg.standing_queue_seconds, cfg.standing_max_wait_seconds),
        )

    def _evict(self) -> None:
        """Forget the least recently used bucket nobody waits for (its rate starts over if
        it returns). Not the oldest: that is usually the busiest, whose learnt adaptive
        rate is the one most worth keeping."""
        for name, resource in self._recent:
            per_resource = self._buckets[name]
            bucket = per_resource[resource]
            if bucket is None or bucket.idle():
                del per_resource[resource]
                del self._recent[name, resource]
                return

    # -- the stage -------------------------------------------------------------------------

    def wrap(self, op: Operation, inner: Handler) -> Handler:
        if not self.cfg.enabled:
            return inner
        names = self.group_names(op)
        if self.limit(op, None) is None and not names and not self.cfg.resources:
            return inner
        latency = self.latencies.of(op.name)
        lane = _LANES[op.priority]
        resource_of = op.resource
        buckets = self._buckets.setdefault(op.name, {})
        recent = self._recent
        name = op.name
        recorded = metrics.admission_metrics(op.name)
        groups: list[Bucket] | None = None

        async def admit(call: Call) -> Message:
            nonlocal groups
            loop = asyncio.get_running_loop()
            now = loop.time()
            if groups is None:
                groups = [g for g in (self._group(n, now) for n in names) if g is not None]
            resource = resource_of(call.params)
            bucket = buckets.get(resource, _UNSET)
            if bucket is _UNSET:
                bucket = self._bucket(op, resource, now)
            else:
                recent.move_to_end((name, resource))
            epoch = 0
            if bucket is not None:
                if not bucket.take_now(now):
                    await _acquire(bucket, call, latency, lane, now, recorded)
                epoch = bucket.epoch
            for group in groups:
                now = loop.time()
                if not group.take_now(now):
                    try:
                        await _acquire(group, call, latency, lane, now, recorded)
                    except RateLimited:
                        if bucket is not None:
                            bucket.give_back()
                        raise
            start = loop.time()
            try:
                response = await inner(call)
            except UpstreamError as error:
                if error.throttled:
                    recorded.throttles.inc()
                    if bucket is not None and bucket.throttled(epoch, loop.time()):
                        recorded.decreases.inc()
                raise
            latency.observe(loop.time() - start)
            return response

        return admit

    @property
    def early(self) -> EarlyShed:
        """The peek to place before the merge stage (see `EarlyShed`)."""
        return EarlyShed(self)

    def bucket_states(self, now: float) -> Iterator[tuple[str, float, float, float, int]]:
        """(subject, tokens, rate, ceiling, waiting) of every bucket, for the metrics."""
        for bucket in (*self._all(), *self._groups.values()):
            if bucket is not None:
                tokens = bucket.tokens(now)
                yield bucket.subject, tokens, bucket.rate, bucket.ceiling, bucket.waiting

    def buckets(self) -> dict[str, Bucket]:
        """Every bucket by subject (tests and tools)."""
        out = {b.subject: b for b in self._all() if b is not None}
        out.update((b.subject, b) for b in self._groups.values() if b is not None)
        return out

    def _all(self) -> Iterator[Bucket | None]:
        for per_resource in self._buckets.values():
            yield from per_resource.values()

    async def aclose(self) -> None:
        for bucket in self.buckets().values():
            bucket.close()
        metrics.LIMIT_BUCKETS.discard(self)


async def _acquire(
    bucket: Bucket,
    call: Call,
    latency: Latency,
    lane: int,
    now: float,
    recorded: metrics.AdmissionMetrics,
) -> None:
    """The slow path: wait for a token (in the call's lane) or be rejected."""
    context = call.context
    if context.priority is not None:
        lane = _LANES[context.priority]
    try:
        await bucket.acquire(lane, call.deadline - latency.reserve(), now, context)
    except RateLimited as rejected:
        recorded.rejected(rejected.cause).inc()
        raise
    recorded.waits.observe(asyncio.get_running_loop().time() - now)


class EarlyShed:
    """Stage, before the merge stage: shed at once what admission would shed at once.

    A mergeable call first waits in the merge stage's window (milliseconds) for company, and
    only then reaches admission. When its bucket cannot give it a token in time (the wait
    exceeds what its deadline, or a standing queue, allows), that window only delays the
    inevitable rejection, so this peek (nothing is taken) answers before it. Coalescing,
    which costs no token, runs first; what is lost is a rare free ride on a merge batch
    already open. Only operations with a merge rule get the stage; the others reach
    admission without a window anyway.
    """

    def __init__(self, admission: Admission) -> None:
        self._admission = admission

    def wrap(self, op: Operation, inner: Handler) -> Handler:
        admission = self._admission
        if not admission.cfg.enabled or op.cache is None or op.cache.merge is None:
            return inner
        buckets = admission._buckets.setdefault(op.name, {})
        resource_of = op.resource
        latency = admission.latencies.of(op.name)
        default_lane = _LANES[op.priority]
        recorded = metrics.admission_metrics(op.name)

        async def shed(call: Call) -> Message:
            bucket = buckets.get(resource_of(call.params))
            if bucket is not None:
                priority = call.context.priority
                lane = default_lane if priority is None else _LANES[priority]
                now = asyncio.get_running_loop().time()
                latest = call.deadline - latency.reserve()
                rejected = bucket.hopeless(lane, latest, now, call.context)
                if rejected is not None:
                    recorded.rejected(rejected.cause).inc()
                    raise rejected
            return await inner(call)

        return shed
