"""Call counters the admin API reports (per process: with ``--workers`` > 1 each worker
counts its own calls).

A call is counted once it is routed to an operation, before validation, so a caller can
prove from ``calls`` that a request it rejected never reached the "upstream".
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

__all__ = ["Stats"]


class Stats:
    def __init__(self) -> None:
        # Requests running right now: live, so reset() leaves it alone.
        self.in_flight = 0
        self.reset()

    def reset(self) -> None:
        self.calls: defaultdict[str, int] = defaultdict(int)
        self.calls_by_arn: defaultdict[str, defaultdict[str, int]] = defaultdict(
            lambda: defaultdict(int)
        )
        self.abandoned: defaultdict[str, int] = defaultdict(int)
        self.throttled: defaultdict[str, int] = defaultdict(int)
        self.throttled_by_arn: defaultdict[str, defaultdict[str, int]] = defaultdict(
            lambda: defaultdict(int)
        )
        self.injected: defaultdict[str, defaultdict[str, int]] = defaultdict(
            lambda: defaultdict(int)
        )
        self.errors: defaultdict[str, defaultdict[str, int]] = defaultdict(lambda: defaultdict(int))

    def snapshot(self) -> dict[str, Any]:
        return {
            "calls": dict(self.calls),
            "calls_by_arn": {arn: dict(ops) for arn, ops in self.calls_by_arn.items()},
            "abandoned": dict(self.abandoned),
            "in_flight": self.in_flight,
            "throttled": dict(self.throttled),
            "throttled_by_arn": {arn: dict(ops) for arn, ops in self.throttled_by_arn.items()},
            "injected": {op: dict(kinds) for op, kinds in self.injected.items()},
            "errors": {op: dict(codes) for op, codes in self.errors.items()},
        }
