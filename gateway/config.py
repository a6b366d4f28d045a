"""Configuration: a TOML file over documented defaults.

Every setting has a default, so `gateway serve` runs with no file at all. AWS settings the
SDKs already read from the environment (AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL,
AWS_ENDPOINT_URL_<SERVICE>, the credential chain) are deliberately *not* duplicated here:
left unset, botocore resolves them exactly as for any AWS SDK. Unknown keys are errors, so
a typo never silently falls back to a default.
"""

from __future__ import annotations

import tomllib
from dataclasses import field
from pathlib import Path
from typing import Any

from pydantic import model_validator

from gateway.cache_config import CacheConfig, CoalesceConfig, MergeConfig, RedisConfig
from gateway.jobs_config import JobsConfig
from gateway.limits_config import BreakerConfig, LimitsConfig, RetryConfig
from gateway.schema import (
    Count,
    HttpUrl,
    LogLevel,
    Port,
    Seconds,
    ZeroOrSeconds,
    invalid,
    load,
    settings,
)
from gateway.security_config import AuthConfig, TlsConfig


class ConfigError(ValueError):
    """The configuration file is unreadable or a setting is unknown or not allowed."""


@settings
class ServerConfig:
    host: str = "0.0.0.0"
    port: Port = 50051
    #: Processes sharing the port through SO_REUSEPORT (gRPC Python is GIL-bound per process).
    workers: Count = 1
    #: On SIGTERM: stop accepting, let in-flight calls finish for this long, then exit 0.
    grace_seconds: ZeroOrSeconds = 20.0
    #: Calls beyond this are refused at once with RESOURCE_EXHAUSTED / OVERLOADED (the edge).
    max_concurrent_rpcs: Count = 10_000
    #: The largest request is a 500-item ranking list (~130 KiB); 1 MiB leaves room, no more.
    max_receive_message_bytes: Count = 1 << 20
    max_send_message_bytes: Count = 8 << 20
    #: Per HTTP/2 connection, advertised to clients (which queue beyond it): bounds one
    #: connection's share of the process (rapid-reset hardening). See README "Transport limits".
    max_concurrent_streams: Count = 256
    #: Clients may ping this often at most without data; more gets GOAWAY too_many_pings.
    min_ping_interval_seconds: Seconds = 10.0
    keepalive_time_seconds: Seconds = 60.0
    keepalive_timeout_seconds: Seconds = 20.0
    #: Recycle connections so a load balancer can rebalance; in-flight calls get the grace.
    max_connection_age_seconds: Seconds = 1800.0
    max_connection_age_grace_seconds: ZeroOrSeconds = 30.0
    max_connection_idle_seconds: Seconds = 600.0


@settings
class UpstreamConfig:
    #: None: botocore resolves AWS_REGION / AWS_DEFAULT_REGION / the profile; else us-east-1.
    region: str | None = None
    #: None: botocore resolves AWS_ENDPOINT_URL(_<SERVICE>) or the real AWS endpoint.
    endpoint_url: HttpUrl | None = None
    #: Per botocore service name, e.g. {"personalize-runtime" = "http://127.0.0.1:4566"}.
    endpoints: dict[str, HttpUrl] = field(default_factory=dict)
    #: aiohttp connection pool per service client (botocore's default of 10 starves a gateway).
    max_pool_connections: Count = 256
    connect_timeout_seconds: Seconds = 2.0
    read_timeout_seconds: Seconds = 30.0
    #: Used when the caller set no deadline; at most `max_deadline_seconds` (checked below).
    default_deadline_seconds: Seconds = 10.0
    #: The cap on any caller's deadline.
    max_deadline_seconds: Seconds = 120.0
    #: Kept back from the caller's deadline so the gateway can still answer in time: this
    #: base plus the event loop's recent p99 lateness (gateway/services.py, LoopLag) ...
    deadline_margin_seconds: ZeroOrSeconds = 0.005
    #: ... capped at this. A call with less time than the margin left is answered at once.
    max_deadline_margin_seconds: ZeroOrSeconds = 0.1
    #: A cache miss with less time than this left is answered DEADLINE_EXCEEDED at once
    #: rather than sent: no AWS endpoint answers that fast (gateway/pipeline/budget.py).
    min_upstream_budget_seconds: ZeroOrSeconds = 0.002
    #: Send the runtime operations without botocore's per-call work (gateway/upstream/fastpath.py).
    fast_path: bool = True

    @model_validator(mode="after")
    def _default_within_cap(self) -> UpstreamConfig:
        # A default above the cap would be used uncapped (no caller deadline to cap).
        if self.default_deadline_seconds > self.max_deadline_seconds:
            raise invalid(
                "default_deadline_seconds",
                self.default_deadline_seconds,
                f"must be <= max_deadline_seconds ({self.max_deadline_seconds:g})",
            )
        return self


@settings
class MetricsConfig:
    host: str = "0.0.0.0"
    #: Prometheus /metrics; worker i listens on port + i. 0 disables.
    port: Port = 9464


@settings
class LoggingConfig:
    level: LogLevel = "INFO"


@settings
class BatchConfig:
    """`[batch]`: the batch and streaming RPCs (mlgw.batch.v1; gateway/services.py)."""

    #: A batch RPC with more entries is refused whole with INVALID_ARGUMENT / BATCH_TOO_LARGE.
    max_entries: Count = 1000
    #: Entries of one batch in flight at once: bounds one batch's share of the process; the
    #: rest wait their turn (under the batch's deadline).
    max_concurrency: Count = 64
    #: Entries of one stream read and not yet answered; beyond it the gateway stops reading
    #: the stream's requests until a result is written (flow control reaches the client).
    stream_max_in_flight: Count = 64


@settings
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    upstream: UpstreamConfig = field(default_factory=UpstreamConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    # -- caching stages (gateway/cache_config.py) --
    cache: CacheConfig = field(default_factory=CacheConfig)
    coalesce: CoalesceConfig = field(default_factory=CoalesceConfig)
    merge: MergeConfig = field(default_factory=MergeConfig)
    redis: RedisConfig = field(default_factory=RedisConfig)
    # -- rate limits and overload (gateway/limits_config.py) --
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    retry: RetryConfig = field(default_factory=RetryConfig)
    breaker: BreakerConfig = field(default_factory=BreakerConfig)
    # -- batch jobs as long-running operations (gateway/jobs_config.py) --
    jobs: JobsConfig = field(default_factory=JobsConfig)
    # -- batch and streaming RPCs --
    batch: BatchConfig = field(default_factory=BatchConfig)
    # -- security (gateway/security_config.py): None serves plaintext --
    tls: TlsConfig | None = None
    auth: AuthConfig = field(default_factory=AuthConfig)

    @classmethod
    def load(cls, path: str | Path | None) -> Config:
        if path is None:
            return cls()
        try:
            with open(path, "rb") as handle:
                data = tomllib.load(handle)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config {path}: {exc}") from exc
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Config:
        return load(cls, data, ConfigError)
