"""Validation stage: reject what AWS would reject, before anything else runs.

Rules come from botocore's model of the pinned version (required, length, range, pattern,
enum, list and map sizes) plus the operation row's cross-field rules. Every violation is
reported at once, named by its proto field path, as google.rpc.BadRequest.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from gateway.awsmodel import Path, Violation, input_validator
from gateway.errors import FieldViolation, InvalidRequest
from gateway.operations import Operation
from gateway.pipeline.call import Call, Handler


class Validate:
    """Stage: INVALID_ARGUMENT with every violated field, or pass the call on."""

    def wrap(self, op: Operation, inner: Handler) -> Handler:
        model = input_validator(op.upstream, op.name)
        rules = op.rules
        descriptor = op.request.DESCRIPTOR

        async def validate(call: Call) -> Message:
            params = call.params
            found = model.validate(params)
            for rule in rules:
                found.extend(rule(params))
            if found:
                raise InvalidRequest(_field_violation(descriptor, v) for v in found)
            return await inner(call)

        return validate


def _field_violation(descriptor: Descriptor | Any, violation: Violation) -> FieldViolation:
    return FieldViolation(proto_path(descriptor, violation.path), violation.description)


def proto_path(descriptor: Descriptor | None, path: Path) -> str:
    """Render an AWS member path with proto field names: `promotions[0].filter_values["k"]`."""
    out = ""
    for part in path:
        if descriptor is not None and descriptor.GetOptions().map_entry:
            out += f'["{part}"]'  # a map key; the value type carries on
            descriptor = descriptor.fields_by_name["value"].message_type
        elif isinstance(part, int):
            # An AWS list inside a map is a wrapper message with one `values` field.
            wrapped = descriptor is not None and "values" in descriptor.fields_by_name
            out += f".values[{part}]" if wrapped else f"[{part}]"
        else:
            field = _fields_by_json_name(descriptor).get(part) if descriptor else None
            name = field.name if field is not None else part
            out += f".{name}" if out else name
            descriptor = field.message_type if field is not None else None
    return out


@cache
def _fields_by_json_name(descriptor: Descriptor) -> dict[str, FieldDescriptor]:
    return {field.json_name: field for field in descriptor.fields}
