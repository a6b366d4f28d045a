"""Model-driven request validation, AWS error wire shapes and the SigV4 presence check."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import botocore.session
import pytest
from botocore import UNSIGNED
from botocore.exceptions import ClientError

from gateway.emulator import Emulator
from gateway.emulator.routing import SCOPE, Router, load_operations
from gateway.emulator.testing import client_for
from gateway.patterns import compile_aws_pattern

ARN = "arn:aws:personalize:us-east-1:000000000000"
DEMO = f"{ARN}:campaign/demo"
SV = f"{ARN}:solution/demo/1"
ROLE = "arn:aws:iam::000000000000:role/emulator"
SIGNED = {
    "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/x/aws4_request, "
    "SignedHeaders=host, Signature=00",
    "X-Amz-Date": "20240101T000000Z",
}


def batch_job(**overrides: Any) -> dict[str, Any]:
    req: dict[str, Any] = {
        "jobName": "job",
        "solutionVersionArn": SV,
        "jobInput": {"s3DataSource": {"path": "s3://bucket/in.json"}},
        "jobOutput": {"s3DataDestination": {"path": "s3://bucket/out/"}},
        "roleArn": ROLE,
    }
    req.update(overrides)
    return req


def bedrock_job(**overrides: Any) -> dict[str, Any]:
    req: dict[str, Any] = {
        "jobName": "job-1",
        "roleArn": ROLE,
        "modelId": "anthropic.claude-3-haiku-20240307-v1:0",
        "inputDataConfig": {"s3InputDataConfig": {"s3Uri": "s3://bucket/in.jsonl"}},
        "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": "s3://bucket/out/"}},
    }
    req.update(overrides)
    return req


# -- routing is derived from botocore's model ---------------------------------------


def test_every_scoped_operation_routes_from_the_model() -> None:
    session = botocore.session.get_session()
    router = Router(load_operations(session))
    for service, ops in SCOPE.items():
        model = session.get_service_model(service)
        for op in ops:
            om = model.operation_model(op)
            if model.protocol == "json":
                spec = router.by_target(f"{model.metadata['targetPrefix']}.{op}")
            else:
                path = om.http["requestUri"].replace("{jobIdentifier}", "abcdefabcdef")
                found = router.by_path(om.http["method"], path)
                assert found is not None, op
                spec = found[0]
            assert spec is not None
            assert spec.name == op
            assert spec.service == service
    assert router.by_path("GET", "/model-invocation-job/a%2Fb/stop") is None
    found = router.by_path("POST", "/model-invocation-job/arn%3Aaws%2Fx/stop")
    assert found is not None
    assert found[1] == {"jobIdentifier": "arn%3Aaws%2Fx"}


def test_java_patterns_are_translated() -> None:
    tag = compile_aws_pattern(r"^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$")
    assert tag is not None
    assert tag.fullmatch("Ünïcode key 42")
    assert not tag.fullmatch("bad#key")
    ascii_only = compile_aws_pattern(r"\p{ASCII}{0,1500}")
    assert ascii_only is not None
    assert ascii_only.fullmatch("token+/=")
    assert not ascii_only.fullmatch("tokén")
    assert compile_aws_pattern(r"\p{Unheard}") is None  # skipped, never over-strict


# -- constraint failures through real clients ----------------------------------------


async def test_string_length_and_pattern(emulator_client: Any) -> None:
    rt = await emulator_client("personalize-runtime")
    with pytest.raises(rt.exceptions.InvalidInputException) as info:
        await rt.get_recommendations(campaignArn="not-an-arn", userId="u" * 257)
    message = info.value.response["Error"]["Message"]
    assert message.startswith("2 validation errors detected: ")
    assert "at 'campaignArn' failed to satisfy constraint: Member must satisfy regular" in message
    assert "at 'userId' failed to satisfy constraint: Member must have length less than" in message


async def test_map_sizes_and_map_key_patterns(emulator_client: Any) -> None:
    rt = await emulator_client("personalize-runtime")
    with pytest.raises(rt.exceptions.InvalidInputException, match="less than or equal to 150"):
        await rt.get_recommendations(
            campaignArn=DEMO, userId="u1", context={f"k{i}": "v" for i in range(151)}
        )
    with pytest.raises(rt.exceptions.InvalidInputException, match="less than or equal to 25"):
        await rt.get_recommendations(
            campaignArn=DEMO, userId="u1", filterValues={f"P{i}": '"v"' for i in range(26)}
        )
    with pytest.raises(rt.exceptions.InvalidInputException, match=r"context\.bad-key\.key"):
        await rt.get_recommendations(campaignArn=DEMO, userId="u1", context={"bad-key": "v"})


async def test_sensitive_values_are_not_echoed(emulator_client: Any) -> None:
    rt = await emulator_client("personalize-runtime")
    with pytest.raises(rt.exceptions.InvalidInputException) as info:
        await rt.get_recommendations(campaignArn=DEMO, userId="u1", context={"k": "s" * 1001})
    message = info.value.response["Error"]["Message"]
    assert "Value at 'context.k.value'" in message
    assert "sss" not in message


async def test_nested_members_and_numeric_ranges(emulator_client: Any) -> None:
    pz = await emulator_client("personalize")
    bad_path = batch_job(jobInput={"s3DataSource": {"path": "ftp://bucket/in"}})
    with pytest.raises(pz.exceptions.InvalidInputException, match=r"jobInput\.s3DataSource\.path"):
        await pz.create_batch_inference_job(**bad_path)
    with pytest.raises(pz.exceptions.InvalidInputException, match="less than or equal to 100"):
        await pz.list_batch_inference_jobs(maxResults=101)
    with pytest.raises(pz.exceptions.InvalidInputException, match=r"tags\.1\.member\.tagKey"):
        await pz.create_batch_inference_job(
            **batch_job(tags=[{"tagKey": "bad#key", "tagValue": "v"}])
        )
    with pytest.raises(pz.exceptions.InvalidInputException, match="nextToken"):
        await pz.list_batch_inference_jobs(nextToken="tokén")
    # Unicode letters pass the translated \p{L} class.
    created = await pz.create_batch_inference_job(
        **batch_job(tags=[{"tagKey": "Ünïcode", "tagValue": "ok"}])
    )
    assert created["batchInferenceJobArn"].endswith("batch-inference-job/job")


async def test_enums_lists_and_ranges_on_bedrock(emulator_client: Any) -> None:
    br = await emulator_client("bedrock")
    with pytest.raises(br.exceptions.ValidationException, match="enum value set"):
        await br.create_model_invocation_job(**bedrock_job(modelInvocationType="Bogus"))
    with pytest.raises(br.exceptions.ValidationException, match="less than or equal to 168"):
        await br.create_model_invocation_job(**bedrock_job(timeoutDurationInHours=500))
    with pytest.raises(br.exceptions.ValidationException, match="less than or equal to 200"):
        await br.create_model_invocation_job(
            **bedrock_job(tags=[{"key": f"k{i}", "value": "v"} for i in range(201)])
        )
    with pytest.raises(br.exceptions.ValidationException, match="jobIdentifier"):
        await br.get_model_invocation_job(jobIdentifier="UPPER-CASE")
    with pytest.raises(br.exceptions.ValidationException, match="nameContains"):
        await br.list_model_invocation_jobs(nameContains="bad name!")


async def test_required_and_minimums_when_the_client_does_not_check(
    emulator_client: Any,
) -> None:
    """botocore checks required/min itself; with that off, the emulator still does."""
    pz = await emulator_client("personalize", validate=False)
    req = batch_job()
    del req["roleArn"]
    with pytest.raises(pz.exceptions.InvalidInputException) as info:
        await pz.create_batch_inference_job(**req)
    assert (
        "Value null at 'roleArn' failed to satisfy constraint: Member must not be null"
        in (info.value.response["Error"]["Message"])
    )
    ml = await emulator_client("machinelearning", validate=False)
    with pytest.raises(ml.exceptions.InvalidInputException, match="greater than or equal to 1"):
        await ml.create_batch_prediction(
            BatchPredictionId="",
            MLModelId="m",
            BatchPredictionDataSourceId="d",
            OutputUri="s3://b/o",
        )
    br = await emulator_client("bedrock", validate=False)
    with pytest.raises(br.exceptions.ValidationException, match="greater than or equal to 24"):
        await br.create_model_invocation_job(**bedrock_job(timeoutDurationInHours=1))
    with pytest.raises(br.exceptions.ValidationException, match="exactly one member"):
        await br.create_model_invocation_job(**bedrock_job(inputDataConfig={}))
    rt = await emulator_client("personalize-runtime", validate=False)
    with pytest.raises(rt.exceptions.InvalidInputException, match="greater than or equal to 0"):
        await rt.get_recommendations(campaignArn=DEMO, userId="u1", numResults=-1)
    with pytest.raises(rt.exceptions.InvalidInputException, match="Value null at 'userId'"):
        await rt.get_personalized_ranking(campaignArn=DEMO, inputList=["i1"])


# -- wire shapes seen raw --------------------------------------------------------------


async def test_error_wire_shapes(emulator: Emulator) -> None:
    async with aiohttp.ClientSession() as http:
        # rest-json: code in x-amzn-ErrorType, message in the body, modelled status.
        async with http.post(
            f"{emulator.endpoint_url}/recommendations",
            json={"campaignArn": f"{ARN}:campaign/nope", "userId": "u1"},
            headers=SIGNED,
        ) as resp:
            assert resp.status == 404
            assert resp.headers["x-amzn-ErrorType"] == "ResourceNotFoundException"
            assert resp.headers["x-amzn-RequestId"]
            assert "does not exist" in (await resp.json())["message"]
        # json 1.1: code in __type.
        async with http.post(
            f"{emulator.endpoint_url}/",
            data=json.dumps({"BatchPredictionId": "missing"}),
            headers={
                **SIGNED,
                "X-Amz-Target": "AmazonML_20141212.GetBatchPrediction",
                "Content-Type": "application/x-amz-json-1.1",
            },
        ) as resp:
            assert resp.status == 400
            assert resp.headers["Content-Type"] == "application/x-amz-json-1.1"
            assert resp.headers["x-amzn-RequestId"]
            body = await resp.json(content_type=None)
            assert body["__type"] == "ResourceNotFoundException"


async def test_malformed_bodies_are_serialization_errors(emulator: Emulator) -> None:
    headers = {**SIGNED, "X-Amz-Target": "AmazonPersonalize.ListBatchInferenceJobs"}
    async with aiohttp.ClientSession() as http:
        for body in (b"{not json", b"[1, 2]", b'{"maxResults": "ten"}'):
            async with http.post(f"{emulator.endpoint_url}/", data=body, headers=headers) as resp:
                assert resp.status == 400
                assert (await resp.json(content_type=None))["__type"] == "SerializationException"


async def test_unknown_operations(emulator: Emulator) -> None:
    async with aiohttp.ClientSession() as http:
        headers = {**SIGNED, "X-Amz-Target": "AmazonPersonalize.CreateCampaign"}
        async with http.post(f"{emulator.endpoint_url}/", data=b"{}", headers=headers) as resp:
            assert resp.status == 400
            body = await resp.json(content_type=None)
            assert body["__type"] == "UnknownOperationException"
        async with http.get(f"{emulator.endpoint_url}/nowhere", headers=SIGNED) as resp:
            assert resp.status == 404
            assert resp.headers["x-amzn-ErrorType"] == "UnknownOperationException"
    assert emulator.stats()["calls"] == {}  # never routed, never counted


async def test_sigv4_is_required(emulator: Emulator) -> None:
    async with client_for(
        emulator.endpoint_url, "personalize-runtime", signature_version=UNSIGNED
    ) as unsigned:
        with pytest.raises(ClientError) as info:
            await unsigned.get_recommendations(campaignArn=DEMO, userId="u1")
    assert info.value.response["Error"]["Code"] == "MissingAuthenticationTokenException"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{emulator.endpoint_url}/recommendations",
            json={"campaignArn": DEMO, "userId": "u1"},
            headers={"Authorization": "Bearer nope"},
        ) as resp:
            assert resp.status == 403
            assert resp.headers["x-amzn-ErrorType"] == "IncompleteSignatureException"
        signed_no_date = {"Authorization": SIGNED["Authorization"], "X-Amz-Target": "x.y"}
        async with http.post(
            f"{emulator.endpoint_url}/", data=b"{}", headers=signed_no_date
        ) as resp:
            assert resp.status == 403
            body = await resp.json(content_type=None)
            assert body["__type"] == "IncompleteSignatureException"
    assert emulator.stats()["calls"] == {}


async def test_invalid_requests_are_counted_before_validation(
    emulator_client: Any, emulator: Emulator
) -> None:
    rt = await emulator_client("personalize-runtime")
    with pytest.raises(rt.exceptions.InvalidInputException):
        await rt.get_recommendations(campaignArn=DEMO, userId="u" * 300)
    stats = emulator.stats()
    assert stats["calls"] == {"GetRecommendations": 1}
    assert stats["calls_by_arn"] == {DEMO: {"GetRecommendations": 1}}
    assert stats["errors"] == {"GetRecommendations": {"InvalidInputException": 1}}
