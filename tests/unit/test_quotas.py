"""A caller over its quota is refused at the least cost: its refusals are a few kept errors,
each serialized once, raised again without the traceback of the last."""

from __future__ import annotations

import traceback

import pytest
from google.rpc import error_details_pb2, status_pb2

from gateway.errors import STATUS_DETAILS_KEY, QuotaExceeded
from gateway.security.identity import Caller
from gateway.security.quotas import Quotas
from gateway.security_config import CallerConfig


def noisy() -> Caller:
    return Caller(CallerConfig(name="noisy", api_keys=("sha256:" + "0" * 64,), rate=100.0))


def retry_delay(error: QuotaExceeded) -> float:
    ((key, value),) = error.trailing_metadata()
    assert key == STATUS_DETAILS_KEY
    status = status_pb2.Status.FromString(value)
    for box in status.details:
        retry = error_details_pb2.RetryInfo()
        if box.Unpack(retry):
            return retry.retry_delay.ToNanoseconds() / 1e9
    raise AssertionError("no RetryInfo")


def test_refusals_within_one_millisecond_of_wait_are_one_error_built_once() -> None:
    quotas, caller = Quotas(None, "", 1), noisy()
    first, second = quotas.exceeded(caller, 0.0041), quotas.exceeded(caller, 0.0049)
    assert first is second
    assert first.trailing_metadata() is second.trailing_metadata()
    assert retry_delay(first) == pytest.approx(0.005)
    later = quotas.exceeded(caller, 0.0051)
    assert later is not first
    assert retry_delay(later) == pytest.approx(0.006)
    # A wait of zero still tells the caller to wait (RetryInfo must be positive).
    assert retry_delay(quotas.exceeded(caller, 0.0)) == pytest.approx(0.001)


def test_a_kept_refusal_raised_again_carries_no_old_traceback() -> None:
    quotas, caller = Quotas(None, "", 1), noisy()
    depths = []
    for _ in range(3):
        try:
            raise quotas.exceeded(caller, 0.002)
        except QuotaExceeded as exc:
            depths.append(len(traceback.extract_tb(exc.__traceback__)))
    assert depths == [1, 1, 1]


def test_the_refusals_kept_per_caller_are_bounded() -> None:
    quotas, caller = Quotas(None, "", 1), noisy()
    for ms in range(1, 2000):
        quotas.exceeded(caller, ms / 1000)
    assert len(quotas._refusals["noisy"]) <= 256
