"""The protos mirror botocore's model of every scoped operation, recursively and exactly.

The check reads the protos themselves (a descriptor set with source info, built by protoc
from protos/), so comments are checked as well as types. A meta-test deletes one nested
field from a copy of the protos and proves the check notices.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.model import Shape
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from mlgw.options.v1 import options_pb2

from gateway.awsmodel import operation_model
from gateway.operations import OPERATIONS

ROOT = Path(__file__).resolve().parents[2]
PROTOS = ROOT / "protos"
T = FieldDescriptor
SCALARS = {
    "string": T.TYPE_STRING,
    "integer": T.TYPE_INT32,
    "long": T.TYPE_INT64,
    "double": T.TYPE_DOUBLE,
    "float": T.TYPE_FLOAT,
    "boolean": T.TYPE_BOOL,
    "blob": T.TYPE_BYTES,
}
# SourceCodeInfo path numbers (descriptor.proto).
FILE_MESSAGE, FILE_ENUM, FILE_SERVICE = 4, 5, 6
MSG_FIELD, MSG_NESTED, MSG_ENUM, ENUM_VALUE, SERVICE_METHOD = 2, 3, 4, 2, 2


def build_descriptor_set(protos: Path, out: Path) -> descriptor_pb2.FileDescriptorSet:
    # The vendored googleapis protos are an include path only, as in clients/generate.py.
    files = sorted(str(p.relative_to(protos)) for p in (protos / "mlgw").rglob("*.proto"))
    command = [sys.executable, "-m", "grpc_tools.protoc", f"-I{protos}", f"-I{protos / 'vendor'}"]
    command += ["--include_source_info", "--include_imports", f"--descriptor_set_out={out}"]
    subprocess.run([*command, *files], check=True, capture_output=True, cwd=protos)
    return descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())


class Protos:
    """A descriptor pool plus the leading comment of every element, by full name."""

    def __init__(self, fds: descriptor_pb2.FileDescriptorSet) -> None:
        self.pool = descriptor_pool.DescriptorPool()
        self.comments: dict[str, str] = {}
        self.elements: list[str] = []
        #: enum full name -> the aws_value option of each value, in order (read from the raw
        #: descriptor protos, where the option extension is registered).
        self.aws_values: dict[str, list[str]] = {}
        for file in fds.file:
            self.pool.Add(file)
            if file.package.startswith("mlgw."):
                self._collect(file)

    def _collect(self, file: descriptor_pb2.FileDescriptorProto) -> None:
        by_path = {tuple(loc.path): loc.leading_comments for loc in file.source_code_info.location}

        def note(name: str, path: tuple[int, ...]) -> None:
            self.elements.append(name)
            self.comments[name] = by_path.get(path, "").strip()

        def walk_enum(enum: descriptor_pb2.EnumDescriptorProto, scope: str, path: tuple[int, ...]):
            note(f"{scope}.{enum.name}", path)
            self.aws_values[f"{scope}.{enum.name}"] = [
                v.options.Extensions[options_pb2.aws_value] for v in enum.value
            ]
            for i, value in enumerate(enum.value):
                note(f"{scope}.{enum.name}.{value.name}", (*path, ENUM_VALUE, i))

        def walk_message(msg: descriptor_pb2.DescriptorProto, scope: str, path: tuple[int, ...]):
            name = f"{scope}.{msg.name}"
            if msg.options.map_entry:
                return
            note(name, path)
            for i, field in enumerate(msg.field):
                note(f"{name}.{field.name}", (*path, MSG_FIELD, i))
            for i, nested in enumerate(msg.nested_type):
                walk_message(nested, name, (*path, MSG_NESTED, i))
            for i, enum in enumerate(msg.enum_type):
                walk_enum(enum, name, (*path, MSG_ENUM, i))

        for i, msg in enumerate(file.message_type):
            walk_message(msg, file.package, (FILE_MESSAGE, i))
        for i, enum in enumerate(file.enum_type):
            walk_enum(enum, file.package, (FILE_ENUM, i))
        for i, service in enumerate(file.service):
            note(f"{file.package}.{service.name}", (FILE_SERVICE, i))
            for j, method in enumerate(service.method):
                path = (FILE_SERVICE, i, SERVICE_METHOD, j)
                note(f"{file.package}.{service.name}.{method.name}", path)


def mismatches(protos: Protos) -> Iterator[str]:
    """Every way the protos differ from botocore's model; empty when they mirror it."""
    for op in OPERATIONS:
        model = operation_model(op.upstream, op.name)
        for proto_name, shape in (
            (op.request.DESCRIPTOR.full_name, model.input_shape),
            (op.response.DESCRIPTOR.full_name, model.output_shape),
        ):
            message = protos.pool.FindMessageTypeByName(proto_name)
            yield from _structure(protos, message, shape, op.name, set())


def _structure(
    protos: Protos, message: Descriptor, shape: Shape | None, where: str, seen: set[str]
) -> Iterator[str]:
    if message.full_name in seen:
        return
    seen.add(message.full_name)
    members = dict(shape.members) if shape is not None else {}
    fields = {f.json_name: f for f in message.fields}
    for extra in sorted(set(fields) - set(members)):
        yield f"{where}: {message.full_name}.{fields[extra].name} has no AWS member {extra}"
    required = set(shape.required_members) if shape is not None else set()
    for name, member in members.items():
        at = f"{where}: {message.name}.{name}"
        field = fields.get(name)
        if field is None:
            yield f"{at} has no proto field (json_name {name})"
            continue
        comment = protos.comments.get(field.full_name, "")
        if ("Required." in comment) != (name in required):
            yield f"{at}: 'Required.' in the comment must match AWS ({name in required})"
        yield from _member(protos, field, member, at, seen, required=name in required)


def _member(
    protos: Protos, field: FieldDescriptor, member: Shape, at: str, seen: set[str], required: bool
) -> Iterator[str]:
    kind = member.type_name
    is_map = field.message_type is not None and field.message_type.GetOptions().map_entry
    repeated = field.is_repeated
    if kind == "list":
        if not repeated or is_map:
            yield f"{at} must be a repeated field"
            return
        yield from _value(protos, field, member.member, at, seen)
    elif kind == "map":
        if not is_map:
            yield f"{at} must be a map field"
            return
        entry = field.message_type
        if entry.fields_by_name["key"].type != T.TYPE_STRING:
            yield f"{at} map keys must be strings"
        yield from _value(protos, entry.fields_by_name["value"], member.value, at, seen)
    elif repeated:
        yield f"{at} must not be repeated"
    else:
        yield from _value(protos, field, member, at, seen)
        scalar = kind in SCALARS and not _enum_values(member)
        if scalar and not required and not field.has_presence:
            yield f"{at} is an optional scalar and must be declared `optional`"


def _value(
    protos: Protos, field: FieldDescriptor, shape: Shape, at: str, seen: set[str]
) -> Iterator[str]:
    kind = shape.type_name
    if kind == "structure":
        if field.message_type is None:
            yield f"{at} must be a message"
        else:
            yield from _structure(protos, field.message_type, shape, at, seen)
    elif kind == "list":  # an AWS list as a map value: a wrapper with one `values` field
        wrapper = field.message_type
        inner = wrapper.fields_by_name.get("values") if wrapper is not None else None
        if wrapper is None or len(wrapper.fields) != 1 or inner is None:
            yield f"{at} must be a wrapper message with one repeated field `values`"
        else:
            yield from _value(protos, inner, shape.member, at, seen)
    elif kind == "timestamp":
        if field.message_type is None or field.message_type.full_name != (
            "google.protobuf.Timestamp"
        ):
            yield f"{at} must be a google.protobuf.Timestamp"
    elif _enum_values(shape) and field.type == T.TYPE_ENUM:
        yield from _enum(protos, field.enum_type, _enum_values(shape), at)
    elif _enum_values(shape) and field.containing_type.GetOptions().map_entry:
        pass  # proto maps cannot have enum keys; the comment lists the allowed values
    elif _enum_values(shape):
        yield f"{at} must be an enum"
    elif SCALARS.get(kind) != field.type:
        yield f"{at} has proto type {field.type}, AWS type {kind}"


def _enum(
    protos: Protos, enum: EnumDescriptor, aws_values: tuple[str, ...], at: str
) -> Iterator[str]:
    wire = protos.aws_values[enum.full_name]
    if enum.values[0].number != 0 or wire[0]:
        yield f"{at}: {enum.full_name} must start with an UNSPECIFIED zero value"
    missing = sorted(set(aws_values) - set(wire))
    extra = sorted(set(wire[1:]) - set(aws_values))
    if missing or extra:
        yield f"{at}: {enum.full_name} missing {missing}, unknown {extra}"


def _enum_values(shape: Shape) -> tuple[str, ...]:
    return tuple(getattr(shape, "enum", None) or ())


@pytest.fixture(scope="module")
def protos(tmp_path_factory: pytest.TempPathFactory) -> Protos:
    out = tmp_path_factory.mktemp("fds") / "protos.binpb"
    return Protos(build_descriptor_set(PROTOS, out))


def test_protos_mirror_botocore_models(protos: Protos) -> None:
    found = list(mismatches(protos))
    assert not found, "\n".join(found)


def test_every_element_is_commented(protos: Protos) -> None:
    bare = [name for name in protos.elements if not protos.comments.get(name)]
    assert not bare, f"uncommented: {bare}"
    assert len(protos.elements) > 300  # the walk really covered the protos


def test_services_expose_exactly_the_table(protos: Protos) -> None:
    for service in {op.service for op in OPERATIONS}:
        rpcs = {m.name for m in protos.pool.FindServiceByName(service).methods}
        assert rpcs == {op.name for op in OPERATIONS if op.service == service}


def test_check_notices_a_deleted_nested_field(tmp_path: Path) -> None:
    copy = tmp_path / "protos"
    shutil.copytree(PROTOS, copy)
    source = copy / "mlgw/personalize_runtime/v1/personalize_runtime.proto"
    lines = source.read_text().splitlines(keepends=True)
    kept = [line for line in lines if "percent_promoted_items" not in line]
    assert len(kept) == len(lines) - 1
    source.write_text("".join(kept))
    found = list(mismatches(Protos(build_descriptor_set(copy, tmp_path / "fds.binpb"))))
    assert any("Promotion.percentPromotedItems has no proto field" in f for f in found), found
