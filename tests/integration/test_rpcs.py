"""Every mirrored RPC end to end: gateway answers equal what AWS (the emulator) answers."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf.message import Message
from mlgw.bedrock.v1 import bedrock_pb2 as bedrock
from mlgw.machinelearning.v1 import machinelearning_pb2 as aml
from mlgw.personalize.v1 import personalize_pb2 as personalize
from mlgw.personalize_runtime.v1 import personalize_runtime_pb2 as rt

from gateway.upstream.mapping import from_aws, to_aws
from tests.integration.conftest import Stubs

ARN = "arn:aws:personalize:us-east-1:000000000000"
ROLE = "arn:aws:iam::000000000000:role/batch"
TIMEOUT = 5.0


async def direct(emulator_client: Any, service: str, method: str, request: Message) -> Any:
    client = await emulator_client(service)
    return await getattr(client, method)(**to_aws(request))


async def test_get_recommendations(stubs: Stubs, emulator_client: Any) -> None:
    request = rt.GetRecommendationsRequest(
        campaign_arn=f"{ARN}:campaign/demo",
        user_id="u-1",
        num_results=7,
        filter_arn=f"{ARN}:filter/exclude-genres",
        filter_values={"GENRES": '"comedy"'},
    )
    reply = await stubs.runtime.GetRecommendations(request, timeout=TIMEOUT)
    raw = await direct(emulator_client, "personalize-runtime", "get_recommendations", request)
    assert len(reply.item_list) == 7
    assert [(i.item_id, i.score) for i in reply.item_list] == [
        (i["itemId"], i["score"]) for i in raw["itemList"]
    ]
    assert reply.recommendation_id == raw["recommendationId"]


async def test_get_recommendations_with_metadata_and_promotion(stubs: Stubs) -> None:
    request = rt.GetRecommendationsRequest(
        recommender_arn=f"{ARN}:recommender/top-picks",
        user_id="u-2",
        num_results=10,
        metadata_columns={"ITEMS": rt.ColumnNamesList(values=["GENRE", "TITLE"])},
        promotions=[
            rt.Promotion(
                name="comedies",
                percent_promoted_items=20,
                filter_arn=f"{ARN}:filter/comedy-only",
            )
        ],
    )
    reply = await stubs.runtime.GetRecommendations(request, timeout=TIMEOUT)
    assert len(reply.item_list) == 10
    assert all(set(item.metadata) == {"GENRE", "TITLE"} for item in reply.item_list)
    promoted = [item for item in reply.item_list if item.promotion_name == "comedies"]
    assert promoted
    assert all(item.metadata["GENRE"] == "comedy" for item in promoted)


async def test_get_personalized_ranking(stubs: Stubs, emulator_client: Any) -> None:
    request = rt.GetPersonalizedRankingRequest(
        campaign_arn=f"{ARN}:campaign/ranking",
        user_id="u-3",
        input_list=["i5", "i17", "i99", "unknown-item"],
    )
    reply = await stubs.runtime.GetPersonalizedRanking(request, timeout=TIMEOUT)
    raw = await direct(emulator_client, "personalize-runtime", "get_personalized_ranking", request)
    assert reply == from_aws(rt.GetPersonalizedRankingResponse, raw)
    assert reply.personalized_ranking[-1].item_id == "unknown-item"
    assert sum(i.score for i in reply.personalized_ranking) == pytest.approx(1.0, rel=1e-9)


async def test_get_action_recommendations(stubs: Stubs, emulator_client: Any) -> None:
    request = rt.GetActionRecommendationsRequest(
        campaign_arn=f"{ARN}:campaign/actions", user_id="u"
    )
    reply = await stubs.runtime.GetActionRecommendations(request, timeout=TIMEOUT)
    raw = await direct(
        emulator_client, "personalize-runtime", "get_action_recommendations", request
    )
    assert len(reply.action_list) == 5  # AWS's default
    assert reply == from_aws(rt.GetActionRecommendationsResponse, raw)


async def test_personalize_batch_inference_job_lifecycle(stubs: Stubs) -> None:
    create = personalize.CreateBatchInferenceJobRequest(
        job_name="nightly",
        solution_version_arn=f"{ARN}:solution/demo/1",
        num_results=20,
        job_input=personalize.BatchInferenceJobInput(
            s3_data_source=personalize.S3DataConfig(path="s3://bucket/in/users.json")
        ),
        job_output=personalize.BatchInferenceJobOutput(
            s3_data_destination=personalize.S3DataConfig(path="s3://bucket/out/")
        ),
        role_arn=ROLE,
        tags=[personalize.Tag(tag_key="team", tag_value="recs")],
        batch_inference_job_mode=personalize.BATCH_INFERENCE_JOB_MODE_BATCH_INFERENCE,
    )
    created = await stubs.personalize.CreateBatchInferenceJob(create, timeout=TIMEOUT)
    assert created.batch_inference_job_arn.endswith("batch-inference-job/nightly")
    described = await stubs.personalize.DescribeBatchInferenceJob(
        personalize.DescribeBatchInferenceJobRequest(
            batch_inference_job_arn=created.batch_inference_job_arn
        ),
        timeout=TIMEOUT,
    )
    job = described.batch_inference_job
    assert job.job_name == "nightly"
    assert job.num_results == 20
    assert job.job_input.s3_data_source.path == "s3://bucket/in/users.json"
    assert job.status in {"PENDING", "IN PROGRESS", "ACTIVE"}
    assert job.creation_date_time.seconds > 0
    listed = await stubs.personalize.ListBatchInferenceJobs(
        personalize.ListBatchInferenceJobsRequest(solution_version_arn=f"{ARN}:solution/demo/1"),
        timeout=TIMEOUT,
    )
    assert [s.job_name for s in listed.batch_inference_jobs] == ["nightly"]


async def test_aml_batch_prediction_lifecycle(stubs: Stubs) -> None:
    create = aml.CreateBatchPredictionRequest(
        batch_prediction_id="bp-1",
        batch_prediction_name="scores",
        ml_model_id="ml-1",
        batch_prediction_data_source_id="ds-1",
        output_uri="s3://bucket/predictions/",
    )
    created = await stubs.aml.CreateBatchPrediction(create, timeout=TIMEOUT)
    assert created.batch_prediction_id == "bp-1"
    got = await stubs.aml.GetBatchPrediction(
        aml.GetBatchPredictionRequest(batch_prediction_id="bp-1"), timeout=TIMEOUT
    )
    assert got.ml_model_id == "ml-1"
    assert got.status != aml.ENTITY_STATUS_UNSPECIFIED
    described = await stubs.aml.DescribeBatchPredictions(
        aml.DescribeBatchPredictionsRequest(
            filter_variable=aml.BATCH_PREDICTION_FILTER_VARIABLE_ML_MODEL_ID, eq="ml-1"
        ),
        timeout=TIMEOUT,
    )
    assert [r.batch_prediction_id for r in described.results] == ["bp-1"]


async def test_bedrock_model_invocation_job_lifecycle(stubs: Stubs) -> None:
    create = bedrock.CreateModelInvocationJobRequest(
        job_name="summaries",
        role_arn=ROLE,
        client_request_token="token-1",
        model_id="anthropic.claude-3-haiku-20240307-v1:0",
        input_data_config=bedrock.ModelInvocationJobInputDataConfig(
            s3_input_data_config=bedrock.ModelInvocationJobS3InputDataConfig(
                s3_uri="s3://bucket/in.jsonl",
                s3_input_format=bedrock.S3_INPUT_FORMAT_JSONL,
            )
        ),
        output_data_config=bedrock.ModelInvocationJobOutputDataConfig(
            s3_output_data_config=bedrock.ModelInvocationJobS3OutputDataConfig(
                s3_uri="s3://bucket/out/"
            )
        ),
        timeout_duration_in_hours=24,
    )
    created = await stubs.bedrock.CreateModelInvocationJob(create, timeout=TIMEOUT)
    # The same client request token is idempotent: the same job comes back.
    again = await stubs.bedrock.CreateModelInvocationJob(create, timeout=TIMEOUT)
    assert again.job_arn == created.job_arn
    got = await stubs.bedrock.GetModelInvocationJob(
        bedrock.GetModelInvocationJobRequest(job_identifier=created.job_arn), timeout=TIMEOUT
    )
    assert got.job_name == "summaries"
    assert got.input_data_config.s3_input_data_config.s3_uri == "s3://bucket/in.jsonl"
    assert got.timeout_duration_in_hours == 24
    assert got.submit_time.seconds > 0
    await stubs.bedrock.StopModelInvocationJob(
        bedrock.StopModelInvocationJobRequest(job_identifier=created.job_arn), timeout=TIMEOUT
    )
    listed = await stubs.bedrock.ListModelInvocationJobs(
        bedrock.ListModelInvocationJobsRequest(name_contains="summ", max_results=10),
        timeout=TIMEOUT,
    )
    (summary,) = listed.invocation_job_summaries
    assert summary.job_arn == created.job_arn
    assert summary.status in {
        bedrock.MODEL_INVOCATION_JOB_STATUS_STOPPING,
        bedrock.MODEL_INVOCATION_JOB_STATUS_STOPPED,
    }
