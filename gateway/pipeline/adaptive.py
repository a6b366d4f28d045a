"""Adaptive rates: each admission bucket finds the upstream's real limit from its throttles.

The algorithm is CUBIC (RFC 8312) on a request rate, as botocore's adaptive retry mode
applies it (`botocore/retries/adaptive.py`, `throttling.py`), with its constants, and
two changes for a gateway:

- **Decrease** on an upstream throttle: the rate in use, `min(current rate, measured send
  rate)`, becomes `W_max`, and the rate drops to `BETA * W_max` (`BETA` = 0.7). Only one
  decrease per round trip: a throttle of a call admitted before the last decrease says
  nothing new (it was sent at the old rate), so it is ignored. botocore decreases on every
  throttle, which under a burst of in-flight throttles collapses the rate to its floor.
- **Increase** with time since the last throttle along the cubic curve
  `W(t) = SCALE * (t - K)^3 + W_max`, `K = cbrt(W_max * (1 - BETA) / SCALE)` (`SCALE` =
  0.4): fast back towards `W_max`, flat near it, then probing beyond it. The rate never
  exceeds the configured ceiling (the bucket's rate from config or the operation table).
  botocore also caps it at twice the measured send rate; a gateway must not, because a
  quiet minute would then turn the next burst of callers away.

The send rate is measured like botocore's: admissions counted in windows of at least 0.5 s,
smoothed with an exponential moving average (weight 0.8 on the newest); until one whole
window has been measured the current rate stands in for it (botocore's partial first
bucket can make one early throttle cut the rate to a few per cent). The floor is 0.5 per second
(botocore's minimum fill rate). All times are the caller's clock (the event loop's), so
tests drive this with plain numbers.
"""

from __future__ import annotations

import math

#: Multiplicative decrease (RFC 8312 beta_cubic; botocore `_BETA`).
BETA = 0.7
#: Cubic scale constant C (RFC 8312; botocore `_SCALE_CONSTANT`).
SCALE = 0.4
#: Send-rate measurement: bucket width (seconds) and EMA weight of the newest bucket.
MEASURE_SECONDS = 0.5
SMOOTHING = 0.8
#: The lowest rate a throttle can push a bucket to (botocore `_MIN_FILL_RATE`).
MIN_RATE = 0.5
#: The rate is recomputed from the curve at most this often (it changes slowly).
UPDATE_SECONDS = 0.05


class CubicRate:
    """The adaptive rate of one bucket; `rate` is what the bucket should admit now."""

    __slots__ = (
        "_count", "_k", "_last_throttle", "_next_update", "_w_max", "_window_start",
        "ceiling", "decreases", "epoch", "measured", "rate",
    )  # fmt: skip

    def __init__(self, ceiling: float, now: float) -> None:
        self.ceiling = ceiling
        self.rate = ceiling
        #: Bumped at every decrease; an admission remembers the epoch it was admitted in.
        self.epoch = 0
        self.measured = 0.0
        self.decreases = 0
        self._w_max = ceiling
        self._k = 0.0
        self._last_throttle: float | None = None
        self._count = 0
        self._window_start = now
        self._next_update = now + UPDATE_SECONDS

    def sent(self, now: float) -> float | None:
        """Count one admission; returns the new rate when it changed, else None."""
        self._count += 1
        if now < self._next_update:
            return None
        return self._update(now)

    def _update(self, now: float) -> float | None:
        self._next_update = now + UPDATE_SECONDS
        self._measure(now)
        if self._last_throttle is None:
            return None
        rate = self._curve(now)
        if rate == self.rate:
            return None
        self.rate = rate
        return rate

    def throttled(self, epoch: int, now: float) -> float | None:
        """An upstream throttle of a call admitted in `epoch`; returns the new rate, or None
        when the throttle is stale (the rate was already lowered since that admission)."""
        if epoch != self.epoch:
            return None
        self.epoch += 1
        self.decreases += 1
        self._measure(now)
        in_use = min(self.rate, self.measured) if self.measured > 0 else self.rate
        self._w_max = in_use
        self._k = math.cbrt(in_use * (1 - BETA) / SCALE)
        self._last_throttle = now
        self.rate = max(min(MIN_RATE, self.ceiling), in_use * BETA)
        self._next_update = now + UPDATE_SECONDS
        return self.rate

    def _curve(self, now: float) -> float:
        assert self._last_throttle is not None
        t = now - self._last_throttle
        grown = SCALE * (t - self._k) ** 3 + self._w_max
        return max(min(MIN_RATE, self.ceiling), min(self.ceiling, grown))

    def _measure(self, now: float) -> None:
        elapsed = now - self._window_start
        if elapsed < MEASURE_SECONDS:
            return
        current = self._count / elapsed
        # The first full window is taken as it is: an average with the initial 0 would
        # halve the estimate, and a throttle right then would cut the rate far too deep.
        measured = self.measured
        self.measured = (
            current if measured <= 0 else current * SMOOTHING + measured * (1 - SMOOTHING)
        )
        self._count = 0
        self._window_start = now
