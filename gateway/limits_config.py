"""Settings of the overload stages: `[limits]`, `[retry]` and `[breaker]`.

Each is a section of the gateway's TOML file (see `gateway.config.Config`); every key has a
default and README.md ("Rate limits and overload") documents them. The default rates are
AWS's documented quotas where AWS documents one, and a reasoned conservative value where it
does not; they live with each operation in `gateway/operations.py` (`Quota`), and the
tables here override them. Values are checked here, so a negative rate or a limit for an
operation that does not exist is a start-up error.
"""

from __future__ import annotations

from dataclasses import field
from typing import Any

from pydantic import Field, model_validator

from gateway.schema import (
    Count,
    Factor,
    Number,
    Percentile,
    Ratio,
    Seconds,
    ZeroOrSeconds,
    invalid,
    load,
    settings,
)


def _operation_names() -> frozenset[str]:
    from gateway.operations import OPERATIONS

    return frozenset(op.name for op in OPERATIONS)


def _names(known: frozenset[str]) -> str:
    return ", ".join(sorted(known))


def _default_burst(data: dict[str, Any]) -> float:
    # A table without `burst` gets a tenth of a second's worth of tokens, at least one.
    return max(1.0, float(data.get("rate", 0.0)) / 10)


def _burst_of_one(rate: float, burst: float) -> None:
    if rate > 0 and burst < 1:
        raise invalid("burst", burst, "must be >= 1 when rate > 0")


@settings
class Limit:
    """A token bucket's ceiling: `rate` tokens per second, at most `burst` at once.

    `rate = 0` means "no limit" (no bucket at all); `burst` defaults to a tenth of a
    second's worth of tokens, at least one.
    """

    rate: Number
    burst: Number = Field(default_factory=_default_burst)

    @model_validator(mode="after")
    def _burst_allows_a_call(self) -> Limit:
        _burst_of_one(self.rate, self.burst)
        return self

    @classmethod
    def parse(cls, where: str, raw: Any) -> Limit:
        """A `{ rate = 50, burst = 5 }` table of the TOML file at `where`."""
        from gateway.config import ConfigError  # here: gateway.config imports this module

        return load(cls, raw, ConfigError, where=where)


@settings
class GroupLimit:
    """An account-wide bucket that every call of `operations` also takes a token from."""

    rate: Number
    burst: Number = Field(default_factory=_default_burst)
    operations: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _known_operations(self) -> GroupLimit:
        _burst_of_one(self.rate, self.burst)
        known = _operation_names()
        for i, name in enumerate(self.operations):
            if name not in known:
                raise invalid(f"operations.{i}", name, f"not an operation (known: {_names(known)})")
        return self


@settings
class LimitsConfig:
    """`[limits]`: admission control (token buckets), adaptive rates, global buckets."""

    enabled: bool = True
    #: Per operation name: the bucket of every (operation, resource ARN) pair of it.
    #: Overrides the operation table's AWS default, e.g. { GetRecommendations = { rate = 200 } }.
    operations: dict[str, Limit] = field(default_factory=dict)
    #: Per resource ARN (campaign, recommender, ...): each operation's bucket on that ARN.
    resources: dict[str, Limit] = field(default_factory=dict)
    #: Account-wide groups by name: { rate, burst, operations = [...] }. A name the operation
    #: table already defines ("personalize-runtime") overrides its rate and burst.
    groups: dict[str, GroupLimit] = field(default_factory=dict)
    #: Throttles lower a bucket's rate (x0.7), successes raise it back along a cubic curve.
    adaptive: bool = True
    #: Gateway deployments sharing one AWS account and region (each with `[server] workers`
    #: processes). Without the shared buckets each process keeps rate / (replicas * workers).
    replicas: Count = 1
    #: Calls waiting for a token, per bucket; one more is rejected at once.
    max_queue_length: Count = 1000
    #: No call waits longer than this for a token, whatever its deadline.
    max_wait_seconds: ZeroOrSeconds = 5.0
    #: When no call has found a token at once for this long, the queue is standing
    #: (sustained overload, not a burst): calls then wait at most
    #: `standing_max_wait_seconds`, the rest is shed at once.
    standing_queue_seconds: ZeroOrSeconds = 0.5
    standing_max_wait_seconds: ZeroOrSeconds = 0.1
    #: A waiting call must keep at least this long of its deadline for the upstream call
    #: (more when the measured upstream latency says so: mean + 4 deviations).
    min_latency_reserve_seconds: ZeroOrSeconds = 0.02
    #: Initial estimate of an operation's upstream latency, until it is measured.
    initial_latency_seconds: ZeroOrSeconds = 0.05
    #: (operation, ARN) buckets kept; beyond this the least recently used idle one is
    #: forgotten (its adaptive rate starts over if it returns).
    max_buckets: Count = 10_000
    #: With `[redis] url` set: keep the buckets in Redis, shared by every process.
    shared: bool = True
    redis_key_prefix: str = "mlgw:limits:v1:"
    #: Bound on one Redis admission; a slower or failed Redis means the local share instead.
    redis_timeout_seconds: Seconds = 0.02
    #: After a Redis failure the local share is used for this long before Redis is asked again.
    redis_cooldown_seconds: ZeroOrSeconds = 2.0
    #: Redis admissions in flight per process; beyond it calls queue locally and are
    #: admitted in batches.
    redis_max_in_flight: Count = 32

    @model_validator(mode="after")
    def _known_operations(self) -> LimitsConfig:
        known = _operation_names()
        for name in self.operations:
            if name not in known:
                raise invalid("operations", name, f"not an operation (known: {_names(known)})")
        return self


@settings
class RetryConfig:
    """`[retry]`: the gateway's one retry loop (botocore's own retries are off)."""

    enabled: bool = True
    #: Attempts per call, the first included (Google SRE: three; botocore standard: 3).
    max_attempts: Count = 3
    #: Full jitter: retry n waits uniform(0, min(max_backoff, base * 2^(n-1))).
    base_backoff_seconds: ZeroOrSeconds = 0.025
    #: The base after a throttle (the admission stage also paces the retry by the new rate).
    throttle_backoff_seconds: ZeroOrSeconds = 0.05
    max_backoff_seconds: ZeroOrSeconds = 1.0
    #: AWS's Retry-After / x-amz-retry-after is waited for up to this long; beyond it, or
    #: beyond the caller's deadline, the error goes back to the caller at once.
    max_retry_after_seconds: ZeroOrSeconds = 5.0
    #: An attempt of an idempotent operation still unanswered after its timeout is abandoned
    #: and retried, but only when a retry can follow (attempts, budget, and the deadline
    #: leaves room for one more attempt): otherwise it keeps the whole remaining deadline.
    #: The timeout follows the measured latency (AWS Builders' Library):
    #: `attempt_timeout_factor` times the `attempt_timeout_percentile` of the operation's
    #: last `attempt_timeout_window` attempts, at least `min_attempt_timeout_seconds`; until
    #: `attempt_timeout_min_samples` are measured, at least `attempt_timeout_seconds`
    #: (conservative). 0 turns per-attempt timeouts off (attempts get all the time).
    attempt_timeout_seconds: ZeroOrSeconds = 3.0
    attempt_timeout_percentile: Percentile = 99.9
    attempt_timeout_factor: Factor = 2.0
    min_attempt_timeout_seconds: ZeroOrSeconds = 1.0
    attempt_timeout_min_samples: Count = 100
    attempt_timeout_window: Count = 1000
    #: Retry budget per AWS service: each call deposits `budget_ratio` tokens and the
    #: budget also refills at `budget_min_per_second`; a retry spends one token; at most
    #: `budget_max_tokens` are saved up. So retries add at most ~10% load in an outage.
    budget_ratio: Number = 0.1
    budget_min_per_second: Number = 1.0
    budget_max_tokens: Number = 10.0


@settings
class BreakerConfig:
    """`[breaker]`: one circuit breaker per AWS service."""

    enabled: bool = True
    #: Opens when, within one window, at least `min_calls` calls were made and at least
    #: `failure_ratio` of them failed (5xx, connection errors, slow timeouts)...
    window_seconds: Seconds = 10.0
    min_calls: Count = 20
    failure_ratio: Ratio = 0.5
    #: ...or after this many failures in a row.
    consecutive_failures: Count = 10
    #: Open this long, then one probe call is let through; a failed probe doubles the time.
    open_seconds: Seconds = 5.0
    max_open_seconds: Seconds = 60.0
    #: A timeout counts as a failure only when the attempt had at least this long: a slow
    #: upstream, not a caller with a tight deadline.
    slow_timeout_seconds: ZeroOrSeconds = 1.0

    @model_validator(mode="after")
    def _open_within_max(self) -> BreakerConfig:
        if self.max_open_seconds < self.open_seconds:
            allowed = f"must be >= open_seconds ({self.open_seconds:g})"
            raise invalid("max_open_seconds", self.max_open_seconds, allowed)
        return self
