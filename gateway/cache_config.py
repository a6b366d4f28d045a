"""Settings of the caching stages: `[cache]`, `[coalesce]`, `[merge]` and `[redis]`.

Each is a section of the gateway's TOML file (see `gateway.config.Config`); every key has a
default, and README.md ("Caching") documents them. Values are checked by the schema
(`gateway/schema.py`), so a negative TTL or a TTL for an operation that is never cached is
a start-up error, not a surprise.
"""

from __future__ import annotations

from dataclasses import field

from pydantic import model_validator

from gateway.schema import (
    Count,
    NonNegativeCount,
    Number,
    RedisUrl,
    Seconds,
    ZeroOrSeconds,
    invalid,
    settings,
)


def _cached_operations() -> frozenset[str]:
    from gateway.operations import OPERATIONS

    return frozenset(op.name for op in OPERATIONS if op.cache is not None)


@settings
class CacheConfig:
    """`[cache]`: the in-process tier (L1), the shared tier's use (L2), TTLs and grace."""

    enabled: bool = True
    #: L1 bounds: whichever is reached first evicts the least recently used entries.
    max_entries: NonNegativeCount = 100_000
    #: Counted as serialized response bytes plus key bytes plus a fixed per-entry overhead.
    max_bytes: NonNegativeCount = 64 << 20
    #: Answers for a user (a `personal` member such as userId is set).
    user_ttl_seconds: ZeroOrSeconds = 10.0
    #: Answers without a user (popular items, related items): the same for everyone.
    shared_ttl_seconds: ZeroOrSeconds = 60.0
    #: Job descriptions (DescribeBatchInferenceJob, GetBatchPrediction, GetModelInvocationJob).
    job_ttl_seconds: ZeroOrSeconds = 5.0
    #: Per operation name; overrides the three above. 0 means "do not cache".
    ttl_by_operation: dict[str, ZeroOrSeconds] = field(default_factory=dict)
    #: Per campaign / recommender / job ARN; overrides everything else. 0: do not cache.
    ttl_by_resource: dict[str, ZeroOrSeconds] = field(default_factory=dict)
    #: After the TTL: an expired entry is still served while one background refresh runs.
    stale_while_revalidate_seconds: ZeroOrSeconds = 5.0
    #: After the TTL: an entry is served when the upstream throttles, fails or sheds.
    stale_if_error_seconds: ZeroOrSeconds = 60.0
    #: ResourceNotFound is remembered this long (0 disables negative caching).
    negative_ttl_seconds: ZeroOrSeconds = 2.0
    #: A background refresh (stale-while-revalidate) gives up after this long.
    revalidate_timeout_seconds: Seconds = 5.0
    #: Use the shared tier when `[redis] url` is set.
    shared: bool = True
    #: Redis key prefix. Give each AWS account/region (and each test) its own.
    key_prefix: str = "mlgw:cache:v1:"

    @model_validator(mode="after")
    def _cached_names(self) -> CacheConfig:
        known = _cached_operations()
        for name in self.ttl_by_operation:
            if name not in known:
                allowed = f"not a cached operation (known: {', '.join(sorted(known))})"
                raise invalid("ttl_by_operation", name, allowed)
        return self


@settings
class CoalesceConfig:
    """`[coalesce]`: identical requests in flight share one upstream call."""

    enabled: bool = True
    #: With the shared tier on, across replicas too: a miss takes a short Redis lease on
    #: its key; identical misses on other replicas wait for the holder's answer in Redis.
    across_replicas: bool = True
    #: A lease lasts the holder's deadline, at most this long (a holder that died frees
    #: its key by then).
    lease_max_seconds: Seconds = 5.0
    #: How often a waiting replica looks for the answer (first poll; then x1.5, <= 50 ms).
    lease_poll_seconds: Seconds = 0.005
    #: A waiter stops waiting this long before its own deadline and calls the upstream.
    lease_fallback_seconds: ZeroOrSeconds = 0.1


@settings
class MergeConfig:
    """`[merge]`: compatible requests arriving within the window share one upstream call."""

    #: How long the first request of a batch waits for company. 0 disables merging.
    window_ms: Number = 2.0


@settings
class RedisConfig:
    """`[redis]`: how every process reaches Redis (`gateway/redis.py`): one node, TLS,
    Sentinel or Cluster; and the failure policy all its users share."""

    #: e.g. "redis://127.0.0.1:6379/0", "rediss://user@redis:6380/0", "unix:///run/r.sock";
    #: empty: no Redis, the cache is in-process only. With `sentinels` the URL gives the
    #: credentials, TLS and database only; with `cluster` it names any one node.
    #: repr=False: a URL may carry a password, so it is never printed (nor in errors).
    url: RedisUrl = field(default="", repr=False)
    #: An ACL user (overrides the URL's); the password is read from `password_file`.
    username: str = ""
    #: A file holding the password (a mounted Kubernetes Secret); overrides the URL's.
    password_file: str = ""
    #: With rediss://: the CA bundle to verify Redis by, and a client certificate and key.
    tls_ca_file: str = ""
    tls_cert_file: str = ""
    tls_key_file: str = ""
    #: Sentinel: "host:port" of each sentinel, and the name of the master they watch.
    sentinels: list[str] = field(default_factory=list)
    sentinel_master: str = "mymaster"
    #: Redis Cluster: follow MOVED/ASK redirections; keys of one script share a hash slot.
    cluster: bool = False
    #: How long a cache lookup waits: a slower Redis counts as a miss, never added latency.
    timeout_seconds: Seconds = 0.01
    connect_timeout_seconds: Seconds = 0.05
    #: A command unanswered this long (the process's own loop being on time) means Redis
    #: is down; a reply later than `timeout_seconds` but sooner than this is Redis alive.
    unresponsive_seconds: Seconds = 0.5
    #: After a failure Redis is not asked again for this long (a dead Redis costs ~nothing).
    failure_cooldown_seconds: ZeroOrSeconds = 5.0
    #: Commands in flight at once; beyond it a lookup is a miss instead of a queue.
    max_connections: Count = 64

    @model_validator(mode="after")
    def _sentinel_addresses(self) -> RedisConfig:
        for i, address in enumerate(self.sentinels):
            host, _, port = address.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise invalid(f"sentinels.{i}", address, 'must be "host:port"')
        if self.sentinels and self.cluster:
            raise invalid("cluster", True, "cannot be combined with sentinels")
        return self
