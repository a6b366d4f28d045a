"""Batch job lifecycles, limits, idempotency and listing, driven by a manual clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest

from gateway.emulator import Emulator, EmulatorConfig, ManualClock
from gateway.emulator.config import JobsConfig

ARN = "arn:aws:personalize:us-east-1:000000000000"
SV = f"{ARN}:solution/demo/1"
SV_RANKING = f"{ARN}:solution/ranking/1"
ROLE = "arn:aws:iam::000000000000:role/emulator"
MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
STEP = 10.0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=1_700_000_000.0)


@pytest.fixture
async def timed(clock: ManualClock) -> AsyncIterator[Emulator]:
    """An emulator whose jobs move only when the test advances ``clock``."""
    config = EmulatorConfig(jobs=JobsConfig(step_seconds=STEP, in_progress_steps=2))
    async with Emulator(config, clock=clock) as emu:
        yield emu


def personalize_job(name: str, path: str = "s3://bucket/in.json", sv: str = SV) -> dict[str, Any]:
    return {
        "jobName": name,
        "solutionVersionArn": sv,
        "jobInput": {"s3DataSource": {"path": path}},
        "jobOutput": {"s3DataDestination": {"path": "s3://bucket/out/"}},
        "roleArn": ROLE,
    }


def bedrock_job(name: str, uri: str = "s3://bucket/in.jsonl", **extra: Any) -> dict[str, Any]:
    return {
        "jobName": name,
        "roleArn": ROLE,
        "modelId": MODEL,
        "inputDataConfig": {"s3InputDataConfig": {"s3Uri": uri}},
        "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": "s3://bucket/out/"}},
        **extra,
    }


# -- Personalize batch inference ------------------------------------------------------


async def test_personalize_lifecycle(
    timed: Emulator, clock: ManualClock, emulator_client: Any
) -> None:
    pz = await emulator_client("personalize", emu=timed)
    created = await pz.create_batch_inference_job(**personalize_job("nightly"))
    arn = created["batchInferenceJobArn"]
    assert arn == f"{ARN}:batch-inference-job/nightly"
    seen = []
    for _ in range(4):
        job = (await pz.describe_batch_inference_job(batchInferenceJobArn=arn))["batchInferenceJob"]
        seen.append(job["status"])
        clock.advance(STEP)
    assert seen == ["PENDING", "IN PROGRESS", "IN PROGRESS", "ACTIVE"]
    assert job["creationDateTime"].timestamp() == 1_700_000_000.0
    assert job["lastUpdatedDateTime"].timestamp() == 1_700_000_000.0 + 3 * STEP
    assert job["jobInput"]["s3DataSource"]["path"] == "s3://bucket/in.json"
    assert job["roleArn"] == ROLE
    assert "failureReason" not in job


async def test_personalize_failure_marker(
    timed: Emulator, clock: ManualClock, emulator_client: Any
) -> None:
    pz = await emulator_client("personalize", emu=timed)
    arn = (await pz.create_batch_inference_job(**personalize_job("bad", "s3://b/fail.json")))[
        "batchInferenceJobArn"
    ]
    clock.advance(3 * STEP)
    job = (await pz.describe_batch_inference_job(batchInferenceJobArn=arn))["batchInferenceJob"]
    assert job["status"] == "CREATE FAILED"
    assert "fail.json" in job["failureReason"]


async def test_personalize_errors(
    timed: Emulator, clock: ManualClock, emulator_client: Any
) -> None:
    pz = await emulator_client("personalize", emu=timed)
    for n in range(5):
        await pz.create_batch_inference_job(**personalize_job(f"job{n}"))
    with pytest.raises(pz.exceptions.LimitExceededException):
        await pz.create_batch_inference_job(**personalize_job("job5"))
    with pytest.raises(pz.exceptions.ResourceAlreadyExistsException):
        await pz.create_batch_inference_job(**personalize_job("job0"))
    with pytest.raises(pz.exceptions.ResourceNotFoundException):
        await pz.create_batch_inference_job(**personalize_job("x", sv=f"{ARN}:solution/nope/1"))
    with pytest.raises(pz.exceptions.ResourceNotFoundException):
        await pz.create_batch_inference_job(**personalize_job("x"), filterArn=f"{ARN}:filter/nope")
    with pytest.raises(pz.exceptions.ResourceNotFoundException):
        await pz.describe_batch_inference_job(batchInferenceJobArn=f"{ARN}:batch-inference-job/x")
    # Once the running jobs finish there is room again.
    clock.advance(3 * STEP)
    await pz.create_batch_inference_job(**personalize_job("job5"))


async def test_personalize_listing(clock: ManualClock, emulator_client: Any) -> None:
    config = EmulatorConfig(jobs=JobsConfig(step_seconds=STEP, personalize_max_active=20))
    async with Emulator(config, clock=clock) as emu:
        pz = await emulator_client("personalize", emu=emu)
        for n in range(7):
            sv = SV_RANKING if n % 3 == 0 else SV
            await pz.create_batch_inference_job(**personalize_job(f"j{n}", sv=sv))
            clock.advance(1)
        pages, token = [], None
        while True:
            kwargs: dict[str, Any] = {"maxResults": 3}
            if token:
                kwargs["nextToken"] = token
            resp = await pz.list_batch_inference_jobs(**kwargs)
            pages.append([j["jobName"] for j in resp["batchInferenceJobs"]])
            token = resp.get("nextToken")
            if not token:
                break
        assert pages == [["j6", "j5", "j4"], ["j3", "j2", "j1"], ["j0"]]  # newest first
        only = await pz.list_batch_inference_jobs(solutionVersionArn=SV_RANKING)
        assert [j["jobName"] for j in only["batchInferenceJobs"]] == ["j6", "j3", "j0"]
        paginator = pz.get_paginator("list_batch_inference_jobs")
        names = [
            j["jobName"]
            async for page in paginator.paginate(PaginationConfig={"PageSize": 2})
            for j in page["batchInferenceJobs"]
        ]
        assert names == [f"j{n}" for n in range(6, -1, -1)]
        first = await pz.list_batch_inference_jobs(maxResults=2)
        with pytest.raises(pz.exceptions.InvalidNextTokenException):
            await pz.list_batch_inference_jobs(nextToken="garbage")
        with pytest.raises(pz.exceptions.InvalidNextTokenException):
            # A token is only valid for the query that issued it.
            await pz.list_batch_inference_jobs(
                nextToken=first["nextToken"], solutionVersionArn=SV_RANKING
            )


# -- Amazon ML batch predictions -------------------------------------------------------


async def test_aml_lifecycle_and_idempotency(
    timed: Emulator, clock: ManualClock, emulator_client: Any
) -> None:
    ml = await emulator_client("machinelearning", emu=timed)
    req = {
        "BatchPredictionId": "bp-1",
        "BatchPredictionName": "nightly",
        "MLModelId": "ml-1",
        "BatchPredictionDataSourceId": "ds-1",
        "OutputUri": "s3://bucket/out/",
    }
    assert (await ml.create_batch_prediction(**req))["BatchPredictionId"] == "bp-1"
    assert (await ml.create_batch_prediction(**req))["BatchPredictionId"] == "bp-1"
    with pytest.raises(ml.exceptions.IdempotentParameterMismatchException):
        await ml.create_batch_prediction(**{**req, "OutputUri": "s3://bucket/other/"})
    got = await ml.get_batch_prediction(BatchPredictionId="bp-1")
    assert got["Status"] == "PENDING"
    assert "StartedAt" not in got
    assert "TotalRecordCount" not in got
    clock.advance(STEP)
    got = await ml.get_batch_prediction(BatchPredictionId="bp-1")
    assert got["Status"] == "INPROGRESS"
    assert got["StartedAt"].timestamp() == 1_700_000_000.0 + STEP
    clock.advance(2 * STEP)
    got = await ml.get_batch_prediction(BatchPredictionId="bp-1")
    assert got["Status"] == "COMPLETED"
    assert got["FinishedAt"].timestamp() == 1_700_000_000.0 + 3 * STEP
    assert got["ComputeTime"] == int(2 * STEP * 1000)
    assert got["TotalRecordCount"] > got["InvalidRecordCount"] >= 0
    assert got["Name"] == "nightly"
    assert got["LogUri"].startswith("https://")
    with pytest.raises(ml.exceptions.ResourceNotFoundException):
        await ml.get_batch_prediction(BatchPredictionId="missing")


async def test_aml_failure_and_describe_filters(
    timed: Emulator, clock: ManualClock, emulator_client: Any
) -> None:
    ml = await emulator_client("machinelearning", emu=timed)
    for n, ds in enumerate(["ds-a", "ds-fail", "ds-b", "ds-c"]):
        await ml.create_batch_prediction(
            BatchPredictionId=f"bp-{n}",
            BatchPredictionName=f"2024-09-0{n}-run",
            MLModelId="ml-1",
            BatchPredictionDataSourceId=ds,
            OutputUri="s3://bucket/out/",
        )
        clock.advance(STEP)
    # bp-0 and bp-1 are done by now, bp-2 is in progress, bp-3 pending.
    failed = await ml.get_batch_prediction(BatchPredictionId="bp-1")
    assert failed["Status"] == "FAILED"
    assert failed["Message"]
    done = await ml.describe_batch_predictions(FilterVariable="Status", EQ="COMPLETED")
    assert [r["BatchPredictionId"] for r in done["Results"]] == ["bp-0"]
    not_done = await ml.describe_batch_predictions(FilterVariable="Status", NE="COMPLETED")
    assert {r["BatchPredictionId"] for r in not_done["Results"]} == {"bp-1", "bp-2", "bp-3"}
    prefixed = await ml.describe_batch_predictions(FilterVariable="Name", Prefix="2024-09-02")
    assert [r["BatchPredictionId"] for r in prefixed["Results"]] == ["bp-2"]
    newer = await ml.describe_batch_predictions(
        FilterVariable="CreatedAt", GE=str(1_700_000_000.0 + 2 * STEP), SortOrder="dsc"
    )
    assert [r["BatchPredictionId"] for r in newer["Results"]] == ["bp-3", "bp-2"]
    pages, token = [], None
    while True:
        kwargs: dict[str, Any] = {"Limit": 3, "SortOrder": "asc"}
        if token:
            kwargs["NextToken"] = token
        resp = await ml.describe_batch_predictions(**kwargs)
        pages.append([r["BatchPredictionId"] for r in resp["Results"]])
        token = resp.get("NextToken")
        if not token:
            break
    assert pages == [["bp-0", "bp-1", "bp-2"], ["bp-3"]]
    with pytest.raises(ml.exceptions.InvalidInputException):
        await ml.describe_batch_predictions(EQ="COMPLETED")  # a comparator needs a variable


# -- Bedrock model invocation jobs ------------------------------------------------------


async def test_bedrock_lifecycle(timed: Emulator, clock: ManualClock, emulator_client: Any) -> None:
    br = await emulator_client("bedrock", emu=timed)
    arn = (
        await br.create_model_invocation_job(**bedrock_job("nightly", timeoutDurationInHours=24))
    )["jobArn"]
    job_id = arn.rsplit("/", 1)[1]
    assert arn.startswith("arn:aws:bedrock:us-east-1:000000000000:model-invocation-job/")
    statuses = []
    for _ in range(6):
        # Look it up by ARN (percent-encoded "/" in the URI) and by bare id alternately.
        ident = arn if len(statuses) % 2 else job_id
        job = await br.get_model_invocation_job(jobIdentifier=ident)
        statuses.append(job["status"])
        if job["status"] == "InProgress":
            assert 0 <= job["processedRecordCount"] <= job["totalRecordCount"]
        clock.advance(STEP)
    assert statuses == [
        "Submitted",
        "Validating",
        "Scheduled",
        "InProgress",
        "InProgress",
        "Completed",
    ]
    assert job["processedRecordCount"] == job["totalRecordCount"] > 0
    assert job["successRecordCount"] + job["errorRecordCount"] == job["processedRecordCount"]
    assert job["endTime"].timestamp() == 1_700_000_000.0 + 5 * STEP
    assert job["jobExpirationTime"].timestamp() == 1_700_000_000.0 + 24 * 3600
    assert job["submitTime"].timestamp() == 1_700_000_000.0
    with pytest.raises(br.exceptions.ConflictException):
        await br.stop_model_invocation_job(jobIdentifier=arn)


async def test_bedrock_stop(timed: Emulator, clock: ManualClock, emulator_client: Any) -> None:
    br = await emulator_client("bedrock", emu=timed)
    arn = (await br.create_model_invocation_job(**bedrock_job("to-stop")))["jobArn"]
    clock.advance(3.5 * STEP)  # a quarter into the InProgress window
    await br.stop_model_invocation_job(jobIdentifier=arn)
    job = await br.get_model_invocation_job(jobIdentifier=arn)
    assert job["status"] == "Stopping"
    await br.stop_model_invocation_job(jobIdentifier=arn)  # again while stopping: no-op
    clock.advance(STEP)
    job = await br.get_model_invocation_job(jobIdentifier=arn)
    assert job["status"] == "Stopped"
    assert job["endTime"].timestamp() == 1_700_000_000.0 + 4.5 * STEP
    assert 0 < job["processedRecordCount"] < job["totalRecordCount"]
    with pytest.raises(br.exceptions.ConflictException):
        await br.stop_model_invocation_job(jobIdentifier=arn)
    with pytest.raises(br.exceptions.ResourceNotFoundException):
        await br.stop_model_invocation_job(jobIdentifier="abcdefabcdef")


@pytest.mark.parametrize(
    ("uri", "final", "after_steps"),
    [
        ("s3://bucket/fail.jsonl", "Failed", 2),
        ("s3://bucket/expire.jsonl", "Expired", 3),
        ("s3://bucket/partial.jsonl", "PartiallyCompleted", 5),
    ],
)
async def test_bedrock_other_endings(
    timed: Emulator,
    clock: ManualClock,
    emulator_client: Any,
    uri: str,
    final: str,
    after_steps: int,
) -> None:
    br = await emulator_client("bedrock", emu=timed)
    arn = (await br.create_model_invocation_job(**bedrock_job("marked", uri)))["jobArn"]
    clock.advance(after_steps * STEP - 1)
    assert (await br.get_model_invocation_job(jobIdentifier=arn))["status"] != final
    clock.advance(1)
    job = await br.get_model_invocation_job(jobIdentifier=arn)
    assert job["status"] == final
    assert job["endTime"].timestamp() == 1_700_000_000.0 + after_steps * STEP


async def test_bedrock_idempotency_and_conflicts(timed: Emulator, emulator_client: Any) -> None:
    br = await emulator_client("bedrock", emu=timed)
    first = await br.create_model_invocation_job(**bedrock_job("once", clientRequestToken="tok-1"))
    again = await br.create_model_invocation_job(**bedrock_job("once", clientRequestToken="tok-1"))
    assert first["jobArn"] == again["jobArn"]
    with pytest.raises(br.exceptions.ConflictException):
        await br.create_model_invocation_job(**bedrock_job("once", clientRequestToken="tok-2"))
    # botocore fills in a fresh token when none is given, so a retry-free duplicate
    # name without a token is a conflict too.
    with pytest.raises(br.exceptions.ConflictException):
        await br.create_model_invocation_job(**bedrock_job("once"))
    listed = await br.list_model_invocation_jobs()
    assert len(listed["invocationJobSummaries"]) == 1


async def test_bedrock_job_arns_survive_restarts(emulator_client: Any) -> None:
    arns = []
    for _ in range(2):
        async with Emulator() as emu:
            br = await emulator_client("bedrock", emu=emu)
            arns.append((await br.create_model_invocation_job(**bedrock_job("stable")))["jobArn"])
    assert arns[0] == arns[1]


async def test_bedrock_listing(timed: Emulator, clock: ManualClock, emulator_client: Any) -> None:
    br = await emulator_client("bedrock", emu=timed)
    for n in range(6):
        await br.create_model_invocation_job(**bedrock_job(f"{'alpha' if n % 2 else 'beta'}-{n}"))
        clock.advance(STEP)
    # Job n is 6 - n steps old: 1 Validating, 2 Scheduled, 3-4 InProgress, 5+ Completed.
    listed = await br.list_model_invocation_jobs()
    names = [j["jobName"] for j in listed["invocationJobSummaries"]]
    assert names == [f"{'alpha' if n % 2 else 'beta'}-{n}" for n in range(5, -1, -1)]
    running = await br.list_model_invocation_jobs(statusEquals="InProgress")
    assert [j["jobName"] for j in running["invocationJobSummaries"]] == ["alpha-3", "beta-2"]
    alphas = await br.list_model_invocation_jobs(nameContains="alpha", sortOrder="Ascending")
    assert [j["jobName"] for j in alphas["invocationJobSummaries"]] == [
        "alpha-1",
        "alpha-3",
        "alpha-5",
    ]
    window = await br.list_model_invocation_jobs(
        submitTimeAfter=1_700_000_000.0 + 0.5 * STEP,
        submitTimeBefore=1_700_000_000.0 + 3.5 * STEP,
        sortBy="CreationTime",
    )
    assert [j["jobName"] for j in window["invocationJobSummaries"]] == [
        "alpha-3",
        "beta-2",
        "alpha-1",
    ]
    paginator = br.get_paginator("list_model_invocation_jobs")
    pages = [
        [j["jobName"] for j in page["invocationJobSummaries"]]
        async for page in paginator.paginate(PaginationConfig={"PageSize": 4})
    ]
    assert [len(p) for p in pages] == [4, 2]
    with pytest.raises(br.exceptions.ValidationException):
        await br.list_model_invocation_jobs(nextToken="garbage")


async def test_jobs_advance_with_real_time(emulator: Emulator, emulator_client: Any) -> None:
    """With the default wall clock and a 0.05 s step, a job finishes in well under 1 s."""
    pz = await emulator_client("personalize")
    arn = (await pz.create_batch_inference_job(**personalize_job("quick")))["batchInferenceJobArn"]
    status = ""
    for _ in range(200):  # bounded poll, 10 s at most
        job = await pz.describe_batch_inference_job(batchInferenceJobArn=arn)
        status = job["batchInferenceJob"]["status"]
        if status == "ACTIVE":
            break
        await asyncio.sleep(0.05)
    assert status == "ACTIVE"


async def test_reset_jobs(timed: Emulator, emulator_client: Any) -> None:
    br = await emulator_client("bedrock", emu=timed)
    await br.create_model_invocation_job(**bedrock_job("gone"))
    timed.reset_jobs()
    assert (await br.list_model_invocation_jobs())["invocationJobSummaries"] == []
    await br.create_model_invocation_job(**bedrock_job("gone"))  # the name is free again


def test_config_replace_keeps_other_job_settings() -> None:
    config = EmulatorConfig(jobs=JobsConfig(personalize_max_active=9)).with_job_step(0.5)
    assert config.jobs == replace(JobsConfig(personalize_max_active=9), step_seconds=0.5)
