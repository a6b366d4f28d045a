"""Prometheus metrics, with label children bound once per operation.

Looking up a labelled child costs a lock and a dict walk; the hot path instead holds the
children it needs (`RequestMetrics`, `UpstreamOutcomes`), so recording is a few attribute
calls per request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from gateway.errors import GatewayError

REGISTRY = CollectorRegistry(auto_describe=True)

# Sub-millisecond buckets: cache hits are answered in well under a millisecond.
_LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip

REQUESTS = Counter(
    "mlgw_requests", "RPCs answered, by method and gRPC code.", ["method", "code"],
    registry=REGISTRY,
)  # fmt: skip
REQUEST_SECONDS = Histogram(
    "mlgw_request_duration_seconds", "Time from RPC start to answer, by method.", ["method"],
    buckets=_LATENCY_BUCKETS, registry=REGISTRY,
)  # fmt: skip
IN_FLIGHT = Gauge(
    "mlgw_in_flight_requests", "RPCs being served now, by method.", ["method"],
    registry=REGISTRY,
)  # fmt: skip
UPSTREAM_CALLS = Counter(
    "mlgw_upstream_calls", "Calls to AWS, by operation and outcome.", ["operation", "outcome"],
    registry=REGISTRY,
)  # fmt: skip


@dataclass
class RequestMetrics:
    """The children one RPC method records into."""

    method: str
    latency: Histogram = field(init=False)
    in_flight: Gauge = field(init=False)
    _codes: dict[grpc.StatusCode, Counter] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.latency = REQUEST_SECONDS.labels(self.method)
        self.in_flight = IN_FLIGHT.labels(self.method)

    def code(self, code: grpc.StatusCode) -> Counter:
        child = self._codes.get(code)
        if child is None:
            child = self._codes[code] = REQUESTS.labels(self.method, code.name)
        return child


@dataclass
class UpstreamOutcomes:
    operation: str
    ok: Counter = field(init=False)
    cancelled: Counter = field(init=False)
    _errors: dict[str, Counter] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.ok = UPSTREAM_CALLS.labels(self.operation, "ok")
        self.cancelled = UPSTREAM_CALLS.labels(self.operation, "cancelled")

    def for_error(self, error: GatewayError) -> Counter:
        # Reasons come from the fixed error table, so the label set stays bounded.
        outcome = error.reason.lower()
        child = self._errors.get(outcome)
        if child is None:
            child = self._errors[outcome] = UPSTREAM_CALLS.labels(self.operation, outcome)
        return child


@cache
def request_metrics(method: str) -> RequestMetrics:
    return RequestMetrics(method)


@cache
def upstream_outcomes(operation: str) -> UpstreamOutcomes:
    return UpstreamOutcomes(operation)


def exposition() -> bytes:
    return generate_latest(REGISTRY)
