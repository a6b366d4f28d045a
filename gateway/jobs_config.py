"""`[jobs]`: batch jobs as long-running operations (gateway/jobs/, README "Batch jobs as
long-running operations")."""

from __future__ import annotations

import os
from dataclasses import field
from pathlib import Path

from pydantic import model_validator

from gateway.schema import Count, Factor, NonNegativeCount, Seconds, Text, invalid, settings


def _default_state_dir() -> str:
    # XDG's place for state that should survive restarts, so `gateway serve` needs no setup.
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return str(Path(base) / "mlgw-gateway")


#: The backends a job runs on, by botocore service name.
BACKENDS = ("personalize", "machinelearning", "bedrock")


@settings
class JobsConfig:
    #: Where the embedded (SQLite) job store lives; unused when `[redis] url` is set.
    state_dir: Text = field(default_factory=_default_state_dir)
    #: Jobs that may be pending or running upstream at once, per backend (counted from the
    #: backend's own listing, so jobs others created count too). 0: no limit of ours; the
    #: backend's quota error (ServiceQuotaExceededException, LimitExceededException) still
    #: keeps a job queued. Personalize's default quota is 5.
    max_active: dict[str, NonNegativeCount] = field(
        default_factory=lambda: {"personalize": 5, "machinelearning": 0, "bedrock": 0}
    )
    #: A job's poller asks the backend after this long, then each wait grows by the
    #: multiplier up to the maximum (python-api-core polls 1 s, x1.5, at most 20 s).
    poll_initial_seconds: Seconds = 1.0
    poll_multiplier: Factor = 1.5
    poll_max_seconds: Seconds = 20.0
    #: While jobs are queued, the backend's in-flight count is re-read this often, so a slot
    #: that frees upstream is used within one interval.
    dispatch_interval_seconds: Seconds = 1.0
    #: One replica (or worker) at a time submits a backend's queue; its lease lasts this long
    #: and is renewed each round, so a dead holder's queue moves on after at most this.
    lease_seconds: Seconds = 10.0
    #: Finished operations are forgotten this long after they end (AIP-151: about 30 days).
    retention_seconds: Seconds = 30 * 86400.0
    #: The bound of each internal upstream call (create, describe, list, stop).
    upstream_timeout_seconds: Seconds = 30.0
    #: The bound of each command to the Redis job store.
    store_timeout_seconds: Seconds = 2.0
    #: Every Redis key of the job store starts with this (replicas sharing a queue share it).
    key_prefix: Text = "mlgw:jobs:"
    #: The longest one WaitOperation blocks (AIP-151: it may return before the job is done;
    #: a caller that wants more waits again).
    max_wait_seconds: Seconds = 300.0
    #: ListOperations page size when the caller asks for none, and the most it may ask for.
    max_page_size: Count = 1000

    @model_validator(mode="after")
    def _known_backends(self) -> JobsConfig:
        for name in self.max_active:
            if name not in BACKENDS:
                raise invalid(f"max_active.{name}", name, f"not a backend ({', '.join(BACKENDS)})")
        if self.poll_max_seconds < self.poll_initial_seconds:
            raise invalid(
                "poll_max_seconds",
                self.poll_max_seconds,
                f"must be >= poll_initial_seconds ({self.poll_initial_seconds:g})",
            )
        return self

    def limit(self, backend: str) -> int:
        return self.max_active.get(backend, 0)
