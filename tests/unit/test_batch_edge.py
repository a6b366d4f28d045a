"""The batch RPCs' table and wire helpers at the edge (gateway/services.py)."""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2
from mlgw.batch.v1 import batch_pb2

from gateway.errors import BatchTooLarge
from gateway.operations import OPERATIONS
from gateway.services import STREAM_METHOD, _streamed_operations, batch_rpcs, repeated_field_1


def test_each_batch_rpc_runs_the_operation_of_its_entries() -> None:
    rows = {rpc.name: rpc.op.name for rpc in batch_rpcs(OPERATIONS)}
    assert rows == {
        "BatchGetRecommendations": "GetRecommendations",
        "BatchGetPersonalizedRanking": "GetPersonalizedRanking",
        "BatchGetActionRecommendations": "GetActionRecommendations",
    }
    streamed = {field: op.name for field, op in _streamed_operations(OPERATIONS).items()}
    assert streamed == {
        "get_recommendations": "GetRecommendations",
        "get_personalized_ranking": "GetPersonalizedRanking",
        "get_action_recommendations": "GetActionRecommendations",
    }
    assert STREAM_METHOD == "StreamRecommendations"


def test_arepeated_field_1_assembled_from_bytes_parses_as_the_message() -> None:
    results = [
        batch_pb2.StreamRecommendationsResult(id="a"),
        batch_pb2.StreamRecommendationsResult(id="b" * 300),  # a two-byte length
        batch_pb2.StreamRecommendationsResult(id="c", metadata={"mlgw-cache": "hit"}),
    ]
    wire = repeated_field_1([r.SerializeToString() for r in results])
    assert batch_pb2.StreamRecommendationsResponse.FromString(wire).results == results
    assert repeated_field_1([]) == b""


def test_a_batch_too_large_names_the_limit() -> None:
    error = BatchTooLarge(1001, 1000)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "at most 1000 entries" in error.caller_message
    info, bad = error.details()
    assert isinstance(info, error_details_pb2.ErrorInfo)
    assert (info.reason, dict(info.metadata)) == (
        "BATCH_TOO_LARGE",
        {"maxEntries": "1000", "entries": "1001"},
    )
    assert isinstance(bad, error_details_pb2.BadRequest)
    assert bad.field_violations[0].field == "requests"
