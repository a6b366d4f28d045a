"""Shared pieces of the batch-job emulation: clocks, time-driven state, page tokens.

Job state is never advanced by background tasks: every read computes the state from
the time elapsed since creation (``Timeline``), so a test can drive a whole lifecycle by
advancing a ``ManualClock``, and thousands of jobs cost nothing while idle.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = [
    "Clock",
    "InvalidPageToken",
    "ManualClock",
    "Timeline",
    "paginate",
    "stable_int",
    "wall_clock",
]

Clock = Callable[[], float]
"""Returns the current time as epoch seconds (like ``time.time``)."""

T = TypeVar("T")


def wall_clock() -> float:
    return time.time()


class ManualClock:
    """A clock that only moves when told to; inject it to test lifecycles without sleeps."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def stable_int(*parts: str) -> int:
    """A process-independent integer from strings (for record counts and ids)."""
    data = "\x1f".join(parts).encode()
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


@dataclass(frozen=True)
class Timeline:
    """States entered at fixed offsets (seconds) after a start time."""

    start: float
    steps: tuple[tuple[float, str], ...]  # (offset, state), offsets ascending

    def at(self, now: float) -> tuple[str, float]:
        """The state at ``now`` and the time it was entered."""
        elapsed = now - self.start
        state, entered = self.steps[0][1], self.start + self.steps[0][0]
        for offset, name in self.steps:
            if elapsed >= offset:
                state, entered = name, self.start + offset
            else:
                break
        return state, entered

    def entered(self, state: str) -> float | None:
        for offset, name in self.steps:
            if name == state:
                return self.start + offset
        return None


class InvalidPageToken(ValueError):
    """The token is not one we issued for this query."""


def _fingerprint(query: Mapping[str, Any]) -> str:
    canon = json.dumps(query, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.blake2b(canon.encode(), digest_size=6).hexdigest()


def paginate(
    items: Sequence[T],
    key: Callable[[T], list[Any]],
    *,
    token: str | None,
    limit: int,
    query: Mapping[str, Any],
    descending: bool = False,
) -> tuple[list[T], str | None]:
    """One page of ``items`` (already sorted) and the token for the next one.

    The token is opaque to callers: the sort key of the last item returned plus a
    fingerprint of the query. The next page starts after that key (in the direction of
    ``descending``), so it stays valid while jobs are created or change state, and a
    token replayed with different filters is rejected.
    """
    fp = _fingerprint(query)
    start = 0
    if token:
        try:
            raw = json.loads(base64.urlsafe_b64decode(token.encode() + b"==="))
            cursor, token_fp = raw["k"], raw["f"]
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidPageToken("The nextToken is not valid.") from exc
        if token_fp != fp:
            raise InvalidPageToken("The nextToken does not belong to this query.")
        try:
            if descending:
                start = next((n for n, i in enumerate(items) if key(i) < cursor), len(items))
            else:
                start = next((n for n, i in enumerate(items) if key(i) > cursor), len(items))
        except TypeError as exc:  # a cursor of the wrong shape
            raise InvalidPageToken("The nextToken is not valid.") from exc
    page = list(items[start : start + limit])
    if start + limit >= len(items) or not page:
        return page, None
    data = json.dumps({"k": key(page[-1]), "f": fp}, separators=(",", ":")).encode()
    return page, base64.urlsafe_b64encode(data).decode().rstrip("=")
