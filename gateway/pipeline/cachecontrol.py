"""The caching metadata: `cache-control` on requests (as HTTP, RFC 9111), `mlgw-*` on answers.

Understood directives (case-insensitive, comma-separated; others are ignored, as in HTTP):

- `no-cache`: do not answer from the cache; ask the upstream and store its answer.
- `no-store`: neither answer from nor store into the cache.
- `max-age=N`: accept a cached answer only if it is at most N seconds old (N may have a
  fraction). `max-age=0` is `no-cache`. A malformed N counts as 0: never a staler answer
  than the caller allowed.

A request directive only ever narrows what the cache may serve; it never extends the
configured TTL or grace.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

#: The request metadata key (gRPC metadata keys are lower case).
HEADER = "cache-control"

# Response (trailing) metadata, set only on operations the caching stages handle:
#: `hit` (fresh, from the cache), `miss` (asked the upstream), `stale` (expired, see
#: `mlgw-cache-stale`) or `bypass` (`no-store`: the cache was not consulted).
CACHE = "mlgw-cache"
#: On a hit or stale answer: `local` (this process) or `shared` (Redis).
TIER = "mlgw-cache-tier"
#: On a hit or stale answer: seconds since the upstream produced it (millisecond precision).
AGE = "mlgw-cache-age"
#: On a stale answer: `while-revalidate` (a background refresh runs) or `if-error` (the
#: upstream throttled or failed, its error is hidden).
STALE = "mlgw-cache-stale"
#: `true` when the answer came from an identical request's upstream call.
COALESCED = "mlgw-coalesced"
#: The number of requests that shared the upstream call, when more than one (merging).
MERGED = "mlgw-merged"


@dataclass(frozen=True, slots=True)
class Directives:
    no_cache: bool = False
    no_store: bool = False
    max_age: float | None = None


NONE = Directives()


@lru_cache(maxsize=512)
def parse(value: str) -> Directives:
    """The directives of one `cache-control` value (memoised: callers repeat themselves)."""
    no_cache = no_store = False
    max_age: float | None = None
    for raw in value.split(","):
        name, _, argument = raw.strip().partition("=")
        name = name.strip().lower()
        if name == "no-cache":
            no_cache = True
        elif name == "no-store":
            no_store = True
        elif name == "max-age":
            seconds = _seconds(argument)
            max_age = seconds if max_age is None else min(max_age, seconds)
    if max_age == 0.0:
        no_cache = True
    return Directives(no_cache, no_store, max_age)


def _seconds(argument: str) -> float:
    try:
        seconds = float(argument.strip().strip('"'))
    except ValueError:
        return 0.0
    if math.isnan(seconds) or seconds < 0:
        return 0.0
    return seconds
