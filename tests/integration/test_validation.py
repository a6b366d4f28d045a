"""Invalid requests: INVALID_ARGUMENT naming every bad field, and AWS never called."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from mlgw.bedrock.v1 import bedrock_pb2 as bedrock
from mlgw.personalize_runtime.v1 import personalize_runtime_pb2 as rt

from tests.integration.conftest import Stubs
from tests.support import details, error_info

ARN = "arn:aws:personalize:us-east-1:000000000000"


async def invalid(call: Any) -> dict[str, str]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    error = caught.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    (bad,) = details(error, error_details_pb2.BadRequest)
    assert error_info(error).reason == "INVALID_REQUEST"
    return {v.field: v.description for v in bad.field_violations}


async def test_every_violation_is_named_and_aws_is_never_called(
    stubs: Stubs, emulator: Any
) -> None:
    request = rt.GetRecommendationsRequest(
        user_id="u" * 300,
        num_results=600,
        filter_arn="not-an-arn",
        context={f"k{i}": "v" for i in range(151)},
        promotions=[rt.Promotion(name=" spaces", filter_values={"P": "x" * 1001})],
    )
    fields = await invalid(stubs.runtime.GetRecommendations(request, timeout=5))
    assert set(fields) == {
        "campaign_arn",  # neither campaign_arn nor recommender_arn: both are named
        "recommender_arn",
        "user_id",
        "num_results",
        "filter_arn",
        "context",
        "promotions[0].name",
        'promotions[0].filter_values["P"]',
    }
    assert "campaignArn or recommenderArn" in fields["campaign_arn"]
    assert fields["num_results"] == "must be at most 500"
    assert emulator.stats()["calls"].get("GetRecommendations", 0) == 0


async def test_cross_field_limit_with_metadata_columns(stubs: Stubs, emulator: Any) -> None:
    request = rt.GetRecommendationsRequest(
        campaign_arn=f"{ARN}:campaign/demo",
        user_id="u",
        num_results=60,
        metadata_columns={"ITEMS": rt.ColumnNamesList(values=["GENRE"])},
    )
    fields = await invalid(stubs.runtime.GetRecommendations(request, timeout=5))
    assert fields == {"num_results": "must be at most 50 when metadataColumns is set"}
    ranking = rt.GetPersonalizedRankingRequest(
        campaign_arn=f"{ARN}:campaign/ranking", user_id="u", input_list=["i1"] * 501
    )
    fields = await invalid(stubs.runtime.GetPersonalizedRanking(ranking, timeout=5))
    assert fields == {"input_list": "must have at most 500 entries"}
    assert emulator.stats()["calls"] == {}


async def test_nested_required_enum_and_range(stubs: Stubs, emulator: Any) -> None:
    request = bedrock.CreateModelInvocationJobRequest(
        job_name="has spaces",
        role_arn="arn:aws:iam::000000000000:role/batch",
        model_id="anthropic.claude-3-haiku-20240307-v1:0",
        input_data_config=bedrock.ModelInvocationJobInputDataConfig(
            s3_input_data_config=bedrock.ModelInvocationJobS3InputDataConfig(s3_uri="")
        ),
        timeout_duration_in_hours=5,
    )
    fields = await invalid(stubs.bedrock.CreateModelInvocationJob(request, timeout=5))
    assert set(fields) == {
        "job_name",
        "input_data_config.s3_input_data_config.s3_uri",
        "output_data_config",
        "timeout_duration_in_hours",
    }
    assert fields["output_data_config"] == "is required"
    assert fields["timeout_duration_in_hours"] == "must be at least 24"
    assert emulator.stats()["calls"] == {}


async def test_a_valid_request_does_reach_aws(stubs: Stubs, emulator: Any) -> None:
    request = rt.GetRecommendationsRequest(campaign_arn=f"{ARN}:campaign/demo", user_id="u")
    reply = await stubs.runtime.GetRecommendations(request, timeout=5)
    assert len(reply.item_list) == 25
    assert emulator.stats()["calls"]["GetRecommendations"] == 1
