"""Circuit breaker stage: one breaker per AWS service; sustained failures fail calls fast.

States (Envoy's outlier detection and Hystrix/resilience4j are the models):

- **closed**: calls go through. The breaker opens when, within one `window_seconds`
  window, at least `min_calls` attempts ended and at least `failure_ratio` of them failed,
  or after `consecutive_failures` failures in a row.
- **open**: calls fail at once with UNAVAILABLE, ErrorInfo CIRCUIT_OPEN and RetryInfo (the
  time until a probe); the cache stage, first in the pipeline, serves a stale answer
  instead where it has one (stale-if-error). After `open_seconds` the breaker half-opens.
- **half-open**: one probe call goes through, the others still fail fast. A probe that
  succeeds closes the breaker; one that fails opens it again for twice as long (at most
  `max_open_seconds`).

A failure is what says the service itself is unwell: UNAVAILABLE from the upstream (5xx,
connection refused/reset) and timeouts of attempts that had at least
`slow_timeout_seconds`. Throttles are not failures (the admission stage's adaptive rate
handles them), nor are caller errors: any answer from AWS proves it is up. Rejections by
the stages below (the limiter) and cancellations say nothing either way. That includes
an attempt the retry stage abandons at its own per-attempt timeout: it arrives here as a
cancellation, because the gateway's statistical threshold proves nothing about the
service, and the call's next attempt carries the verdict (its answer, or its failure, a
timeout at the caller's deadline included). Counting it would count one slow call up to
`max_attempts` times and open the breaker on a slow but healthy upstream.

Placed under the retry stage, it sees every attempt, and an open breaker costs no token.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import grpc
from google.protobuf.message import Message

from gateway import metrics
from gateway.errors import GATEWAY_DOMAIN, DeadlineExceeded, GatewayError, UpstreamError
from gateway.limits_config import BreakerConfig
from gateway.operations import Operation
from gateway.pipeline.call import Call, Handler

CLOSED, HALF_OPEN, OPEN = 0, 1, 2
STATE_NAMES = {CLOSED: "closed", HALF_OPEN: "half_open", OPEN: "open"}


class CircuitOpen(GatewayError):
    """The upstream service failed persistently; the call was not attempted."""

    code = grpc.StatusCode.UNAVAILABLE

    def __init__(self, service: str, retry_after: float) -> None:
        super().__init__(
            f"{service} is failing; calls are failed fast until a probe succeeds",
            reason="CIRCUIT_OPEN",
            metadata={"service": service},
            retry_after=retry_after,
        )


class Breaker:
    """The state machine of one service's breaker; times are the caller's clock."""

    __slots__ = (
        "_calls", "_consecutive", "_failures", "_open_for", "_probing", "_reopen_at",
        "_window_end", "cfg", "service", "state",
    )  # fmt: skip

    def __init__(self, service: str, cfg: BreakerConfig) -> None:
        self.service = service
        self.cfg = cfg
        self.state = CLOSED
        self._calls = 0
        self._failures = 0
        self._consecutive = 0
        self._window_end = 0.0
        self._open_for = cfg.open_seconds
        self._reopen_at = 0.0
        self._probing = False
        metrics.BREAKER_STATE.labels(service).set(CLOSED)

    def allow(self, now: float) -> bool:
        """May a call go through now? In half-open, True claims the one probe."""
        if self.state == CLOSED:
            return True
        if self.state == OPEN:
            if now < self._reopen_at:
                return False
            self._move(HALF_OPEN)
        if self._probing:
            return False
        self._probing = True
        return True

    def retry_after(self, now: float) -> float:
        return max(self._reopen_at - now, 0.0) if self.state == OPEN else self.cfg.open_seconds

    def succeeded(self, now: float) -> None:
        if self.state == HALF_OPEN:
            self._probing = False
            self._open_for = self.cfg.open_seconds
            self._reset(now)
            self._move(CLOSED)
            return
        self._count(now, failed=False)

    def failed(self, now: float) -> None:
        if self.state == HALF_OPEN:
            self._probing = False
            self._open_for = min(self._open_for * 2, self.cfg.max_open_seconds)
            self._open(now)
            return
        if self.state == OPEN:
            return  # a call admitted before the breaker opened
        self._count(now, failed=True)
        cfg = self.cfg
        if self._consecutive >= cfg.consecutive_failures or (
            self._calls >= cfg.min_calls and self._failures >= cfg.failure_ratio * self._calls
        ):
            self._open(now)

    def released(self) -> None:
        """The probe ended without a verdict (rejected below, cancelled): let another try."""
        if self.state == HALF_OPEN:
            self._probing = False

    def _count(self, now: float, *, failed: bool) -> None:
        if now >= self._window_end:
            self._reset(now)
        self._calls += 1
        if failed:
            self._failures += 1
            self._consecutive += 1
        else:
            self._consecutive = 0

    def _reset(self, now: float) -> None:
        self._calls = self._failures = self._consecutive = 0
        self._window_end = now + self.cfg.window_seconds

    def _open(self, now: float) -> None:
        self._reopen_at = now + self._open_for
        self._move(OPEN)

    def _move(self, state: int) -> None:
        if state != self.state:
            self.state = state
            metrics.BREAKER_STATE.labels(self.service).set(state)
            metrics.BREAKER_TRANSITIONS.labels(self.service, STATE_NAMES[state]).inc()


def classify(error: GatewayError, attempt_seconds: float, slow: float) -> bool | None:
    """True: the service failed; False: it answered; None: no verdict."""
    if isinstance(error, UpstreamError):
        if error.throttled:
            return False
        return error.code == grpc.StatusCode.UNAVAILABLE
    if isinstance(error, DeadlineExceeded) and error.reason == "UPSTREAM_TIMEOUT":
        return True if attempt_seconds >= slow else None
    if error.domain == GATEWAY_DOMAIN:
        return None  # decided by a gateway stage below (the limiter), not the upstream
    return None


class CircuitBreakers:
    """Stage: fail fast while a service's breaker is open."""

    def __init__(self, cfg: BreakerConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.cfg = cfg
        self._clock = clock
        self._breakers: dict[str, Breaker] = {}

    def breaker(self, service: str) -> Breaker:
        found = self._breakers.get(service)
        if found is None:
            found = self._breakers[service] = Breaker(service, self.cfg)
        return found

    def wrap(self, op: Operation, inner: Handler) -> Handler:
        if not self.cfg.enabled:
            return inner
        breaker = self.breaker(op.upstream)
        service = op.upstream
        slow = self.cfg.slow_timeout_seconds
        rejections = metrics.BREAKER_REJECTIONS.labels(service)
        clock = self._clock

        async def guarded(call: Call) -> Message:
            now = clock()
            if breaker.state != CLOSED and not breaker.allow(now):
                rejections.inc()
                raise CircuitOpen(service, breaker.retry_after(now))
            try:
                response = await inner(call)
            except GatewayError as error:
                end = clock()
                verdict = classify(error, end - now, slow)
                if verdict is None:
                    breaker.released()
                elif verdict:
                    breaker.failed(end)
                else:
                    breaker.succeeded(end)
                raise
            except BaseException:
                breaker.released()
                raise
            breaker.succeeded(clock())
            return response

        return guarded
