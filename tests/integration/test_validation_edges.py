"""Validation edges through the real gateway and emulator: open enums both ways, hostile
sizes stopped early, each field named once, Java pattern semantics."""

from __future__ import annotations

import dataclasses
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from mlgw.bedrock.v1 import bedrock_pb2 as bedrock
from mlgw.personalize.v1 import personalize_pb2 as personalize
from mlgw.personalize_runtime.v1 import personalize_runtime_pb2 as rt

from gateway import metrics
from tests.integration.conftest import Stubs
from tests.integration.requests import ARN, ROLE, VALID
from tests.support import details, error_info

TIMEOUT = 10


async def violations(call: Any) -> list[tuple[str, str]]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    error = caught.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(error).reason == "INVALID_REQUEST"
    (bad,) = details(error, error_details_pb2.BadRequest)
    return [(v.field, v.description) for v in bad.field_violations]


async def test_an_unknown_enum_number_is_invalid_argument_naming_the_field(
    stubs: Stubs, emulator: Any
) -> None:
    request = bedrock.ListModelInvocationJobsRequest(sort_order=99, status_equals=42)  # type: ignore[arg-type]
    found = dict(await violations(stubs.bedrock.ListModelInvocationJobs(request, timeout=TIMEOUT)))
    assert set(found) == {"sort_order", "status_equals"}
    assert found["sort_order"].startswith("unknown enum value 99; must be one of")
    nested = bedrock.CreateModelInvocationJobRequest(
        job_name="j",
        role_arn=ROLE,
        model_id="anthropic.claude-3-haiku-20240307-v1:0",
        input_data_config=bedrock.ModelInvocationJobInputDataConfig(
            s3_input_data_config=bedrock.ModelInvocationJobS3InputDataConfig(
                s3_uri="s3://bucket/in.jsonl",
                s3_input_format=7,  # type: ignore[arg-type]
            )
        ),
    )
    found = dict(await violations(stubs.bedrock.CreateModelInvocationJob(nested, timeout=TIMEOUT)))
    assert set(found) == {"input_data_config.s3_input_data_config.s3_input_format"}
    assert emulator.stats()["calls"] == {}


async def test_an_enum_string_aws_added_is_served_as_unspecified_and_counted(
    stubs: Stubs, emulator: Any
) -> None:
    create = bedrock.CreateModelInvocationJobRequest()
    create.CopyFrom(VALID["CreateModelInvocationJob"])
    create.job_name = "new-status"
    created = await stubs.bedrock.CreateModelInvocationJob(create, timeout=TIMEOUT)
    # Plant a status this botocore's model does not know, as AWS adds them over time.
    job = emulator.bedrock_jobs._jobs[created.job_arn]
    job.timeline = dataclasses.replace(job.timeline, steps=((0.0, "Hibernating"),))
    field = "mlgw.bedrock.v1.GetModelInvocationJobResponse.status"
    counter = metrics.UNKNOWN_ENUM_VALUES.labels("GetModelInvocationJob", field)
    before = counter._value.get()
    got = await stubs.bedrock.GetModelInvocationJob(
        bedrock.GetModelInvocationJobRequest(job_identifier=created.job_arn), timeout=TIMEOUT
    )
    assert got.status == bedrock.MODEL_INVOCATION_JOB_STATUS_UNSPECIFIED
    assert got.job_name == "new-status"  # the rest of the answer is intact
    assert counter._value.get() == before + 1


async def test_exactly_one_names_both_fields_and_no_field_twice(stubs: Stubs) -> None:
    neither = rt.GetRecommendationsRequest(user_id="u")
    found = await violations(stubs.runtime.GetRecommendations(neither, timeout=TIMEOUT))
    assert [f for f, _ in found] == ["campaign_arn", "recommender_arn"]
    both = rt.GetRecommendationsRequest(
        campaign_arn=f"{ARN}:campaign/demo", recommender_arn=f"{ARN}:recommender/demo"
    )
    found = await violations(stubs.runtime.GetRecommendations(both, timeout=TIMEOUT))
    assert [f for f, _ in found] == ["campaign_arn", "recommender_arn"]
    empty = rt.GetRecommendationsRequest(campaign_arn="", user_id="u")
    found = await violations(stubs.runtime.GetRecommendations(empty, timeout=TIMEOUT))
    fields = [f for f, _ in found]
    assert sorted(fields) == ["campaign_arn", "recommender_arn"]  # each once
    described = dict(found)["campaign_arn"]
    assert "must match the pattern" in described
    assert "exactly one of" in described


async def test_a_hostile_map_is_rejected_by_its_count_alone(stubs: Stubs, emulator: Any) -> None:
    """50,000 entries, every key breaking the key pattern: one violation, the count, so
    no per-entry check (nor the cache key) ran on the entries."""
    request = rt.GetRecommendationsRequest(
        campaign_arn=f"{ARN}:campaign/demo",
        user_id="u",
        context={f"bad-key-{i}": "v" for i in range(50_000)},
    )
    found = await violations(stubs.runtime.GetRecommendations(request, timeout=TIMEOUT))
    assert found == [("context", "must have at most 150 entries")]
    assert emulator.stats()["calls"] == {}


async def test_a_tab_in_a_tag_is_rejected_as_aws_does(stubs: Stubs, emulator: Any) -> None:
    """Personalize tags are `[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*`: NBSP is a separator, a tab is not."""
    request = personalize.CreateBatchInferenceJobRequest(
        job_name="tags",
        solution_version_arn=f"{ARN}:solution/demo/1",
        job_input=personalize.BatchInferenceJobInput(
            s3_data_source=personalize.S3DataConfig(path="s3://bucket/in.json")
        ),
        job_output=personalize.BatchInferenceJobOutput(
            s3_data_destination=personalize.S3DataConfig(path="s3://bucket/out/")
        ),
        role_arn="arn:aws:iam::000000000000:role/emulator",
        tags=[personalize.Tag(tag_key="a\tb", tag_value="c\xa0d")],
    )
    found = dict(
        await violations(stubs.personalize.CreateBatchInferenceJob(request, timeout=TIMEOUT))
    )
    assert set(found) == {"tags[0].tag_key"}
    assert emulator.stats()["calls"] == {}
