"""Retry stage: the gateway's one retry loop (botocore's own retries are off).

Sits above the breaker and admission stages, so every attempt is seen by the breaker and
takes a token from the limiter, like the first. A failed attempt is retried only when all
of these hold:

- it is retryable: a throttle (the request was not executed, so any operation may repeat
  it), or a transient failure (UNAVAILABLE from AWS: 5xx, connection refused/reset/closed)
  or an attempt timeout, for an operation that is safe to repeat: idempotent, or carrying
  an idempotency key (Bedrock's `clientRequestToken`, generated once per call when the
  caller left it empty, so every attempt sends the same one; Amazon ML's
  `BatchPredictionId`), or one with a `CreateCheck` (Personalize's CreateBatchInferenceJob:
  before retrying, the jobs are listed and a job of that name means the first attempt took
  effect, so its ARN is the answer; ResourceAlreadyExists on our own retry means the same);
- attempts are left (`max_attempts`, the first included);
- the backoff (full jitter: uniform(0, min(max_backoff, base * 2^(n-1))), with a larger
  base after a throttle), or AWS's Retry-After hint when it sent one and it is at most
  `max_retry_after_seconds`, plus the expected upstream latency fits in the caller's
  remaining deadline;
- the service's retry budget has a token: each call deposits `budget_ratio` (0.1), the
  budget also refills at `budget_min_per_second`, holds at most `budget_max_tokens`, and a
  retry spends one. In an outage retries therefore add about 10% load, not 200%.

Idempotent attempts have a timeout of their own, so a hung connection is abandoned and
retried instead of eating the whole deadline. It follows the measured latency, as the AWS
Builders' Library ("Timeouts, retries and backoff with jitter") advises rather than a
constant: `attempt_timeout_factor` times a high percentile (p99.9) of the operation's recent
attempts, at least a floor, and a conservative `attempt_timeout_seconds` until enough are
measured (`attempt_timeout`). The timeout only says when the attempt *may* be abandoned:
when it expires the retry is decided there and then, by the same rules as any retry, and
the attempt is abandoned only if the retry is allowed (attempts left, a budget token, and
the rest of the deadline fits the worst backoff plus an attempt of the measured p99.9).
Otherwise it keeps the whole remaining deadline: cutting an attempt no retry can follow
would only turn a slow answer into a false timeout. An abandoned attempt is cancelled, so
the stages below see a cancellation, not a failure: the breaker counts nothing for it (the
attempt that finally answers or fails carries the call's verdict).

When a retry is turned away by the gateway itself (the limiter has no token in time, the
breaker opened), the caller gets the upstream's last error, which says what went wrong.
A final error that was retried carries `attempts` in its ErrorInfo metadata.
"""

from __future__ import annotations

import asyncio
import heapq
import math
import random
import uuid
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf.message import Message

from gateway import metrics
from gateway.errors import GATEWAY_DOMAIN, DeadlineExceeded, GatewayError, UpstreamError
from gateway.limits_config import RetryConfig
from gateway.operations import OPERATIONS, CreateCheck, Operation
from gateway.pipeline.admission import Latencies
from gateway.pipeline.call import Call, Handler
from gateway.upstream.mapping import from_aws, to_aws

THROTTLE, TRANSIENT, TIMEOUT = "throttle", "transient", "timeout"
#: Listing pages a create check reads at most (100 jobs each).
MAX_CHECK_PAGES = 5
_BY_NAME = {op.name: op for op in OPERATIONS}
#: `_existing`'s answer when the listing failed.
_FAILED: Any = object()


class RetryBudget:
    """Retries allowed per AWS service, as a token balance (Finagle's RetryBudget shape)."""

    __slots__ = ("_last", "_max", "_per_second", "_ratio", "tokens")

    def __init__(self, cfg: RetryConfig, now: float) -> None:
        self._ratio = cfg.budget_ratio
        self._per_second = cfg.budget_min_per_second
        self._max = cfg.budget_max_tokens
        self.tokens = cfg.budget_max_tokens
        self._last = now

    def deposit(self) -> None:
        """A call was made (its first attempt)."""
        tokens = self.tokens + self._ratio
        self.tokens = tokens if tokens < self._max else self._max

    def spend(self, now: float) -> bool:
        """Take one retry's worth, if there is one."""
        elapsed = now - self._last
        self._last = now
        if elapsed > 0:
            self.tokens = min(self._max, self.tokens + elapsed * self._per_second)
        if self.tokens >= 1.0 - 1e-9:  # ten deposits of 0.1 are one token
            self.tokens = max(0.0, self.tokens - 1.0)
            return True
        return False


def cause_of(error: GatewayError) -> str | None:
    """Why a failed attempt could be retried, or None when it must not be."""
    if isinstance(error, UpstreamError):
        if error.throttled:
            return THROTTLE
        if error.code == grpc.StatusCode.UNAVAILABLE:
            return TRANSIENT
        return None
    if isinstance(error, DeadlineExceeded) and error.reason == "UPSTREAM_TIMEOUT":
        return TIMEOUT
    return None


def backoff(cfg: RetryConfig, attempt: int, cause: str, rng: Callable[[], float]) -> float:
    """Full jitter after failed attempt number `attempt` (1-based)."""
    base = cfg.throttle_backoff_seconds if cause == THROTTLE else cfg.base_backoff_seconds
    return float(rng() * min(cfg.max_backoff_seconds, base * 2 ** (attempt - 1)))


class AttemptTimes:
    """How long one operation's recent attempts took: the last `size`, in a ring.

    Answered attempts give their duration; an abandoned one gives its timeout, a lower
    bound (censored), so a slowing upstream raises the percentile at once instead of
    being cut forever at a bound it already exceeds (Karn's rule in TCP backs the timer off
    the same way).
    """

    __slots__ = ("_at", "_cached", "_from_top", "_samples", "_share", "_size", "_stale")

    #: Observations after which a cached percentile is recomputed (it may only have fallen).
    RECOMPUTE_EVERY = 32

    def __init__(self, size: int, percentile: float) -> None:
        self._samples: list[float] = []
        self._size = size
        self._at = 0
        self._share = percentile / 100
        self._cached = 0.0
        self._stale = 0
        self._from_top = 1

    @property
    def count(self) -> int:
        return len(self._samples)

    def observe(self, seconds: float) -> None:
        samples = self._samples
        if len(samples) < self._size:
            samples.append(seconds)
        else:
            samples[self._at] = seconds
            self._at = (self._at + 1) % self._size
        # A sample above the percentile may raise it: recompute on the next read.
        self._stale = self.RECOMPUTE_EVERY if seconds > self._cached else self._stale + 1

    def percentile(self) -> float:
        """The nearest-rank percentile of the samples (0.0 without any): with fewer than
        1 / (1 - share) samples, the slowest."""
        if self._stale >= self.RECOMPUTE_EVERY:
            samples = self._samples
            n = len(samples)
            from_top = n - math.ceil(self._share * n - 1e-9) + 1
            self._cached = heapq.nlargest(max(1, from_top), samples)[-1] if n else 0.0
            self._stale = 0
        return self._cached


def attempt_timeout(cfg: RetryConfig, times: AttemptTimes, cut: float) -> float:
    """After how long an attempt may be abandoned for a retry.

    `attempt_timeout_factor` x the measured percentile, at least `min_attempt_timeout_seconds`
    once `attempt_timeout_min_samples` are measured and `attempt_timeout_seconds` before
    (too few samples to know the tail). `cut` is the timeout of this call's previous
    attempt when it was abandoned (else 0): the upstream just took longer than that, so
    the next attempt gets `factor` times as long (exponential, like TCP's RTO backoff).
    """
    floor = (
        cfg.min_attempt_timeout_seconds
        if times.count >= cfg.attempt_timeout_min_samples
        else cfg.attempt_timeout_seconds
    )
    factor = cfg.attempt_timeout_factor
    return max(floor, factor * times.percentile(), factor * cut)


def _abandoned(service: str) -> DeadlineExceeded:
    """What an abandoned attempt reports if the retry after it is turned away below."""
    return DeadlineExceeded(
        f"{service} did not answer within the attempt's timeout",
        reason="UPSTREAM_TIMEOUT",
        metadata={"service": service},
    )


class Retry:
    """Stage: retry what is safe to retry, within attempts, deadline and budget."""

    def __init__(
        self,
        cfg: RetryConfig,
        latencies: Latencies,
        *,
        rng: Callable[[], float] = random.random,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        self.cfg = cfg
        self.latencies = latencies
        self._rng = rng
        self._sleep = sleep
        self._budgets: dict[str, RetryBudget] = {}
        self._times: dict[str, AttemptTimes] = {}
        self._path_for: Callable[[Operation], Handler] | None = None
        self._paths: dict[str, Handler] = {}

    def bind(self, path_for: Callable[[Operation], Handler]) -> None:
        """How create checks reach the upstream: an operation's attempt path (breaker,
        admission, upstream call), so a check is limited and guarded like any attempt."""
        self._path_for = path_for

    def budget(self, service: str) -> RetryBudget:
        found = self._budgets.get(service)
        if found is None:
            found = RetryBudget(self.cfg, _now())
            self._budgets[service] = found
            metrics.RETRY_BUDGET_TOKENS.labels(service).set_function(lambda: found.tokens)
        return found

    def times(self, operation: str) -> AttemptTimes:
        """The measured attempt durations of an operation (its attempt timeouts follow)."""
        found = self._times.get(operation)
        if found is None:
            cfg = self.cfg
            found = AttemptTimes(cfg.attempt_timeout_window, cfg.attempt_timeout_percentile)
            self._times[operation] = found
        return found

    def wrap(self, op: Operation, inner: Handler) -> Handler:
        cfg = self.cfg
        if not cfg.enabled or cfg.max_attempts <= 1:
            return inner
        budget = self.budget(op.upstream)
        latency = self.latencies.of(op.name)
        key = op.idempotency_key
        check = op.create_check
        replayable = op.idempotent or key is not None
        timed = op.idempotent and cfg.attempt_timeout_seconds > 0
        times = self.times(op.name)
        retried = {c: metrics.RETRIES.labels(op.name, c) for c in (THROTTLE, TRANSIENT, TIMEOUT)}
        name, service = op.name, op.upstream
        rng, sleep = self._rng, self._sleep

        async def retrying(call: Call) -> Message:
            if key is not None and not call.params.get(key):
                call.params[key] = str(uuid.uuid4())  # one token for every attempt
            budget.deposit()
            attempt = 1
            last: GatewayError | None = None
            ambiguous = False  # an earlier attempt may have taken effect
            cut = 0.0  # the timeout of the previous attempt, when it was abandoned

            def may_abandon() -> bool:
                """At the attempt's timeout: is a retry allowed now? (It spends the token.)"""
                need = max(latency.reserve(), times.percentile())
                why = self._refusal(_abandoned(service), attempt, TIMEOUT, call, budget, need)
                return why is None

            while True:
                try:
                    if not timed:
                        return await inner(call)
                    limit = attempt_timeout(cfg, times, cut)
                    answer = await _bounded(inner, call, limit, may_abandon, times)
                    if answer is not None:
                        return answer
                except GatewayError as error:
                    if last is not None and _turned_away(error):
                        raise _final(last, attempt - 1) from None
                    if ambiguous and _already_exists(error):
                        # Our own retry collided with the job an earlier attempt created.
                        found = await self._existing(op, check, call) if check else None
                        if found is not None and found is not _FAILED:
                            return found
                        raise _final(error, attempt) from None
                    cause = cause_of(error)
                    if cause is None or (cause != THROTTLE and not replayable and check is None):
                        raise _final(error, attempt) from None
                    why = self._refusal(error, attempt, cause, call, budget, latency.reserve())
                    if why is not None:
                        metrics.RETRIES_DENIED.labels(name, why).inc()
                        raise _final(error, attempt) from None
                    delay = backoff(cfg, attempt, cause, rng)
                    hint = error.retry_hint if isinstance(error, UpstreamError) else None
                    if hint is not None and hint > delay:
                        delay = hint
                    if check is not None and cause != THROTTLE and not replayable:
                        found = await self._existing(op, check, call)
                        if found is _FAILED:
                            raise _final(error, attempt) from None  # cannot tell: no retry
                        if found is not None:
                            return found
                    await sleep(delay)
                    retried[cause].inc()
                    last = error
                    ambiguous = ambiguous or cause != THROTTLE
                    attempt += 1
                    continue
                # Abandoned at its timeout: the retry was granted (its token spent) right then.
                cut = limit
                await sleep(backoff(cfg, attempt, TIMEOUT, rng))
                retried[TIMEOUT].inc()
                last = _abandoned(service)
                attempt += 1

        return retrying

    def _refusal(
        self,
        error: GatewayError,
        attempt: int,
        cause: str,
        call: Call,
        budget: RetryBudget,
        reserve: float,
    ) -> str | None:
        """Why this retryable failure is not retried, or None to retry it."""
        cfg = self.cfg
        if attempt >= cfg.max_attempts:
            return "attempts"
        hint = error.retry_hint if isinstance(error, UpstreamError) else None
        if hint is not None and hint > cfg.max_retry_after_seconds:
            return "retry_after"
        # The worst-case backoff (or the hint) plus one upstream call must fit the deadline.
        base = cfg.throttle_backoff_seconds if cause == THROTTLE else cfg.base_backoff_seconds
        worst = max(min(cfg.max_backoff_seconds, base * 2 ** (attempt - 1)), hint or 0.0)
        if worst + reserve > call.remaining():
            return "deadline"
        if not budget.spend(asyncio.get_running_loop().time()):
            return "budget"
        return None

    async def _existing(self, op: Operation, check: CreateCheck, call: Call) -> Message | None:
        """The create's answer if the job it names exists now, None if it does not, and
        `_FAILED` when the listing failed (then nobody can tell, so there is no retry)."""
        recorded = metrics.CREATE_CHECKS
        handler = self._path(check.list_operation)
        name = call.params.get(check.name_member)
        if handler is None or not name:
            failed: Message | None = _FAILED
            return failed
        list_op = _BY_NAME[check.list_operation]
        params: dict[str, Any] = {m: call.params[m] for m in check.filters if m in call.params}
        params["maxResults"] = 100
        try:
            for _ in range(MAX_CHECK_PAGES):
                listing = call.derive(op=list_op, request=list_op.request(), params=dict(params))
                page = to_aws(await handler(listing))
                for entry in page.get(check.list_member, ()):
                    if entry.get(check.name_member) == name:
                        recorded.labels(op.name, "found").inc()
                        answer = {check.response_member: entry[check.id_member]}
                        return from_aws(op.response, answer)
                token = page.get("nextToken")
                if not token:
                    break
                params["nextToken"] = token
        except GatewayError:
            recorded.labels(op.name, "failed").inc()
            failed = _FAILED
            return failed
        recorded.labels(op.name, "absent").inc()
        return None

    def _path(self, operation: str) -> Handler | None:
        found = self._paths.get(operation)
        if found is None and self._path_for is not None:
            found = self._paths[operation] = self._path_for(_BY_NAME[operation])
        return found


async def _bounded(
    inner: Handler,
    call: Call,
    limit: float,
    may_abandon: Callable[[], bool],
    times: AttemptTimes,
) -> Message | None:
    """One attempt that may be abandoned `limit` seconds in, if `may_abandon()` agrees then:
    its answer, or None when it was abandoned (cancelled, so the stages below see no verdict).
    Its duration (or, abandoned, its limit: a lower bound) is recorded in `times`."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    if start + limit >= call.deadline:  # the whole remaining deadline: nothing to decide
        answer = await inner(call)
        times.observe(loop.time() - start)
        return answer
    abandoned = False

    def expired() -> None:
        nonlocal abandoned
        if may_abandon():
            abandoned = True
            scope.reschedule(loop.time())  # cancels the attempt at once

    try:
        async with asyncio.timeout(None) as scope:
            timer = loop.call_at(start + limit, expired)
            try:
                answer = await inner(call)
            finally:
                timer.cancel()
    except TimeoutError:
        if not abandoned:
            raise
        times.observe(limit)
        return None
    times.observe(loop.time() - start)
    return answer


def _turned_away(error: GatewayError) -> bool:
    """Rejected by a gateway stage below (limiter, breaker) rather than failed by AWS."""
    return error.domain == GATEWAY_DOMAIN and error.reason != "UPSTREAM_TIMEOUT"


def _already_exists(error: GatewayError) -> bool:
    return isinstance(error, UpstreamError) and error.reason == "RESOURCE_ALREADY_EXISTS"


def _final(error: GatewayError, attempts: int) -> GatewayError:
    if attempts > 1:
        error.metadata["attempts"] = str(attempts)
    return error


def _now() -> float:
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:
        return 0.0
