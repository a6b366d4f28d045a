"""Configuration: a TOML file over documented defaults.

Every setting has a default, so `gateway serve` runs with no file at all. AWS settings the
SDKs already read from the environment (AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL,
AWS_ENDPOINT_URL_<SERVICE>, the credential chain) are deliberately *not* duplicated here:
left unset, botocore resolves them exactly as for any AWS SDK. Unknown keys are errors, so
a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.cache_config import CacheConfig, CoalesceConfig, MergeConfig, RedisConfig
from gateway.limits_config import BreakerConfig, LimitsConfig, RetryConfig


class ConfigError(ValueError):
    """The configuration file is unreadable or names an unknown or mistyped setting."""


@dataclass(frozen=True)
class ServerConfig:
    host: str = "0.0.0.0"
    port: int = 50051
    #: Processes sharing the port through SO_REUSEPORT (gRPC Python is GIL-bound per process).
    workers: int = 1
    #: On SIGTERM: stop accepting, let in-flight calls finish for this long, then exit 0.
    grace_seconds: float = 20.0
    #: Calls beyond this are refused at once with RESOURCE_EXHAUSTED / OVERLOADED (the edge).
    max_concurrent_rpcs: int = 10_000
    #: The largest request is a 500-item ranking list (~130 KiB); 1 MiB leaves room, no more.
    max_receive_message_bytes: int = 1 << 20
    max_send_message_bytes: int = 8 << 20
    #: Per HTTP/2 connection, advertised to clients (which queue beyond it): bounds one
    #: connection's share of the process (rapid-reset hardening). See README "Transport limits".
    max_concurrent_streams: int = 256
    #: Clients may ping this often at most without data; more gets GOAWAY too_many_pings.
    min_ping_interval_seconds: float = 10.0
    keepalive_time_seconds: float = 60.0
    keepalive_timeout_seconds: float = 20.0
    #: Recycle connections so a load balancer can rebalance; in-flight calls get the grace.
    max_connection_age_seconds: float = 1800.0
    max_connection_age_grace_seconds: float = 30.0
    max_connection_idle_seconds: float = 600.0


@dataclass(frozen=True)
class UpstreamConfig:
    #: None: botocore resolves AWS_REGION / AWS_DEFAULT_REGION / the profile; else us-east-1.
    region: str | None = None
    #: None: botocore resolves AWS_ENDPOINT_URL(_<SERVICE>) or the real AWS endpoint.
    endpoint_url: str | None = None
    #: Per botocore service name, e.g. {"personalize-runtime" = "http://127.0.0.1:4566"}.
    endpoints: dict[str, str] = field(default_factory=dict)
    #: aiohttp connection pool per service client (botocore's default of 10 starves a gateway).
    max_pool_connections: int = 256
    connect_timeout_seconds: float = 2.0
    read_timeout_seconds: float = 30.0
    #: Used when the caller set no deadline, and the cap on any caller's deadline.
    default_deadline_seconds: float = 10.0
    max_deadline_seconds: float = 120.0
    #: Kept back from the caller's deadline so the gateway can still answer in time: this
    #: base plus the event loop's recent p99 lateness (gateway/services.py, LoopLag) ...
    deadline_margin_seconds: float = 0.005
    #: ... capped at this. A call with less time than the margin left is answered at once.
    max_deadline_margin_seconds: float = 0.1
    #: Send the runtime operations without botocore's per-call work (gateway/upstream/fastpath.py).
    fast_path: bool = True


@dataclass(frozen=True)
class MetricsConfig:
    host: str = "0.0.0.0"
    #: Prometheus /metrics; worker i listens on port + i. 0 disables.
    port: int = 9464


@dataclass(frozen=True)
class LoggingConfig:
    level: str = "INFO"


@dataclass(frozen=True)
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
        config: Config = _build(cls, data, "")
        return config


def _build(kind: type[Any], data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"[{where}] must be a table")
    hints = typing.get_type_hints(kind)
    known = {f.name for f in dataclasses.fields(kind)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"unknown setting(s) in [{where or 'top level'}]: {', '.join(unknown)}")
    values = {}
    for name, value in data.items():
        key = f"{where}.{name}" if where else name
        values[name] = _coerce(hints[name], value, key)
    return kind(**values)


def _coerce(hint: Any, value: Any, key: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return _build(typing.cast(type[Any], hint), value, key)
    allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    for option in allowed:
        origin = typing.get_origin(option) or option
        if option is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if origin is type(None) and value is None:
            return None
        if isinstance(value, origin) and not (origin is int and isinstance(value, bool)):
            return value
    raise ConfigError(f"{key} must be {hint}, got {type(value).__name__}")
