"""Settings of the overload stages: `[limits]`, `[retry]` and `[breaker]`.

Each is a section of the gateway's TOML file (see `gateway.config.Config`); every key has a
default and README.md ("Rate limits and overload") documents them. The default rates are
AWS's documented quotas where AWS documents one, and a reasoned conservative value where it
does not; they live with each operation in `gateway/operations.py` (`Quota`), and the
tables here override them. Values are checked here, so a negative rate or a limit for an
operation that does not exist is a start-up error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def _fail(message: str) -> None:
    from gateway.config import ConfigError  # here: gateway.config imports this module

    raise ConfigError(message)


def _positive(where: str, **values: float) -> None:
    for name, value in values.items():
        if value <= 0:
            _fail(f"{where}.{name} must be > 0, got {value}")


def _non_negative(where: str, **values: float) -> None:
    for name, value in values.items():
        if value < 0:
            _fail(f"{where}.{name} must be >= 0, got {value}")


def _operation_names() -> frozenset[str]:
    from gateway.operations import OPERATIONS

    return frozenset(op.name for op in OPERATIONS)


def _number(where: str, raw: dict[str, Any], key: str, default: float | None) -> float | None:
    value = raw.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        _fail(f"{where}.{key} must be a number >= 0, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Limit:
    """A token bucket's ceiling: `rate` tokens per second, at most `burst` at once.

    `rate = 0` means "no limit" (no bucket at all); `burst` defaults to a tenth of a
    second's worth of tokens, at least one.
    """

    rate: float
    burst: float

    @classmethod
    def parse(cls, where: str, raw: Any, allowed: frozenset[str] = frozenset()) -> Limit:
        if not isinstance(raw, dict):
            _fail(f"{where} must be a table like {{ rate = 50, burst = 5 }}")
        unknown = sorted(set(raw) - {"rate", "burst"} - allowed)
        if unknown:
            _fail(f"unknown setting(s) in {where}: {', '.join(unknown)}")
        if "rate" not in raw:
            _fail(f"{where}.rate is required")
        rate = _number(where, raw, "rate", None) or 0.0
        burst = _number(where, raw, "burst", max(1.0, rate / 10)) or 0.0
        if rate > 0 and burst < 1:
            _fail(f"{where}.burst must be >= 1, got {burst}")
        return cls(rate, burst)


@dataclass(frozen=True)
class GroupLimit:
    """An account-wide bucket that every call of `operations` also takes a token from."""

    rate: float
    burst: float
    operations: tuple[str, ...]


@dataclass(frozen=True)
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
    replicas: int = 1
    #: Calls waiting for a token, per bucket; one more is rejected at once.
    max_queue_length: int = 1000
    #: No call waits longer than this for a token, whatever its deadline.
    max_wait_seconds: float = 5.0
    #: When no call has found a token at once for this long, the queue is standing
    #: (sustained overload, not a burst): calls then wait at most
    #: `standing_max_wait_seconds`, the rest is shed at once.
    standing_queue_seconds: float = 0.5
    standing_max_wait_seconds: float = 0.1
    #: A waiting call must keep at least this long of its deadline for the upstream call
    #: (more when the measured upstream latency says so: mean + 4 deviations).
    min_latency_reserve_seconds: float = 0.02
    #: Initial estimate of an operation's upstream latency, until it is measured.
    initial_latency_seconds: float = 0.05
    #: (operation, ARN) buckets kept; beyond this the least recently used idle one is
    #: forgotten (its adaptive rate starts over if it returns).
    max_buckets: int = 10_000
    #: With `[redis] url` set: keep the buckets in Redis, shared by every process.
    shared: bool = True
    redis_key_prefix: str = "mlgw:limits:v1:"
    #: Bound on one Redis admission; a slower or failed Redis means the local share instead.
    redis_timeout_seconds: float = 0.02
    #: After a Redis failure the local share is used for this long before Redis is asked again.
    redis_cooldown_seconds: float = 2.0
    #: Redis admissions in flight per process; beyond it calls queue locally and are
    #: admitted in batches.
    redis_max_in_flight: int = 32

    def __post_init__(self) -> None:
        known = _operation_names()
        ops: dict[str, Limit] = {}
        for name, given in self.operations.items():
            if name not in known:
                _fail(f"limits.operations: {name} is not an operation")
            ops[name] = given if isinstance(given, Limit) else Limit.parse(f"limits.{name}", given)
        resources = {
            arn: raw if isinstance(raw, Limit) else Limit.parse(f'limits.resources."{arn}"', raw)
            for arn, raw in self.resources.items()
        }
        groups: dict[str, GroupLimit] = {}
        for name, group in self.groups.items():
            groups[name] = group if isinstance(group, GroupLimit) else _group(name, group, known)
        object.__setattr__(self, "operations", ops)
        object.__setattr__(self, "resources", resources)
        object.__setattr__(self, "groups", groups)
        _non_negative(
            "limits",
            max_wait_seconds=self.max_wait_seconds,
            standing_queue_seconds=self.standing_queue_seconds,
            standing_max_wait_seconds=self.standing_max_wait_seconds,
            min_latency_reserve_seconds=self.min_latency_reserve_seconds,
            initial_latency_seconds=self.initial_latency_seconds,
            redis_cooldown_seconds=self.redis_cooldown_seconds,
        )
        _positive(
            "limits",
            replicas=self.replicas,
            max_queue_length=self.max_queue_length,
            max_buckets=self.max_buckets,
            redis_timeout_seconds=self.redis_timeout_seconds,
            redis_max_in_flight=self.redis_max_in_flight,
        )


def _group(name: str, raw: Any, known: frozenset[str]) -> GroupLimit:
    where = f"limits.groups.{name}"
    rate = Limit.parse(where, raw, frozenset({"operations"}))
    ops = raw.get("operations", [])
    if not isinstance(ops, list) or not all(isinstance(o, str) for o in ops):
        _fail(f"{where}.operations must be a list of operation names")
    for op in ops:
        if op not in known:
            _fail(f"{where}.operations: {op} is not an operation")
    return GroupLimit(rate.rate, rate.burst, tuple(ops))


@dataclass(frozen=True)
class RetryConfig:
    """`[retry]`: the gateway's one retry loop (botocore's own retries are off)."""

    enabled: bool = True
    #: Attempts per call, the first included (Google SRE: three; botocore standard: 3).
    max_attempts: int = 3
    #: Full jitter: retry n waits uniform(0, min(max_backoff, base * 2^(n-1))).
    base_backoff_seconds: float = 0.025
    #: The base after a throttle (the admission stage also paces the retry by the new rate).
    throttle_backoff_seconds: float = 0.05
    max_backoff_seconds: float = 1.0
    #: AWS's Retry-After / x-amz-retry-after is waited for up to this long; beyond it, or
    #: beyond the caller's deadline, the error goes back to the caller at once.
    max_retry_after_seconds: float = 5.0
    #: An attempt of an idempotent operation still unanswered after its timeout is abandoned
    #: and retried, but only when a retry can follow (attempts, budget, and the deadline
    #: leaves room for one more attempt): otherwise it keeps the whole remaining deadline.
    #: The timeout follows the measured latency (AWS Builders' Library):
    #: `attempt_timeout_factor` times the `attempt_timeout_percentile` of the operation's
    #: last `attempt_timeout_window` attempts, at least `min_attempt_timeout_seconds`; until
    #: `attempt_timeout_min_samples` are measured, at least `attempt_timeout_seconds`
    #: (conservative). 0 turns per-attempt timeouts off (attempts get all the time).
    attempt_timeout_seconds: float = 3.0
    attempt_timeout_percentile: float = 99.9
    attempt_timeout_factor: float = 2.0
    min_attempt_timeout_seconds: float = 1.0
    attempt_timeout_min_samples: int = 100
    attempt_timeout_window: int = 1000
    #: Retry budget per AWS service: each call deposits `budget_ratio` tokens and the
    #: budget also refills at `budget_min_per_second`; a retry spends one token; at most
    #: `budget_max_tokens` are saved up. So retries add at most ~10% load in an outage.
    budget_ratio: float = 0.1
    budget_min_per_second: float = 1.0
    budget_max_tokens: float = 10.0

    def __post_init__(self) -> None:
        _positive(
            "retry",
            max_attempts=self.max_attempts,
            attempt_timeout_min_samples=self.attempt_timeout_min_samples,
            attempt_timeout_window=self.attempt_timeout_window,
        )
        if not 0 < self.attempt_timeout_percentile <= 100:
            _fail(
                "retry.attempt_timeout_percentile must be in (0, 100], "
                f"got {self.attempt_timeout_percentile}"
            )
        if self.attempt_timeout_factor < 1:
            _fail(f"retry.attempt_timeout_factor must be >= 1, got {self.attempt_timeout_factor}")
        _non_negative(
            "retry",
            min_attempt_timeout_seconds=self.min_attempt_timeout_seconds,
            base_backoff_seconds=self.base_backoff_seconds,
            throttle_backoff_seconds=self.throttle_backoff_seconds,
            max_backoff_seconds=self.max_backoff_seconds,
            max_retry_after_seconds=self.max_retry_after_seconds,
            attempt_timeout_seconds=self.attempt_timeout_seconds,
            budget_ratio=self.budget_ratio,
            budget_min_per_second=self.budget_min_per_second,
            budget_max_tokens=self.budget_max_tokens,
        )


@dataclass(frozen=True)
class BreakerConfig:
    """`[breaker]`: one circuit breaker per AWS service."""

    enabled: bool = True
    #: Opens when, within one window, at least `min_calls` calls were made and at least
    #: `failure_ratio` of them failed (5xx, connection errors, slow timeouts)...
    window_seconds: float = 10.0
    min_calls: int = 20
    failure_ratio: float = 0.5
    #: ...or after this many failures in a row.
    consecutive_failures: int = 10
    #: Open this long, then one probe call is let through; a failed probe doubles the time.
    open_seconds: float = 5.0
    max_open_seconds: float = 60.0
    #: A timeout counts as a failure only when the attempt had at least this long: a slow
    #: upstream, not a caller with a tight deadline.
    slow_timeout_seconds: float = 1.0

    def __post_init__(self) -> None:
        _positive(
            "breaker",
            window_seconds=self.window_seconds,
            min_calls=self.min_calls,
            consecutive_failures=self.consecutive_failures,
            open_seconds=self.open_seconds,
        )
        _non_negative("breaker", slow_timeout_seconds=self.slow_timeout_seconds)
        if not 0 < self.failure_ratio <= 1:
            _fail(f"breaker.failure_ratio must be in (0, 1], got {self.failure_ratio}")
        if self.max_open_seconds < self.open_seconds:
            _fail("breaker.max_open_seconds must be >= breaker.open_seconds")
