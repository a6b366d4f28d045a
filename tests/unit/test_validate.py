"""The validation stages: open enums, early stops on hostile sizes, one entry per field."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from mlgw.personalize_runtime.v1 import personalize_runtime_pb2 as rt

from gateway.awsmodel import input_validator, render_aws_path
from gateway.config import Config
from gateway.errors import FieldViolation, InvalidRequest
from gateway.operations import OPERATIONS, Operation
from gateway.pipeline.call import Call
from gateway.pipeline.validate import (
    OversizedRequest,
    Precheck,
    Validate,
    merge_violations,
    request_parser,
)
from gateway.server import Gateway

ARN = "arn:aws:personalize:us-east-1:000000000000"
RECOMMENDATIONS = next(op for op in OPERATIONS if op.name == "GetRecommendations")


def enum_fields(
    descriptor: Descriptor, prefix: tuple[FieldDescriptor, ...] = ()
) -> Iterator[tuple[FieldDescriptor, ...]]:
    """Every path from a request message to a singular enum field, from descriptors."""
    for fd in descriptor.fields:
        if fd.type == FieldDescriptor.TYPE_ENUM and not fd.is_repeated:
            yield (*prefix, fd)
        elif fd.message_type is not None and not fd.is_repeated and fd not in prefix:
            yield from enum_fields(fd.message_type, (*prefix, fd))


ENUM_CASES = [
    pytest.param(op, path, id=f"{op.name}.{'.'.join(fd.name for fd in path)}")
    for op in OPERATIONS
    for path in enum_fields(op.request.DESCRIPTOR)
]


async def run_stages(op: Operation, request: Message, *stages: Precheck | Validate) -> int:
    """Run `request` through `stages`; the number of calls that got past them."""
    passed = 0

    async def terminal(call: Call) -> Message:
        nonlocal passed
        passed += 1
        return op.response()

    handler = terminal
    for stage in reversed(stages):
        handler = stage.wrap(op, handler)
    loop = asyncio.get_running_loop()
    await handler(Call(op, request, loop.time() + 5))
    return passed


def test_every_request_enum_field_is_covered() -> None:
    covered = {case.id for case in ENUM_CASES}
    for expected in (
        "ListModelInvocationJobs.sort_order",
        "ListModelInvocationJobs.status_equals",
        "ListModelInvocationJobs.sort_by",
        "DescribeBatchPredictions.filter_variable",
        "CreateBatchInferenceJob.batch_inference_job_mode",
        "CreateModelInvocationJob.input_data_config.s3_input_data_config.s3_input_format",
    ):
        assert expected in covered


@pytest.mark.parametrize(("op", "path"), ENUM_CASES)
async def test_an_unknown_enum_number_is_invalid_before_anything_else(
    op: Operation, path: tuple[FieldDescriptor, ...]
) -> None:
    request = op.request()
    message: Message = request
    for fd in path[:-1]:
        message = getattr(message, fd.name)
    setattr(message, path[-1].name, 99)  # proto3 enums are open: this parses
    with pytest.raises(InvalidRequest) as caught:
        await run_stages(op, request, Precheck(), Validate())
    named = [v.field for v in caught.value.violations]
    assert named == [".".join(fd.name for fd in path)]
    assert "unknown enum value 99" in caught.value.violations[0].description


def test_the_precheck_runs_before_the_cache_computes_a_key() -> None:
    stages = Gateway(Config.from_dict({})).stages()
    assert isinstance(stages[0], Precheck)
    assert [type(s).__name__ for s in stages[:3]] == ["Precheck", "Cache", "Validate"]


async def test_an_oversized_map_stops_at_its_count() -> None:
    """Keys that each break the key pattern: only the count is reported, so no entry was
    checked, and the call never got past the precheck (no key, no conversion)."""
    request = rt.GetRecommendationsRequest(
        campaign_arn=f"{ARN}:campaign/demo",
        user_id="u",
        context={f"bad-key-{i}": "v" for i in range(50_000)},
    )
    with pytest.raises(InvalidRequest) as caught:
        await run_stages(RECOMMENDATIONS, request, Precheck())
    assert caught.value.violations == (FieldViolation("context", "must have at most 150 entries"),)


async def test_long_strings_and_lists_stop_early_too() -> None:
    request = rt.GetRecommendationsRequest(
        campaign_arn=f"{ARN}:campaign/demo",
        user_id="u" * 600_000,
        metadata_columns={"ITEMS": rt.ColumnNamesList(values=["bad column"] * 5_000)},
    )
    with pytest.raises(InvalidRequest) as caught:
        await run_stages(RECOMMENDATIONS, request, Precheck())
    assert {v.field: v.description for v in caught.value.violations} == {
        "user_id": "must be at most 256 characters long",
        'metadata_columns["ITEMS"].values': "must have at most 99 entries",
    }


async def test_a_small_request_passes_the_precheck_to_get_every_violation() -> None:
    request = rt.GetRecommendationsRequest(user_id="u" * 300, num_results=600)
    assert await run_stages(RECOMMENDATIONS, request, Precheck()) == 1
    with pytest.raises(InvalidRequest) as caught:
        await run_stages(RECOMMENDATIONS, request, Precheck(), Validate())
    assert {v.field for v in caught.value.violations} == {
        "campaign_arn",
        "recommender_arn",
        "user_id",
        "num_results",
    }


def test_the_full_validator_skips_the_entries_of_an_oversized_map() -> None:
    found = input_validator("personalize-runtime", "GetRecommendations").validate(
        {"context": {f"bad-key-{i}": "v" for i in range(151)}}
    )
    assert [render_aws_path(v.path) for v in found] == ["context"]


async def test_each_field_is_named_once_with_every_broken_rule() -> None:
    request = rt.GetRecommendationsRequest(campaign_arn="", user_id="u")
    with pytest.raises(InvalidRequest) as caught:
        await run_stages(RECOMMENDATIONS, request, Validate())
    fields = [v.field for v in caught.value.violations]
    assert fields == ["campaign_arn", "recommender_arn"]
    first = caught.value.violations[0].description
    assert first.startswith("must match the pattern")
    assert first.endswith("; set exactly one of campaignArn or recommenderArn")


def test_merge_violations_keeps_order_and_drops_repeats() -> None:
    merged = merge_violations(
        [
            FieldViolation("b", "x"),
            FieldViolation("a", "y"),
            FieldViolation("b", "z"),
            FieldViolation("b", "x"),
        ]
    )
    assert merged == [FieldViolation("b", "x; z"), FieldViolation("a", "y")]


def test_the_edge_parser_counts_a_big_body_without_building_it() -> None:
    """Above 64 KiB a shallow parse counts the maps and lists: a hostile count never gets a
    full parse (building a 50,000-entry map is what costs), and the precheck reports it."""
    parse = request_parser(RECOMMENDATIONS)
    hostile = rt.GetRecommendationsRequest(
        campaign_arn=f"{ARN}:campaign/demo", context={f"k{i:05d}": "v" for i in range(50_000)}
    )
    parsed = parse(hostile.SerializeToString())
    assert isinstance(parsed, OversizedRequest)
    assert parsed.violations == [FieldViolation("context", "must have at most 150 entries")]
    long = rt.GetRecommendationsRequest(user_id="u" * 638_000)
    parsed = parse(long.SerializeToString())
    assert isinstance(parsed, OversizedRequest)
    assert [v.field for v in parsed.violations] == ["user_id"]


def test_the_edge_parser_parses_what_it_cannot_prove_too_large() -> None:
    parse = request_parser(RECOMMENDATIONS)
    small = rt.GetRecommendationsRequest(user_id="u", context={f"k{i}": "v" for i in range(151)})
    assert parse(small.SerializeToString()) == small  # small bodies: parsed as they are
    # 1,000 bytes may be 250 characters: only the full parse can tell, so it runs.
    accented = rt.GetRecommendationsRequest(user_id="é" * 500, context={"k": "v" * 70_000})
    assert parse(accented.SerializeToString()) == accented


async def test_the_precheck_raises_what_the_edge_parser_found() -> None:
    oversized = OversizedRequest([FieldViolation("context", "must have at most 150 entries")])
    with pytest.raises(InvalidRequest) as caught:
        await run_stages(RECOMMENDATIONS, oversized, Precheck())  # type: ignore[arg-type]
    assert [v.field for v in caught.value.violations] == ["context"]
