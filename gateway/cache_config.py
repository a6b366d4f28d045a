"""Settings of the caching stages: `[cache]`, `[coalesce]`, `[merge]` and `[redis]`.

Each is a section of the gateway's TOML file (see `gateway.config.Config`); every key has a
default, and README.md ("Caching") documents them. Values are checked here, so a negative
TTL or a TTL for an operation that is never cached is a start-up error, not a surprise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def _fail(message: str) -> None:
    from gateway.config import ConfigError  # here: gateway.config imports this module

    raise ConfigError(message)


def _non_negative(where: str, **values: float) -> None:
    for name, value in values.items():
        if value < 0:
            _fail(f"{where}.{name} must be >= 0, got {value}")


def _ttl_table(where: str, table: dict[str, Any], known: frozenset[str] | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, value in table.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            _fail(f"{where}.{name} must be a number of seconds >= 0, got {value!r}")
        if known is not None and name not in known:
            _fail(f"{where}: {name} is not a cached operation ({', '.join(sorted(known))})")
        out[name] = float(value)
    return out


def _cached_operations() -> frozenset[str]:
    from gateway.operations import OPERATIONS

    return frozenset(op.name for op in OPERATIONS if op.cache is not None)


@dataclass(frozen=True)
class CacheConfig:
    """`[cache]`: the in-process tier (L1), the shared tier's use (L2), TTLs and grace."""

    enabled: bool = True
    #: L1 bounds: whichever is reached first evicts the least recently used entries.
    max_entries: int = 100_000
    #: Counted as serialized response bytes plus key bytes plus a fixed per-entry overhead.
    max_bytes: int = 64 << 20
    #: Answers for a user (a `personal` member such as userId is set).
    user_ttl_seconds: float = 10.0
    #: Answers without a user (popular items, related items): the same for everyone.
    shared_ttl_seconds: float = 60.0
    #: Job descriptions (DescribeBatchInferenceJob, GetBatchPrediction, GetModelInvocationJob).
    job_ttl_seconds: float = 5.0
    #: Per operation name; overrides the three above. 0 means "do not cache".
    ttl_by_operation: dict[str, float] = field(default_factory=dict)
    #: Per campaign / recommender / job ARN; overrides everything else. 0: do not cache.
    ttl_by_resource: dict[str, float] = field(default_factory=dict)
    #: After the TTL: an expired entry is still served while one background refresh runs.
    stale_while_revalidate_seconds: float = 5.0
    #: After the TTL: an entry is served when the upstream throttles, fails or sheds.
    stale_if_error_seconds: float = 60.0
    #: ResourceNotFound is remembered this long (0 disables negative caching).
    negative_ttl_seconds: float = 2.0
    #: A background refresh (stale-while-revalidate) gives up after this long.
    revalidate_timeout_seconds: float = 5.0
    #: Use the shared tier when `[redis] url` is set.
    shared: bool = True
    #: Redis key prefix. Give each AWS account/region (and each test) its own.
    key_prefix: str = "mlgw:cache:v1:"

    def __post_init__(self) -> None:
        _non_negative(
            "cache",
            max_entries=self.max_entries,
            max_bytes=self.max_bytes,
            user_ttl_seconds=self.user_ttl_seconds,
            shared_ttl_seconds=self.shared_ttl_seconds,
            job_ttl_seconds=self.job_ttl_seconds,
            stale_while_revalidate_seconds=self.stale_while_revalidate_seconds,
            stale_if_error_seconds=self.stale_if_error_seconds,
            negative_ttl_seconds=self.negative_ttl_seconds,
            revalidate_timeout_seconds=self.revalidate_timeout_seconds,
        )
        by_op = _ttl_table("cache.ttl_by_operation", self.ttl_by_operation, _cached_operations())
        by_res = _ttl_table("cache.ttl_by_resource", self.ttl_by_resource, None)
        object.__setattr__(self, "ttl_by_operation", by_op)
        object.__setattr__(self, "ttl_by_resource", by_res)


@dataclass(frozen=True)
class CoalesceConfig:
    """`[coalesce]`: identical requests in flight share one upstream call."""

    enabled: bool = True


@dataclass(frozen=True)
class MergeConfig:
    """`[merge]`: compatible requests arriving within the window share one upstream call."""

    #: How long the first request of a batch waits for company. 0 disables merging.
    window_ms: float = 2.0

    def __post_init__(self) -> None:
        _non_negative("merge", window_ms=self.window_ms)


@dataclass(frozen=True)
class RedisConfig:
    """`[redis]`: the connection the shared cache tier uses (one client per process)."""

    #: e.g. "redis://127.0.0.1:6379/0"; empty: no Redis, the cache is in-process only.
    url: str = ""
    #: Every command's bound: a slower Redis counts as a miss, never as added latency.
    timeout_seconds: float = 0.01
    connect_timeout_seconds: float = 0.05
    #: After a failure Redis is not asked again for this long (a dead Redis costs ~nothing).
    failure_cooldown_seconds: float = 5.0
    #: Commands in flight at once; beyond it a lookup is a miss instead of a queue.
    max_connections: int = 64

    def __post_init__(self) -> None:
        _non_negative(
            "redis",
            timeout_seconds=self.timeout_seconds,
            connect_timeout_seconds=self.connect_timeout_seconds,
            failure_cooldown_seconds=self.failure_cooldown_seconds,
        )
        if self.max_connections < 1:
            _fail("redis.max_connections must be >= 1")
