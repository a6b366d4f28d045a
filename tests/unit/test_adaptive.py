"""The adaptive rate (CUBIC): decrease, recovery, ceiling, and discovery of a hidden limit."""

from __future__ import annotations

import heapq
import math

import pytest

from gateway.emulator.faults import TokenBucket
from gateway.limits_config import Limit
from gateway.pipeline.adaptive import BETA, MIN_RATE, SCALE, CubicRate
from gateway.pipeline.admission import Bucket


def send(ctl: CubicRate, per_second: float, seconds: float) -> float:
    """Feed `per_second` admissions for `seconds` from t = 0; returns the time reached."""
    t = 0.0
    for _ in range(int(per_second * seconds)):
        t += 1 / per_second
        ctl.sent(t)
    return t


def test_a_throttle_cuts_the_rate_in_use_by_beta() -> None:
    ctl = CubicRate(ceiling=500, now=0.0)
    t = send(ctl, 100, 2.0)  # sending 100/s under a 500/s ceiling
    assert ctl.measured == pytest.approx(100, rel=0.05)
    assert ctl.throttled(ctl.epoch, t) == pytest.approx(BETA * ctl.measured, rel=0.05)
    assert ctl.decreases == 1


def test_before_a_whole_window_is_measured_the_current_rate_counts() -> None:
    first = CubicRate(ceiling=50, now=0.0)
    first.sent(0.01)
    assert first.throttled(first.epoch, 0.02) == pytest.approx(35)  # not 0.7 * (1 call/s)


def test_one_decrease_per_round_trip() -> None:
    c = CubicRate(ceiling=100, now=0.0)
    epoch = c.epoch
    assert c.throttled(epoch, 0.1) == pytest.approx(70)
    # More throttles of calls admitted before that decrease say nothing new.
    assert c.throttled(epoch, 0.11) is None
    assert c.throttled(epoch, 0.12) is None
    assert c.rate == pytest.approx(70)
    assert c.throttled(c.epoch, 0.2) == pytest.approx(49)


def test_recovery_follows_the_cubic_curve_back_to_w_max_and_never_above_the_ceiling() -> None:
    c = CubicRate(ceiling=100, now=0.0)
    c.throttled(c.epoch, 0.0)  # W_max = 100, rate 70
    k = math.cbrt(100 * (1 - BETA) / SCALE)
    assert c.sent(k / 2) == pytest.approx(SCALE * (k / 2 - k) ** 3 + 100)
    assert c.sent(k) == pytest.approx(100)  # back at W_max after K seconds
    c.sent(k + 5)
    assert c.rate == 100  # the ceiling, not the curve's 150


def test_the_rate_never_falls_below_the_floor() -> None:
    c = CubicRate(ceiling=1.0, now=0.0)
    for i in range(10):
        c.throttled(c.epoch, i * 0.01)
    assert c.rate == MIN_RATE
    tiny = CubicRate(ceiling=0.2, now=0.0)
    tiny.throttled(tiny.epoch, 0.0)
    assert tiny.rate == pytest.approx(0.2)  # a ceiling below the floor stays the floor


def simulate(
    limit: float, ceiling: float, offered: float, seconds: float, rtt: float
) -> tuple[int, int, int]:
    """Open-loop callers at `offered`/s through an adaptive bucket (ceiling `ceiling`) to an
    upstream token bucket of `limit`/s (burst = limit), each call taking `rtt`. Calls that
    find no token are shed (the admission queue only delays them, never adds load).
    Returns (upstream calls, upstream throttles, successes)."""
    clock = [0.0]
    upstream = TokenBucket(limit, limit, lambda: clock[0])
    bucket = Bucket(
        "sim",
        "sim",
        Limit(ceiling, ceiling / 10),
        adaptive=True,
        divisor=1,
        max_queue=1,
        max_wait=0.0,
        remote=None,
        now=0.0,
    )
    events: list[tuple[float, int, str, int]] = []
    for i in range(int(offered * seconds)):
        heapq.heappush(events, (i / offered, i, "arrive", 0))
    calls = throttles = ok = 0
    seq = len(events)
    while events:
        t, _, kind, epoch = heapq.heappop(events)
        clock[0] = t
        if kind == "arrive":
            if not bucket.take_now(t):
                continue
            calls += 1
            # The upstream decides on arrival (half a round trip later); the answer comes
            # back a whole round trip after sending.
            clock[0] = t + rtt / 2
            throttled = not upstream.take()
            seq += 1
            heapq.heappush(events, (t + rtt, seq, "throttled" if throttled else "ok", bucket.epoch))
        elif kind == "throttled":
            throttles += 1
            bucket.throttled(epoch, t)
        else:
            ok += 1
    return calls, throttles, ok


@pytest.mark.parametrize("rtt", [0.002, 0.02, 0.05])
def test_a_hidden_limit_is_found_with_few_throttles(rtt: float) -> None:
    """3x overload against a limit ten times below the ceiling, for 4 s: under 5% of
    upstream calls are throttled, and the limit is still used.

    Discovery costs about (excess rate x round trip) throttles per decrease, so slower
    upstreams pay more up front (100 ms: ~8% of the first 4 s, ~2% over 20 s)."""
    calls, throttles, ok = simulate(limit=50, ceiling=500, offered=150, seconds=4.0, rtt=rtt)
    assert throttles < 0.05 * calls, (calls, throttles)
    assert ok >= 50 * 4.0, ok  # the limit, plus the upstream's initial burst


def test_over_a_longer_overload_throttles_stay_rare_even_with_slow_round_trips() -> None:
    calls, throttles, ok = simulate(limit=50, ceiling=500, offered=150, seconds=20.0, rtt=0.1)
    assert throttles < 0.03 * calls, (calls, throttles)
    assert ok >= 0.95 * 50 * 20.0, ok
