"""The overload stages, built once per gateway: retry -> circuit breaker -> admission.

(Plus `early`, a peek that sheds hopeless mergeable calls before the merge window.)

Under the caching stages (a cache hit, a coalesced or merged call never takes a token) and
over the upstream call, in this order so that:

- every *attempt*, retries included, passes the breaker and takes a limiter token;
- an open breaker fails fast without spending a token;
- the admission stage sees each attempt's outcome and feeds throttles to its adaptive rate.

The retry and admission stages share the measured upstream latency (`Latencies`): both
only start waiting when the caller's deadline still leaves room for the call itself.
"""

from __future__ import annotations

from collections.abc import Callable

from gateway.config import Config
from gateway.operations import Operation
from gateway.pipeline.admission import Admission, Latencies
from gateway.pipeline.breaker import CircuitBreakers
from gateway.pipeline.call import Handler, Stage, compose
from gateway.pipeline.global_limits import SharedBuckets
from gateway.pipeline.retry import Retry


class Overload:
    """Holds the three stages (and their state) for one gateway process."""

    def __init__(self, cfg: Config, shared: SharedBuckets | None = None) -> None:
        limits = cfg.limits
        self.latencies = Latencies(
            limits.initial_latency_seconds, limits.min_latency_reserve_seconds
        )
        # Without shared buckets (or while Redis is down) each process keeps this share.
        divisor = limits.replicas * max(1, cfg.server.workers)
        self.admission = Admission(limits, self.latencies, divisor=divisor, shared=shared)
        self.breakers = CircuitBreakers(cfg.breaker)
        self.retry = Retry(cfg.retry, self.latencies)
        self.stages: list[Stage] = [self.retry, self.breakers, self.admission]
        #: Goes between the coalesce and merge stages (`admission.EarlyShed`).
        self.early: Stage = self.admission.early

    def bind(self, terminal_for: Callable[[Operation], Handler]) -> None:
        """Give the retry stage's create checks their own attempt path (breaker, admission,
        upstream call) for the listing operation."""
        attempt_stages: list[Stage] = [self.breakers, self.admission]
        self.retry.bind(lambda op: compose(op, attempt_stages, terminal_for(op)))

    async def aclose(self) -> None:
        await self.admission.aclose()
