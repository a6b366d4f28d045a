"""Prometheus metrics, with label children bound once per operation.

Looking up a labelled child costs a lock and a dict walk; the hot path instead holds the
children it needs (`RequestMetrics`, `UpstreamOutcomes`), so recording is a few attribute
calls per request.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

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


# ---- caching stages (gateway/pipeline/cache.py, shared.py, coalesce.py, merge.py) --------
#
# A cache hit is the cheapest request there is, so its counters are plain ints on a slotted
# object (an increment is ~50 ns, a prometheus_client child ~1.5 µs: it takes a lock) and a
# collector turns them into counters at scrape time. One event loop owns both the stages
# and the scrape, so no lock is needed.

CACHE_BYTES = Gauge(
    "mlgw_cache_bytes", "Bytes held by the in-process cache (serialized size plus overhead).",
    registry=REGISTRY,
)  # fmt: skip
CACHE_ENTRIES = Gauge(
    "mlgw_cache_entries", "Entries held by the in-process cache.", registry=REGISTRY
)
CACHE_EVICTIONS = Counter(
    "mlgw_cache_evictions", "In-process cache entries evicted to stay within its bounds.",
    registry=REGISTRY,
)  # fmt: skip
CACHE_SHARED_FAILURES = Counter(
    "mlgw_cache_shared_failures",
    "Shared tier (Redis) commands that failed (error: starts a cooldown) or that a caller "
    "stopped waiting for (timeout: a miss, not a verdict on Redis), by kind.",
    ["kind"], registry=REGISTRY,
)  # fmt: skip
CACHE_SHARED_SKIPPED = Counter(
    "mlgw_cache_shared_skipped",
    "Shared tier lookups or writes skipped (cooling down after a failure, or at capacity).",
    registry=REGISTRY,
)  # fmt: skip


class CacheMetrics:
    """What the caching stages count for one operation (see `_CacheCollector`)."""

    __slots__ = (
        "bypass", "coalesced", "hit_local", "hit_shared", "merged", "merged_calls", "miss",
        "negative", "operation", "stale_error", "stale_revalidate",
    )  # fmt: skip

    def __init__(self, operation: str) -> None:
        self.operation = operation
        self.hit_local = 0
        self.hit_shared = 0
        self.miss = 0
        self.bypass = 0
        self.negative = 0
        #: Expired answers served while one refresh runs / because the upstream failed.
        self.stale_revalidate = 0
        self.stale_error = 0
        #: Requests that joined an identical request's upstream call.
        self.coalesced = 0
        #: Requests answered by a merged call, and the merged upstream calls made for them.
        self.merged = 0
        self.merged_calls = 0


_CACHE_METRICS: dict[str, CacheMetrics] = {}


def cache_metrics(operation: str) -> CacheMetrics:
    found = _CACHE_METRICS.get(operation)
    if found is None:
        found = _CACHE_METRICS[operation] = CacheMetrics(operation)
    return found


class _CacheCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        lookups = CounterMetricFamily(
            "mlgw_cache_lookups",
            "Cache lookups of cached operations, by result (hit, miss, stale, negative, "
            "bypass) and tier (local, shared, none).",
            labels=["operation", "result", "tier"],
        )
        stale = CounterMetricFamily(
            "mlgw_cache_stale_served",
            "Expired answers served, by reason (while_revalidate, if_error).",
            labels=["operation", "reason"],
        )
        coalesced = CounterMetricFamily(
            "mlgw_coalesced_requests",
            "Requests that shared an identical request's upstream call.",
            labels=["operation"],
        )
        merged = CounterMetricFamily(
            "mlgw_merged_requests",
            "Requests answered by an upstream call merged with other requests.",
            labels=["operation"],
        )
        saved = CounterMetricFamily(
            "mlgw_upstream_calls_saved",
            "Upstream calls not made, by what saved them (cache, coalesce, merge).",
            labels=["operation", "by"],
        )
        for op, m in sorted(_CACHE_METRICS.items()):
            for result, tier, value in (
                ("hit", "local", m.hit_local),
                ("hit", "shared", m.hit_shared),
                ("miss", "none", m.miss),
                ("bypass", "none", m.bypass),
                ("negative", "local", m.negative),
                ("stale", "any", m.stale_revalidate + m.stale_error),
            ):
                lookups.add_metric([op, result, tier], value)
            stale.add_metric([op, "while_revalidate"], m.stale_revalidate)
            stale.add_metric([op, "if_error"], m.stale_error)
            coalesced.add_metric([op], m.coalesced)
            merged.add_metric([op], m.merged)
            by_cache = m.hit_local + m.hit_shared + m.negative + m.stale_revalidate
            saved.add_metric([op, "cache"], by_cache)
            saved.add_metric([op, "coalesce"], m.coalesced)
            saved.add_metric([op, "merge"], m.merged - m.merged_calls)
        yield from (lookups, stale, coalesced, merged, saved)


REGISTRY.register(_CacheCollector())


# ---- rate limits and overload (gateway/pipeline/admission.py, retry.py, breaker.py) ------
#
# Admitted calls on the fast path record nothing: the bucket state (tokens, rate, waiting)
# is read at scrape time by `_LimitsCollector`. Waits, rejections, throttles and retries
# are the slow path and use ordinary children, bound once per operation.

_WAIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

ADMISSION_WAIT_SECONDS = Histogram(
    "mlgw_admission_wait_seconds",
    "Time calls that did not find a token at once waited for one, by operation.",
    ["operation"], buckets=_WAIT_BUCKETS, registry=REGISTRY,
)  # fmt: skip
ADMISSION_REJECTIONS = Counter(
    "mlgw_admission_rejections",
    "Calls the limiter turned away (RATE_LIMITED), by operation and reason (deadline, "
    "max_wait, queue_full, displaced, expired).",
    ["operation", "reason"], registry=REGISTRY,
)  # fmt: skip
UPSTREAM_THROTTLES = Counter(
    "mlgw_upstream_throttles", "Throttling answers from AWS, by operation.", ["operation"],
    registry=REGISTRY,
)  # fmt: skip
RATE_DECREASES = Counter(
    "mlgw_rate_limit_decreases",
    "Adaptive rate decreases (one per round trip of throttles), by operation.", ["operation"],
    registry=REGISTRY,
)  # fmt: skip
RETRIES = Counter(
    "mlgw_retries", "Upstream attempts retried, by operation and cause "
    "(throttle, transient, timeout).", ["operation", "cause"], registry=REGISTRY,
)  # fmt: skip
RETRIES_DENIED = Counter(
    "mlgw_retries_denied",
    "Retryable failures returned without a retry, by operation and why (attempts, budget, "
    "deadline, retry_after).", ["operation", "why"], registry=REGISTRY,
)  # fmt: skip
CREATE_CHECKS = Counter(
    "mlgw_create_checks",
    "Checks whether a create that failed ambiguously took effect, by operation and result "
    "(found, absent, failed).", ["operation", "result"], registry=REGISTRY,
)  # fmt: skip
RETRY_BUDGET_TOKENS = Gauge(
    "mlgw_retry_budget_tokens", "Retry budget tokens left, by AWS service.", ["service"],
    registry=REGISTRY,
)  # fmt: skip
BREAKER_STATE = Gauge(
    "mlgw_circuit_breaker_state",
    "Circuit breaker per AWS service: 0 closed, 1 half-open, 2 open.", ["service"],
    registry=REGISTRY,
)  # fmt: skip
BREAKER_TRANSITIONS = Counter(
    "mlgw_circuit_breaker_transitions", "Circuit breaker state changes, by service and state.",
    ["service", "state"], registry=REGISTRY,
)  # fmt: skip
BREAKER_REJECTIONS = Counter(
    "mlgw_circuit_breaker_rejections", "Calls failed fast by an open breaker, by service.",
    ["service"], registry=REGISTRY,
)  # fmt: skip
LIMITS_SHARED_FALLBACK = Gauge(
    "mlgw_rate_limit_shared_fallback",
    "1 while the shared (Redis) buckets are unavailable and this process keeps its local "
    "share of every quota.", registry=REGISTRY,
)  # fmt: skip
LIMITS_SHARED_FAILURES = Counter(
    "mlgw_rate_limit_shared_failures",
    "Shared bucket (Redis) admissions that failed or timed out, by kind.", ["kind"],
    registry=REGISTRY,
)  # fmt: skip


@dataclass
class AdmissionMetrics:
    """The children one operation's admission stage records into."""

    operation: str
    waits: Histogram = field(init=False)
    throttles: Counter = field(init=False)
    decreases: Counter = field(init=False)
    _rejected: dict[str, Counter] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.waits = ADMISSION_WAIT_SECONDS.labels(self.operation)
        self.throttles = UPSTREAM_THROTTLES.labels(self.operation)
        self.decreases = RATE_DECREASES.labels(self.operation)

    def rejected(self, reason: str) -> Counter:
        child = self._rejected.get(reason)
        if child is None:
            child = self._rejected[reason] = ADMISSION_REJECTIONS.labels(self.operation, reason)
        return child


@cache
def admission_metrics(operation: str) -> AdmissionMetrics:
    return AdmissionMetrics(operation)


#: Live admission stages (`gateway.pipeline.admission.Admission`): each has
#: `bucket_states(now)` yielding (subject, tokens, rate, ceiling, waiting).
LIMIT_BUCKETS: weakref.WeakSet[Any] = weakref.WeakSet()


class _LimitsCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        tokens = GaugeMetricFamily(
            "mlgw_rate_limit_tokens",
            "Tokens this process could take now from a bucket (its local share).",
            labels=["bucket"],
        )
        rate = GaugeMetricFamily(
            "mlgw_rate_limit_rate",
            "A bucket's current rate (calls per second, after adaptive decreases).",
            labels=["bucket"],
        )
        ceiling = GaugeMetricFamily(
            "mlgw_rate_limit_ceiling", "A bucket's configured rate (calls per second).",
            labels=["bucket"],
        )  # fmt: skip
        waiting = GaugeMetricFamily(
            "mlgw_admission_waiting", "Calls waiting for a token, by bucket.", labels=["bucket"]
        )
        now = time.monotonic()
        for stage in list(LIMIT_BUCKETS):
            for subject, left, current, top, queued in stage.bucket_states(now):
                tokens.add_metric([subject], left)
                rate.add_metric([subject], current)
                ceiling.add_metric([subject], top)
                waiting.add_metric([subject], queued)
        yield from (tokens, rate, ceiling, waiting)


REGISTRY.register(_LimitsCollector())


# ---- validation and mapping (gateway/pipeline/validate.py, gateway/upstream/mapping.py) ----

UNKNOWN_ENUM_VALUES = Counter(
    "mlgw_unknown_enum_values",
    "AWS answers holding an enum string the pinned model does not know (served as "
    "UNSPECIFIED), by operation and proto field.",
    ["operation", "field"], registry=REGISTRY,
)  # fmt: skip
PRECHECK_REJECTIONS = Counter(
    "mlgw_precheck_rejections",
    "Requests rejected by the cheap checks (sizes, unknown enum numbers) before the cache "
    "key and the full validation, by method.",
    ["method"], registry=REGISTRY,
)  # fmt: skip


def unknown_enum_value(operation: str, field: str) -> None:
    UNKNOWN_ENUM_VALUES.labels(operation, field).inc()


# -- batch jobs as long-running operations (gateway/jobs/) ------------------------------------

JOBS_SUBMITTED = Counter(
    "mlgw_jobs_submitted", "Job operations accepted (not replays), by backend.", ["backend"],
    registry=REGISTRY,
)  # fmt: skip
JOBS_CREATED = Counter(
    "mlgw_jobs_created", "Jobs created (or adopted) upstream by this process, by backend.",
    ["backend"], registry=REGISTRY,
)  # fmt: skip
JOBS_ENDED = Counter(
    "mlgw_jobs_ended", "Job operations finished, by backend and normalized state.",
    ["backend", "state"], registry=REGISTRY,
)  # fmt: skip
JOBS_QUEUED = Gauge(
    "mlgw_jobs_queued", "Jobs waiting for a slot of the backend's quota, by backend.",
    ["backend"], registry=REGISTRY,
)  # fmt: skip
JOB_POLLERS = Gauge(
    "mlgw_job_pollers", "Jobs this process follows now (one poller each).", registry=REGISTRY,
)  # fmt: skip
JOB_POLLS = Counter(
    "mlgw_job_polls", "Describe/Get calls of the job pollers, by backend.", ["backend"],
    registry=REGISTRY,
)  # fmt: skip
# ---- batch and streaming RPCs (gateway/services.py, gateway/fanout.py) ------------------
#
# Entries are counted like cache hits: plain ints per (shape, operation, code) turned into
# counters at scrape time, since a batch of cache hits costs a few microseconds an entry.

BATCH_ENTRIES = Histogram(
    "mlgw_batch_entries", "Entries per batch RPC, by method.", ["method"],
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000), registry=REGISTRY,
)  # fmt: skip
STREAM_IN_FLIGHT = Gauge(
    "mlgw_stream_entries_in_flight",
    "Stream entries read and not yet answered, over every open stream.",
    registry=REGISTRY,
)  # fmt: skip
STREAM_IN_FLIGHT_PER_STREAM = Histogram(
    "mlgw_stream_entries_in_flight_per_stream",
    "Entries in flight in one stream, sampled at each request read.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024), registry=REGISTRY,
)  # fmt: skip
STREAM_BACKPRESSURE_SECONDS = Histogram(
    "mlgw_stream_backpressure_wait_seconds",
    "Time a stream waited, before reading its next request, for an entry to be answered "
    "and written (its in-flight limit reached: the client reads slowly or entries are slow).",
    buckets=(*_WAIT_BUCKETS, 10.0, 30.0), registry=REGISTRY,
)  # fmt: skip


class EntryMetrics:
    """Batch or stream entries of one (shape, operation), by outcome (see `_EntryCollector`)."""

    __slots__ = ("codes", "ok", "operation", "shape")

    def __init__(self, shape: str, operation: str) -> None:
        self.shape = shape
        self.operation = operation
        self.ok = 0
        self.codes: dict[str, int] = {}

    def failed(self, code: grpc.StatusCode) -> None:
        self.codes[code.name] = self.codes.get(code.name, 0) + 1


_ENTRY_METRICS: dict[tuple[str, str], EntryMetrics] = {}


def entry_metrics(shape: str, operation: str) -> EntryMetrics:
    found = _ENTRY_METRICS.get((shape, operation))
    if found is None:
        found = _ENTRY_METRICS[shape, operation] = EntryMetrics(shape, operation)
    return found


class _EntryCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        entries = CounterMetricFamily(
            "mlgw_fanout_entries",
            "Batch and stream entries answered, by shape (batch, stream), operation and gRPC "
            "code of the entry's own result.",
            labels=["shape", "operation", "code"],
        )
        for (shape, op), m in sorted(_ENTRY_METRICS.items()):
            entries.add_metric([shape, op, "OK"], m.ok)
            for code, value in sorted(m.codes.items()):
                entries.add_metric([shape, op, code], value)
        yield entries


REGISTRY.register(_EntryCollector())


@dataclass
class StreamMetrics:
    """What one stream records into (the same children for every stream)."""

    in_flight: Gauge = STREAM_IN_FLIGHT
    per_stream: Histogram = STREAM_IN_FLIGHT_PER_STREAM
    backpressure: Histogram = STREAM_BACKPRESSURE_SECONDS


STREAM = StreamMetrics()


# -- security (gateway/security/) -----------------------------------------------------------

AUTH_REJECTIONS = Counter(
    "mlgw_auth_rejections",
    "RPCs or entries refused by the edge's security checks, by reason "
    "(UNAUTHENTICATED, PERMISSION_DENIED, CALLER_QUOTA_EXCEEDED) and caller name "
    "('' when unauthenticated)",
    ["reason", "caller"],
    registry=REGISTRY,
)


@cache
def auth_rejections(reason: str, caller: str) -> Counter:
    """The child of one (reason, caller): looked up once, as a flood of refusals would pay
    prometheus_client's label lookup on every one. Both label sets are bounded (the reasons
    are the guard's three, the callers the config's)."""
    return AUTH_REJECTIONS.labels(reason, caller)


TLS_RELOADS = Counter(
    "mlgw_tls_reloads",
    "Times the TLS certificate, key or client CA were read again after their files changed",
    registry=REGISTRY,
)
