"""The offline fuzz target over every operation's adversarial seeds, and the defects the
fuzzers found (each a regression test)."""

from __future__ import annotations

import pytest
from google.protobuf import timestamp_pb2
from google.rpc import error_details_pb2
from mlgw.bedrock.v1 import bedrock_pb2 as bedrock
from mlgw.personalize_runtime.v1 import personalize_runtime_pb2 as rt

from gateway.errors import FieldViolation, InvalidRequest
from gateway.jobs import errors as job_errors
from gateway.operations import OPERATIONS
from tests.fuzz.seeds import INVALID_UTF8, raw_bodies, seed_bodies
from tests.fuzz.targets import (
    MAX_TRAILER_BYTES,
    Target,
    assert_clear,
    check,
    status_from_trailers,
    trailer_size,
)
from tests.integration.requests import ARN, VALID


@pytest.mark.parametrize("index", range(len(OPERATIONS)), ids=[op.name for op in OPERATIONS])
def test_every_seed_is_answered_clearly(index: int) -> None:
    op = OPERATIONS[index]
    bodies = seed_bodies(op.name)
    assert bodies[0] == VALID[op.name].SerializeToString()
    assert Target(op).run(bodies[0]) is not None  # the valid request passes every stage
    for body in [*bodies, *raw_bodies()]:
        check(index, body)  # raises on anything but a clear error


def test_invalid_utf8_reaches_the_decoder() -> None:
    (op,) = [op for op in OPERATIONS if op.name == "GetRecommendations"]
    malformed = [b for b in seed_bodies(op.name) if INVALID_UTF8 in b]
    assert len(malformed) >= 3
    assert all(Target(op).run(body) is None for body in malformed)  # MALFORMED_REQUEST


def _rejected(operation: str, body: bytes) -> InvalidRequest:
    (op,) = [op for op in OPERATIONS if op.name == operation]
    with pytest.raises(InvalidRequest) as raised:
        Target(op).run(body)
    assert_clear(raised.value)
    return raised.value


@pytest.mark.parametrize(
    ("seconds", "nanos"), [(10**12, 0), (-(10**12), 0), (253_402_300_800, 0), (0, -1)]
)
def test_out_of_range_timestamp_is_invalid_argument(seconds: int, nanos: int) -> None:
    # Found by the fuzzer: to_aws raised ValueError from Timestamp.ToDatetime (INTERNAL).
    request = bedrock.ListModelInvocationJobsRequest(
        submit_time_before=timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)
    )
    error = _rejected("ListModelInvocationJobs", request.SerializeToString())
    assert [v.field for v in error.violations] == ["submit_time_before"]


def test_the_extreme_valid_timestamps_pass() -> None:
    (op,) = [op for op in OPERATIONS if op.name == "ListModelInvocationJobs"]
    for seconds in (-62_135_596_800, 253_402_300_799):
        request = bedrock.ListModelInvocationJobsRequest(
            submit_time_after=timestamp_pb2.Timestamp(seconds=seconds, nanos=999_999_999)
        )
        assert Target(op).run(request.SerializeToString()) is not None


def test_a_huge_map_key_gives_an_error_that_fits_in_the_trailers() -> None:
    # Found by the live fuzz: the key was echoed in full in the field path (three times:
    # message, ErrorInfo, BadRequest) and the client refused the trailers.
    request = rt.GetRecommendationsRequest(
        campaign_arn=f"{ARN}:campaign/demo", user_id="u-1", filter_values={"k" * 100_000: "v"}
    )
    error = _rejected("GetRecommendations", request.SerializeToString())
    (violation,) = _bad_request(error).field_violations
    assert violation.field.startswith('filter_values["kkk')
    assert len(violation.field) <= 200


def test_a_huge_operation_name_gives_a_not_found_that_fits_in_the_trailers() -> None:
    # Found by the live fuzz (WatchOperation): the name was echoed in full, in the message
    # and ErrorInfo, and the client refused the trailers (a bare RESOURCE_EXHAUSTED).
    error = job_errors.not_found("operations/" + "n" * 100_000)
    assert_clear(error)
    assert trailer_size(error.trailing_metadata(), error.caller_message) < 2000
    assert error.metadata["name"].startswith("operations/nnn")


def test_hundreds_of_violations_are_bounded_and_counted() -> None:
    request = rt.GetPersonalizedRankingRequest(
        campaign_arn=f"{ARN}:campaign/ranking",
        user_id="u-1",
        input_list=[f"{i}{'y' * 300}" for i in range(500)],
    )
    error = _rejected("GetPersonalizedRanking", request.SerializeToString())
    shown = _bad_request(error).field_violations
    assert 0 < len(shown) < 500
    assert shown[0].field == "input_list[0]"
    assert error.metadata["omittedViolations"] == str(len(error.violations) - len(shown))


def test_many_short_violations_fit_in_the_trailers() -> None:
    # 31 empty tags: 67 short violations, under grpc's limit even unbounded (6.5 KB), but
    # the budget keeps a margin (atheris reported it while the harness still counted every
    # message byte as percent-encoded).
    request = bedrock.CreateModelInvocationJobRequest(tags=[bedrock.Tag() for _ in range(31)])
    error = _rejected("CreateModelInvocationJob", request.SerializeToString())
    assert len(_bad_request(error).field_violations) < len(error.violations)


def test_a_small_invalid_request_keeps_every_violation() -> None:
    violations = [FieldViolation(f"f{i}", "must be set") for i in range(10)]
    error = InvalidRequest(violations)
    assert [v.field for v in _bad_request(error).field_violations] == [v.field for v in violations]
    assert "omittedViolations" not in error.metadata
    assert trailer_size(error.trailing_metadata(), error.caller_message) < MAX_TRAILER_BYTES


def _bad_request(error: InvalidRequest) -> error_details_pb2.BadRequest:
    status = status_from_trailers(error.trailing_metadata())
    (found,) = [d for d in status.details if d.Is(error_details_pb2.BadRequest.DESCRIPTOR)]
    bad = error_details_pb2.BadRequest()
    found.Unpack(bad)
    return bad
