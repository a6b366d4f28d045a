"""The edge's pieces: caller-visible scrubbing, bugs as INTERNAL, the log budget, the
adaptive deadline margin."""

from __future__ import annotations

import grpc
import pytest
from botocore.exceptions import ClientError
from google.rpc import error_details_pb2

from gateway.errors import InternalError
from gateway.logs import LogBudget
from gateway.services import LoopLag
from gateway.upstream.errors import from_client_error, from_exception

SIGNED = (
    "The request signature we calculated does not match the signature you provided. "
    "The Canonical String for this request should have been 'POST\\n/\\n\\n"
    "host:personalize-runtime.us-east-1.amazonaws.com\\nx-amz-date:20260101T000000Z\\n"
    "x-amz-security-token:IQoJb3JpZ2luX2VjEJrSECRET\\n'"
)


def test_an_upstream_message_echoing_a_session_token_is_scrubbed_in_the_status() -> None:
    error = from_client_error(
        ClientError(
            {
                "Error": {"Code": "InvalidSignatureException", "Message": SIGNED},
                "ResponseMetadata": {"HTTPStatusCode": 403, "RequestId": "r-1"},
            },
            "GetRecommendations",
        ),
        "personalize-runtime",
    )
    error.metadata["echo"] = "x-amz-security-token:IQoJb3JpZ2luX2VjEJrSECRET"
    status = error.to_status()
    assert "IQoJb3JpZ2luX2VjEJrSECRET" not in status.message
    assert "x-amz-security-token:****" in status.message
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    assert "SECRET" not in str(info)
    assert info.metadata["awsRequestId"] == "r-1"


def test_an_unexpected_exception_is_internal_and_keeps_its_cause() -> None:
    bug = KeyError("planted")
    error = from_exception(bug, "personalize-runtime", idempotent=True)
    assert isinstance(error, InternalError)
    assert error.code == grpc.StatusCode.INTERNAL
    assert error.reason == "INTERNAL"
    assert error.cause is bug
    assert "planted" not in error.to_status().message


def test_the_log_budget_lets_a_burst_through_then_counts_what_it_suppresses() -> None:
    now = [0.0]
    budget = LogBudget(rate=1.0, burst=2.0, clock=lambda: now[0])
    assert [budget.take() for _ in range(5)] == [0, 0, None, None, None]
    now[0] = 1.0
    assert budget.take() == 3  # the next line says how many were dropped
    assert budget.take() is None


def test_the_margin_follows_loop_lateness_and_calls_in_flight_within_bounds() -> None:
    lag = LoopLag(base=0.005, maximum=0.1)
    assert lag.margin(0) == 0.005
    for _ in range(50):
        lag.observe(0.0)
    lag.observe(0.04)  # one late burst lands in the high percentile
    lag.refresh()  # the periodic timer's job
    assert 0.04 < lag.margin(0) <= 0.1
    assert lag.margin(100) > lag.margin(0)
    assert lag.margin(100_000) == 0.1


def test_the_margin_per_call_in_flight_is_the_measured_cost_of_a_timeout_answer() -> None:
    """Answers that queue behind each other 1.5 ms apart (a busy machine) teach the margin
    that cost; gaps of answers that did not wait (idle time between them) teach nothing."""
    lag = LoopLag(base=0.005, maximum=1.0)
    assert lag.margin(40) == pytest.approx(0.005 + 40 * LoopLag.ANSWER_COST)
    for i in range(10):  # spread out, each on time: no queueing, no cost sample
        lag.answered_late(now=float(i), lateness=0.0)
    lag.refresh()
    assert lag.margin(40) == pytest.approx(0.005 + 40 * LoopLag.ANSWER_COST)
    start, cost = 100.0, 0.0015
    for k in range(50):  # a burst: the k-th answer waited behind the k before it
        lag.answered_late(now=start + k * cost, lateness=0.002 + k * cost)
    lag.refresh()
    high = 2 * (0.002 + 49 * cost)  # the lateness percentile's share
    assert lag.margin(40) == pytest.approx(0.005 + high + 40 * cost)
