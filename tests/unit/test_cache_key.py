"""Cache keys: every answer-changing field is in the key; equal requests share one key."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from mlgw.personalize_runtime.v1 import personalize_runtime_pb2 as rt

from gateway.operations import OPERATIONS, Operation
from gateway.pipeline.cachekey import request_key

CACHED = [op for op in OPERATIONS if op.cache is not None]
BY_NAME = {op.name: op for op in OPERATIONS}


def _is_map(fd: FieldDescriptor) -> bool:
    return bool(
        fd.message_type is not None and fd.is_repeated and fd.message_type.GetOptions().map_entry
    )


def _sample(fd: FieldDescriptor, n: int) -> Any:
    if fd.type == FieldDescriptor.TYPE_STRING:
        return f"{fd.name}-{n}"
    if fd.type == FieldDescriptor.TYPE_BOOL:
        return bool(n % 2)
    if fd.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return 0.5 + n
    if fd.type == FieldDescriptor.TYPE_ENUM:
        assert fd.enum_type is not None
        numbers = [v.number for v in fd.enum_type.values if v.number]
        return numbers[n % len(numbers)]
    return 7 + n  # integers


def fill(message: Message, depth: int = 0) -> Message:
    """Set every field (two elements per list and map) so that each one can be changed."""
    for fd in message.DESCRIPTOR.fields:
        if _is_map(fd):
            value_fd = fd.message_type.fields_by_name["value"]
            target = getattr(message, fd.name)
            for n in range(2):
                key = f"key-{n}"
                if value_fd.message_type is not None:
                    fill(target[key], depth + 1)
                else:
                    target[key] = _sample(value_fd, n)
        elif fd.message_type is not None:
            if depth > 2:
                continue
            if fd.is_repeated:
                for _ in range(2):
                    fill(getattr(message, fd.name).add(), depth + 1)
            else:
                fill(getattr(message, fd.name), depth + 1)
        elif fd.is_repeated:
            getattr(message, fd.name).extend([_sample(fd, 0), _sample(fd, 1)])
        else:
            setattr(message, fd.name, _sample(fd, 0))
    return message


def variants(message: Message, path: str = "") -> Iterator[tuple[str, Message]]:
    """(field path, a copy of `message` with exactly that one field changed)."""

    def copy() -> Message:
        out = type(message)()
        out.CopyFrom(message)
        return out

    for fd in message.DESCRIPTOR.fields:
        where = f"{path}{fd.name}"
        if _is_map(fd):
            value_fd = fd.message_type.fields_by_name["value"]
            changed = copy()
            if value_fd.message_type is not None:
                fill(getattr(changed, fd.name)["key-new"])
            else:
                getattr(changed, fd.name)["key-new"] = _sample(value_fd, 0)
            yield f"{where}[+]", changed
            if value_fd.message_type is not None:
                inner = getattr(message, fd.name)["key-0"]
                for sub, variant in variants(inner, f"{where}[key-0]."):
                    changed = copy()
                    getattr(changed, fd.name)["key-0"].CopyFrom(variant)
                    yield sub, changed
            else:
                changed = copy()
                getattr(changed, fd.name)["key-0"] = _sample(value_fd, 5)
                yield f"{where}[key-0]", changed
        elif fd.message_type is not None:
            if fd.is_repeated:
                changed = copy()
                getattr(changed, fd.name).add().CopyFrom(getattr(message, fd.name)[0])
                yield f"{where}[+]", changed
                for sub, variant in variants(getattr(message, fd.name)[0], f"{where}[0]."):
                    changed = copy()
                    getattr(changed, fd.name)[0].CopyFrom(variant)
                    yield sub, changed
            elif message.HasField(fd.name):
                for sub, variant in variants(getattr(message, fd.name), f"{where}."):
                    changed = copy()
                    getattr(changed, fd.name).CopyFrom(variant)
                    yield sub, changed
        elif fd.is_repeated:
            changed = copy()
            getattr(changed, fd.name).append(_sample(fd, 9))
            yield f"{where}[+]", changed
            changed = copy()
            values = list(getattr(changed, fd.name))
            del getattr(changed, fd.name)[:]
            getattr(changed, fd.name).extend(reversed(values))
            yield f"{where}[order]", changed
        else:
            changed = copy()
            setattr(changed, fd.name, _sample(fd, 1))
            yield where, changed
            if fd.has_presence:
                changed = copy()
                changed.ClearField(fd.name)
                yield f"{where}[unset]", changed


def fields_of(descriptor: Descriptor, path: str = "", depth: int = 0) -> set[str]:
    out: set[str] = set()
    for fd in descriptor.fields:
        if _is_map(fd) and fd.message_type.fields_by_name["value"].message_type is not None:
            out |= fields_of(fd.message_type.fields_by_name["value"].message_type, "", depth + 1)
        elif fd.message_type is not None and not _is_map(fd) and depth <= 2:
            out |= fields_of(fd.message_type, "", depth + 1)
        out.add(fd.name)
    return out


@pytest.mark.parametrize("op", CACHED, ids=lambda op: op.name)
def test_changing_any_single_field_changes_the_key(op: Operation) -> None:
    key_of = request_key(op)
    base = fill(op.request())
    base_key = key_of(base)
    changed_fields: set[str] = set()
    seen = 0
    for path, variant in variants(base):
        assert key_of(variant) != base_key, f"{op.name}: changing {path} kept the key"
        changed_fields.update(part.split("[")[0] for part in path.split("."))
        seen += 1
    # Every field of the request, nested ones included, was changed at least once.
    assert changed_fields == fields_of(op.request.DESCRIPTOR), op.name
    assert seen >= len(op.request.DESCRIPTOR.fields)


def test_the_cached_request_types_are_the_runtime_reads_and_job_descriptions() -> None:
    assert {op.name for op in CACHED} == {
        "GetRecommendations",
        "GetPersonalizedRanking",
        "GetActionRecommendations",
        "DescribeBatchInferenceJob",
        "GetBatchPrediction",
        "GetModelInvocationJob",
    }


def test_map_order_does_not_matter() -> None:
    key_of = request_key(BY_NAME["GetRecommendations"])
    a = rt.GetRecommendationsRequest(campaign_arn="arn", user_id="u")
    a.context["device"] = "phone"
    a.context["time"] = "noon"
    a.filter_values["A"] = "1"
    a.filter_values["B"] = "2"
    b = rt.GetRecommendationsRequest(campaign_arn="arn", user_id="u")
    b.filter_values["B"] = "2"
    b.filter_values["A"] = "1"
    b.context["time"] = "noon"
    b.context["device"] = "phone"
    assert key_of(a) == key_of(b)


@pytest.mark.parametrize(
    ("op_name", "default"), [("GetRecommendations", 25), ("GetActionRecommendations", 5)]
)
def test_documented_defaults_are_normalized(op_name: str, default: int) -> None:
    op = BY_NAME[op_name]
    key_of = request_key(op)
    unset = op.request(campaign_arn="arn", user_id="u")
    explicit = op.request(campaign_arn="arn", user_id="u", num_results=default)
    other = op.request(campaign_arn="arn", user_id="u", num_results=default - 1)
    zero = op.request(campaign_arn="arn", user_id="u", num_results=0)
    assert key_of(unset) == key_of(explicit)
    assert key_of(other) != key_of(unset)
    # 0 is kept apart: whether AWS reads it as "the default" is not documented.
    assert key_of(zero) != key_of(unset)
    # Normalizing never touches the caller's message.
    assert explicit.HasField("num_results")
    assert explicit.num_results == default


def test_operations_never_share_keys() -> None:
    ranking = request_key(BY_NAME["GetPersonalizedRanking"])
    actions = request_key(BY_NAME["GetActionRecommendations"])
    # Same bytes on the wire (field 1 = campaign ARN), different operations.
    assert rt.GetPersonalizedRankingRequest(campaign_arn="a").SerializeToString() == (
        rt.GetActionRecommendationsRequest(campaign_arn="a").SerializeToString()
    )
    assert ranking(rt.GetPersonalizedRankingRequest(campaign_arn="a")) != actions(
        rt.GetActionRecommendationsRequest(campaign_arn="a")
    )


def test_merge_key_ignores_only_the_merged_member() -> None:
    op = BY_NAME["GetPersonalizedRanking"]
    merge_key = request_key(op, without=("inputList",))
    a = rt.GetPersonalizedRankingRequest(campaign_arn="c", user_id="u", input_list=["1", "2"])
    b = rt.GetPersonalizedRankingRequest(campaign_arn="c", user_id="u", input_list=["3"])
    c = rt.GetPersonalizedRankingRequest(campaign_arn="c", user_id="v", input_list=["1", "2"])
    assert merge_key(a) == merge_key(b)
    assert merge_key(a) != merge_key(c)
    assert list(a.input_list) == ["1", "2"]  # the caller's request is left alone
    recs = request_key(BY_NAME["GetRecommendations"], without=("numResults",))
    assert recs(rt.GetRecommendationsRequest(campaign_arn="c", num_results=3)) == recs(
        rt.GetRecommendationsRequest(campaign_arn="c")
    )
