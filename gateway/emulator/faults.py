"""Fault injection: latency, errors, connection resets and per-ARN TPS limits.

The configuration is plain data (``FaultConfig``) read from the ``[faults]`` table of
the TOML config or from JSON on the admin API, and written back as the same mapping.
``FaultInjector`` turns it into a per-operation decision on each call. Its random
stream is seeded, so a run with the same config and the same call sequence injects the
same faults.

Keys (all optional; see ``example.toml``)::

    seed = 1                                   # RNG seed for fault sampling
    [latency."*" | latency.<Operation>]        # most specific wins
    fixed_ms = 0.0                             # added to every call
    tail_probability = 0.0                     # chance a call also gets a lognormal tail
    tail_p50_ms / tail_p99_ms                  # the tail's median and 99th percentile, or
    tail_mu / tail_sigma                       # the tail's ln(ms) mean and std deviation
    max_ms = 60000                             # cap on one call's injected delay
    [errors."*" | errors.<Operation>]          # probabilities per error kind, sum <= 1
    InternalServerException / ServiceUnavailable / ThrottlingException / connection_reset,
    or any other AWS error code (answered with the operation's modelled status, else 400)
    [[tps]]                                    # token buckets
    arn = "<resource ARN>" or "*"              # "*": every ARN gets its own bucket
    rate = 50.0                                # tokens per second
    burst = 50.0                               # bucket size (default: rate)
    operations = ["GetRecommendations"]        # default: all operations
"""

from __future__ import annotations

import math
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ERROR_KINDS",
    "Decision",
    "ErrorRates",
    "FaultConfig",
    "FaultConfigError",
    "FaultInjector",
    "LatencySpec",
    "TokenBucket",
    "TpsRule",
]

# Error kinds the injector can produce. ``connection_reset`` closes the socket unanswered.
ERROR_KINDS: tuple[str, ...] = (
    "InternalServerException",
    "ServiceUnavailable",
    "ThrottlingException",
    "connection_reset",
)
# Any other AWS error code (e.g. "AccessDeniedException") is injectable too: it is answered
# with that code and the status the operation's model gives it (400 when unmodelled), so
# every modelled error of every operation can be produced on demand.
_AWS_CODE = re.compile(r"[A-Z][A-Za-z0-9]+")
# z-score of the 99th percentile of a standard normal: p99 = exp(mu + Z99 * sigma).
_Z99 = 2.3263478740408408


class FaultConfigError(ValueError):
    """The fault configuration is malformed; the message says where."""


def _number(raw: Mapping[str, Any], key: str, default: float, where: str) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FaultConfigError(f"{where}.{key} must be a number")
    if value < 0:
        raise FaultConfigError(f"{where}.{key} must be >= 0")
    return float(value)


def _check_keys(raw: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = set(raw) - allowed
    if unknown:
        raise FaultConfigError(f"unknown key(s) in {where}: {sorted(unknown)}")


@dataclass(frozen=True)
class LatencySpec:
    fixed_ms: float = 0.0
    tail_probability: float = 0.0
    tail_mu: float = 0.0
    tail_sigma: float = 0.0
    max_ms: float = 60_000.0

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], where: str) -> LatencySpec:
        allowed = {"fixed_ms", "tail_probability", "tail_mu", "tail_sigma", "tail_p50_ms"}
        _check_keys(raw, allowed | {"tail_p99_ms", "max_ms"}, where)
        prob = _number(raw, "tail_probability", 0.0, where)
        if prob > 1:
            raise FaultConfigError(f"{where}.tail_probability must be <= 1")
        mu = float(raw.get("tail_mu", 0.0))
        sigma = _number(raw, "tail_sigma", 0.0, where)
        if "tail_p50_ms" in raw or "tail_p99_ms" in raw:
            if "tail_mu" in raw or "tail_sigma" in raw:
                raise FaultConfigError(f"{where}: give tail_p50_ms/tail_p99_ms or tail_mu/sigma")
            p50 = _number(raw, "tail_p50_ms", 0.0, where)
            p99 = _number(raw, "tail_p99_ms", p50, where)
            if p50 <= 0 or p99 < p50:
                raise FaultConfigError(f"{where}: need 0 < tail_p50_ms <= tail_p99_ms")
            mu = math.log(p50)
            sigma = (math.log(p99) - mu) / _Z99
        return cls(
            fixed_ms=_number(raw, "fixed_ms", 0.0, where),
            tail_probability=prob,
            tail_mu=mu,
            tail_sigma=sigma,
            max_ms=_number(raw, "max_ms", 60_000.0, where),
        )

    def to_mapping(self) -> dict[str, float]:
        return {
            "fixed_ms": self.fixed_ms,
            "tail_probability": self.tail_probability,
            "tail_mu": self.tail_mu,
            "tail_sigma": self.tail_sigma,
            "max_ms": self.max_ms,
        }

    def sample_ms(self, rng: random.Random) -> float:
        delay = self.fixed_ms
        if self.tail_probability and rng.random() < self.tail_probability:
            delay += rng.lognormvariate(self.tail_mu, self.tail_sigma)
        return min(delay, self.max_ms)


@dataclass(frozen=True)
class ErrorRates:
    rates: tuple[tuple[str, float], ...] = ()

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], where: str) -> ErrorRates:
        unknown = sorted(k for k in raw if k not in ERROR_KINDS and not _AWS_CODE.fullmatch(k))
        if unknown:
            raise FaultConfigError(f"unknown key(s) in {where}: {unknown}")
        rates = tuple((k, _number(raw, k, 0.0, where)) for k in sorted(raw))
        if sum(p for _, p in rates) > 1.0 + 1e-12:
            raise FaultConfigError(f"{where}: error probabilities sum above 1")
        return cls(rates)

    def to_mapping(self) -> dict[str, float]:
        return dict(self.rates)

    def sample(self, rng: random.Random) -> str | None:
        if not self.rates:
            return None
        x = rng.random()
        for kind, p in self.rates:
            if x < p:
                return kind
            x -= p
        return None


@dataclass(frozen=True)
class TpsRule:
    arn: str
    rate: float
    burst: float
    operations: frozenset[str] = frozenset()

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], where: str) -> TpsRule:
        _check_keys(raw, {"arn", "rate", "burst", "operations"}, where)
        arn = raw.get("arn")
        if not isinstance(arn, str) or not arn:
            raise FaultConfigError(f"{where}.arn must be a non-empty string")
        rate = _number(raw, "rate", 0.0, where)
        if rate <= 0:
            raise FaultConfigError(f"{where}.rate must be > 0")
        burst = _number(raw, "burst", rate, where)
        if burst < 1:
            raise FaultConfigError(f"{where}.burst must be >= 1")
        ops = raw.get("operations", [])
        if not isinstance(ops, list) or not all(isinstance(o, str) for o in ops):
            raise FaultConfigError(f"{where}.operations must be a list of operation names")
        return cls(arn=arn, rate=rate, burst=burst, operations=frozenset(ops))

    def to_mapping(self) -> dict[str, Any]:
        out: dict[str, Any] = {"arn": self.arn, "rate": self.rate, "burst": self.burst}
        if self.operations:
            out["operations"] = sorted(self.operations)
        return out


@dataclass(frozen=True)
class FaultConfig:
    seed: int = 0
    latency: Mapping[str, LatencySpec] = field(default_factory=dict)
    errors: Mapping[str, ErrorRates] = field(default_factory=dict)
    tps: tuple[TpsRule, ...] = ()

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> FaultConfig:
        if not isinstance(raw, Mapping):
            raise FaultConfigError("faults must be a table/object")
        _check_keys(raw, {"seed", "latency", "errors", "tps"}, "faults")
        seed = raw.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise FaultConfigError("faults.seed must be an integer")
        latency_raw = raw.get("latency", {})
        errors_raw = raw.get("errors", {})
        tps_raw = raw.get("tps", [])
        if not isinstance(latency_raw, Mapping) or not isinstance(errors_raw, Mapping):
            raise FaultConfigError("faults.latency and faults.errors must be tables keyed by op")
        if not isinstance(tps_raw, list):
            raise FaultConfigError("faults.tps must be an array of tables")
        latency = {}
        for op, spec in latency_raw.items():
            if not isinstance(spec, Mapping):
                raise FaultConfigError(f"faults.latency.{op} must be a table")
            latency[op] = LatencySpec.from_mapping(spec, f"faults.latency.{op}")
        errors = {}
        for op, spec in errors_raw.items():
            if not isinstance(spec, Mapping):
                raise FaultConfigError(f"faults.errors.{op} must be a table")
            errors[op] = ErrorRates.from_mapping(spec, f"faults.errors.{op}")
        tps = []
        for i, rule in enumerate(tps_raw):
            if not isinstance(rule, Mapping):
                raise FaultConfigError(f"faults.tps[{i}] must be a table")
            tps.append(TpsRule.from_mapping(rule, f"faults.tps[{i}]"))
        return cls(seed=seed, latency=latency, errors=errors, tps=tuple(tps))

    def to_mapping(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "latency": {op: s.to_mapping() for op, s in self.latency.items()},
            "errors": {op: s.to_mapping() for op, s in self.errors.items()},
            "tps": [r.to_mapping() for r in self.tps],
        }

    def patched(self, patch: Mapping[str, Any]) -> FaultConfig:
        """A new config: ``patch`` deep-merged over this one (``tps`` is replaced whole)."""
        merged = _deep_merge(self.to_mapping(), patch)
        return FaultConfig.from_mapping(merged)


def _deep_merge(base: dict[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)  # null deletes, so a patch can drop one op's faults
        elif isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


class TokenBucket:
    """Classic token bucket; starts full. Not thread-safe (one event loop owns it)."""

    __slots__ = ("_last", "_now", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: float, now: Callable[[], float]) -> None:
        self.rate = rate
        self.burst = burst
        self._now = now
        self._tokens = burst
        self._last = now()

    def take(self) -> bool:
        t = self._now()
        tokens = min(self.burst, self._tokens + (t - self._last) * self.rate)
        self._last = t
        if tokens >= 1.0:
            self._tokens = tokens - 1.0
            return True
        self._tokens = tokens
        return False


@dataclass(frozen=True)
class Decision:
    """What to do to one call: throttle it, delay it, then maybe fail it."""

    throttled: bool = False
    delay_s: float = 0.0
    error: str | None = None


_NO_FAULT = Decision()


class FaultInjector:
    def __init__(
        self, config: FaultConfig, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._monotonic = monotonic
        self.config = config
        self._rng = random.Random(config.seed)
        self._buckets: dict[tuple[int, str], TokenBucket] = {}
        # Resolved per operation on first use: (latency, errors, [(rule index, rule)]).
        self._per_op: dict[str, tuple[LatencySpec | None, ErrorRates | None, list[Any]]] = {}

    def _resolve(self, op: str) -> tuple[LatencySpec | None, ErrorRates | None, list[Any]]:
        cfg = self.config
        latency = cfg.latency.get(op, cfg.latency.get("*"))
        errors = cfg.errors.get(op, cfg.errors.get("*"))
        rules = [(i, r) for i, r in enumerate(cfg.tps) if not r.operations or op in r.operations]
        resolved = (latency, errors if errors and errors.rates else None, rules)
        self._per_op[op] = resolved
        return resolved

    def decide(self, op: str, arn: str | None) -> Decision:
        resolved = self._per_op.get(op)
        if resolved is None:
            resolved = self._resolve(op)
        latency, errors, rules = resolved
        if not (latency or errors or rules):
            return _NO_FAULT
        if arn is not None:
            for i, rule in rules:
                if rule.arn != "*" and rule.arn != arn:
                    continue
                bucket = self._buckets.get((i, arn))
                if bucket is None:
                    bucket = TokenBucket(rule.rate, rule.burst, self._monotonic)
                    self._buckets[(i, arn)] = bucket
                if not bucket.take():
                    return Decision(throttled=True)
        delay = latency.sample_ms(self._rng) / 1000.0 if latency is not None else 0.0
        error = errors.sample(self._rng) if errors is not None else None
        if not delay and error is None:
            return _NO_FAULT
        return Decision(delay_s=delay, error=error)
