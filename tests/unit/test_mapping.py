"""Round-trip properties of the descriptor-driven mapper, over every mirrored message."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from botocore.validate import ParamValidator
from google.protobuf import timestamp_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.awsmodel import operation_model
from gateway.operations import OPERATIONS, PROTO_MODULES
from gateway.upstream.mapping import aws_enum_values, from_aws, to_aws

T = FieldDescriptor
INT_RANGES = {
    T.TYPE_INT32: (-(2**31), 2**31 - 1),
    T.TYPE_INT64: (-(2**63), 2**63 - 1),
}


def all_messages() -> list[Descriptor]:
    found: dict[str, Descriptor] = {}

    def walk(descriptor: Descriptor) -> None:
        if descriptor.GetOptions().map_entry or descriptor.full_name in found:
            return
        found[descriptor.full_name] = descriptor
        for nested in descriptor.nested_types:
            walk(nested)

    for module in PROTO_MODULES:
        for descriptor in module.DESCRIPTOR.message_types_by_name.values():
            walk(descriptor)
    return sorted(found.values(), key=lambda d: d.full_name)


def scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    if field.type == T.TYPE_STRING:
        return st.text(max_size=12)
    if field.type in INT_RANGES:
        low, high = INT_RANGES[field.type]
        return st.integers(low, high)
    if field.type in (T.TYPE_DOUBLE, T.TYPE_FLOAT):
        width = 32 if field.type == T.TYPE_FLOAT else 64
        return st.floats(allow_nan=False, allow_infinity=False, width=width)
    if field.type == T.TYPE_BOOL:
        return st.booleans()
    if field.type == T.TYPE_BYTES:
        return st.binary(max_size=8)
    if field.type == T.TYPE_ENUM:
        return st.sampled_from([v.number for v in field.enum_type.values])
    raise AssertionError(f"unhandled type {field.type} of {field.full_name}")


def value(field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    if field.message_type is None:
        return scalar(field)
    if field.message_type.full_name == "google.protobuf.Timestamp":
        moments = st.datetimes(
            min_value=dt.datetime(1971, 1, 1),
            max_value=dt.datetime(2200, 1, 1),
            timezones=st.just(dt.UTC),
        )
        return moments.map(timestamp)
    return messages(field.message_type, depth + 1)


def timestamp(moment: dt.datetime) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(moment)
    return ts


@st.composite
def _message(draw: st.DrawFn, descriptor: Descriptor, depth: int) -> Message:
    kwargs: dict[str, Any] = {}
    oneofs_used: set[str] = set()
    for field in descriptor.fields:
        oneof = field.containing_oneof
        if oneof is not None and (oneof.name in oneofs_used or draw(st.booleans())):
            continue
        is_map = field.message_type is not None and field.message_type.GetOptions().map_entry
        if is_map:
            inner = field.message_type.fields_by_name["value"]
            kwargs[field.name] = draw(
                st.dictionaries(
                    st.text(max_size=6), value(inner, depth), max_size=2 if depth < 2 else 0
                )
            )
        elif field.is_repeated:
            kwargs[field.name] = draw(st.lists(value(field, depth), max_size=2 if depth < 2 else 0))
        elif field.has_presence:
            if depth < 3 and draw(st.booleans()):
                kwargs[field.name] = draw(value(field, depth))
        else:
            kwargs[field.name] = draw(value(field, depth))
        if oneof is not None and field.name in kwargs:
            oneofs_used.add(oneof.name)
    return GetMessageClass(descriptor)(**kwargs)


def messages(descriptor: Descriptor, depth: int = 0) -> st.SearchStrategy[Message]:
    return _message(descriptor, depth)


MESSAGES = all_messages()


def test_every_mirrored_message_is_covered() -> None:
    names = {d.name for d in MESSAGES}
    for op in OPERATIONS:
        assert op.request.DESCRIPTOR.name in names
        assert op.response.DESCRIPTOR.name in names
    assert len(MESSAGES) >= 2 * len(OPERATIONS)


@pytest.mark.parametrize("descriptor", MESSAGES, ids=lambda d: d.full_name)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_round_trip(descriptor: Descriptor, data: st.DataObject) -> None:
    message = data.draw(messages(descriptor))
    params = to_aws(message)
    assert from_aws(type(message), params) == message
    # Exactly the set fields are present, under their AWS member names.
    assert set(params) == {fd.json_name for fd, _ in message.ListFields()}
    for fd, _ in message.ListFields():
        check_wire_type(fd, params[fd.json_name])


def check_wire_type(field: FieldDescriptor, wire: Any) -> None:
    is_map = field.message_type is not None and field.message_type.GetOptions().map_entry
    if is_map:
        assert isinstance(wire, dict)
        return
    items = wire if field.is_repeated else [wire]
    for item in items:
        if field.type == T.TYPE_ENUM:
            assert isinstance(item, str)
            assert item in aws_enum_values(field.enum_type).values()
        elif field.message_type is not None and field.message_type.name == "Timestamp":
            assert isinstance(item, dt.datetime)
            assert item.tzinfo is not None
        elif field.type in INT_RANGES:
            assert type(item) is int


@pytest.mark.parametrize("op", OPERATIONS, ids=lambda op: op.name)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_requests_have_the_types_botocore_expects(op: Any, data: st.DataObject) -> None:
    """botocore's own validator finds no type, enum-shape or unknown-member errors."""
    params = to_aws(data.draw(messages(op.request.DESCRIPTOR)))
    shape = operation_model(op.upstream, op.name).input_shape
    report = ParamValidator().validate(params, shape)
    kinds = {error[0] for error in report._errors}
    assert not kinds & {"invalid type", "unknown field", "unable to encode to json"}, (
        report.generate_report()
    )


def test_enums_travel_as_aws_strings_and_unset_fields_are_absent() -> None:
    from mlgw.bedrock.v1 import bedrock_pb2 as bedrock

    request = bedrock.ListModelInvocationJobsRequest(
        status_equals=bedrock.MODEL_INVOCATION_JOB_STATUS_IN_PROGRESS, max_results=0
    )
    assert to_aws(request) == {"statusEquals": "InProgress", "maxResults": 0}
    assert to_aws(bedrock.ListModelInvocationJobsRequest()) == {}


def test_timestamps_and_int64_from_botocore() -> None:
    from mlgw.machinelearning.v1 import machinelearning_pb2 as aml

    moment = dt.datetime(2026, 11, 23, 1, 2, 3, 456000, tzinfo=dt.UTC)
    reply = from_aws(
        aml.GetBatchPredictionResponse,
        {"BatchPredictionId": "bp-1", "CreatedAt": moment, "TotalRecordCount": 2**40,
         "Status": "INPROGRESS", "ResponseMetadata": {"RequestId": "r"}},
    )  # fmt: skip
    assert reply.created_at.ToDatetime(tzinfo=dt.UTC) == moment
    assert reply.total_record_count == 2**40
    assert reply.status == aml.ENTITY_STATUS_INPROGRESS


def test_an_enum_string_aws_added_reads_unspecified_logged_once_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from mlgw.bedrock.v1 import bedrock_pb2 as bedrock

    from gateway import metrics

    field = "mlgw.bedrock.v1.ModelInvocationJobSummary.status"
    counter = metrics.UNKNOWN_ENUM_VALUES.labels("ListModelInvocationJobs", field)
    before = counter._value.get()
    answer = {
        "invocationJobSummaries": [
            {"jobName": "a", "status": "Hibernating"},
            {"jobName": "b", "status": "InProgress"},
            {"jobName": "c", "status": "Hibernating"},
        ]
    }
    with caplog.at_level("WARNING", logger="gateway.upstream.mapping"):
        reply = from_aws(bedrock.ListModelInvocationJobsResponse, answer)
        from_aws(bedrock.ListModelInvocationJobsResponse, answer)
    statuses = [job.status for job in reply.invocation_job_summaries]
    assert statuses == [
        bedrock.MODEL_INVOCATION_JOB_STATUS_UNSPECIFIED,
        bedrock.MODEL_INVOCATION_JOB_STATUS_IN_PROGRESS,
        bedrock.MODEL_INVOCATION_JOB_STATUS_UNSPECIFIED,
    ]
    assert [job.job_name for job in reply.invocation_job_summaries] == ["a", "b", "c"]
    assert counter._value.get() == before + 4
    lines = [r for r in caplog.records if getattr(r, "value", None) == "Hibernating"]
    assert len(lines) == 1  # once per (field, value) per process
    assert lines[0].operation == "ListModelInvocationJobs"  # type: ignore[attr-defined]
    assert lines[0].field == field  # type: ignore[attr-defined]
