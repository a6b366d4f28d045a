"""botocore's service models: loading them, and validating parameters against them.

The model of the pinned botocore version is the one source of truth for every member's
type, requiredness, lengths, ranges, patterns and enum values; the gateway validates every
request with `ShapeValidator` before it may reach AWS. The emulator has its own validator
(`gateway.emulator.validation`, AWS-worded messages, JSON type errors) on purpose: it stands
in for AWS, so the integration tests cross-check this one against an independent reading
of the same model. Both share the Java-pattern translation in `gateway.patterns`.

Violations carry a path of AWS member names, list indexes and map keys; the gateway renders
it as proto field paths. Values come from typed proto messages, so only constraints (not
JSON types) are checked here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import botocore.session
from botocore.model import OperationModel, ServiceModel, Shape

from gateway.patterns import compile_aws_pattern

PathPart = str | int
Path = tuple[PathPart, ...]


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule: where (a path of AWS member names, indexes, map keys) and why."""

    path: Path
    description: str


@cache
def service_model(service: str) -> ServiceModel:
    """The botocore model of `service` (e.g. "personalize-runtime"), loaded once."""
    return botocore.session.get_session().get_service_model(service)


def operation_model(service: str, operation: str) -> OperationModel:
    return service_model(service).operation_model(operation)


def render_aws_path(path: Path) -> str:
    """`promotions[0].filterValues[key]`, the way AWS names members in its messages."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif out:
            out += f".{part}"
        else:
            out = part
    return out


_Check = Callable[[Any, Path, list[Violation]], None]


class ShapeValidator:
    """Validates a parameter dict against a structure shape, as AWS would."""

    def __init__(self, shape: Shape) -> None:
        self._check = _compile(shape)

    def validate(self, params: dict[str, Any]) -> list[Violation]:
        found: list[Violation] = []
        self._check(params, (), found)
        return found


@cache
def input_validator(service: str, operation: str) -> ShapeValidator:
    return ShapeValidator(operation_model(service, operation).input_shape)


# Shapes can be recursive, and botocore builds a new Shape object per resolution, so compiled
# checks are memoised per (model, shape name) and cycles go through this table at call time.
_compiled: dict[tuple[int, str], _Check] = {}


def _compile(shape: Shape) -> _Check:
    key = (id(shape._shape_resolver), shape.name)
    check = _compiled.get(key)
    if check is None:
        _compiled[key] = lambda v, p, out: _compiled[key](v, p, out)  # placeholder for cycles
        check = _build(shape)
        _compiled[key] = check
    return check


def _build(shape: Shape) -> _Check:
    kind = shape.type_name
    if kind == "structure":
        return _structure(shape)
    if kind == "list":
        return _sized(shape, _each(_compile(shape.member)))
    if kind == "map":
        return _sized(shape, _map_entries(_compile(shape.key), _compile(shape.value)))
    if kind == "string":
        return _string(shape)
    if kind in ("integer", "long", "float", "double"):
        return _number(shape)
    return _accept


def _accept(value: Any, path: Path, out: list[Violation]) -> None:
    return None


def _structure(shape: Shape) -> _Check:
    members = {name: _compile(member) for name, member in shape.members.items()}
    required = tuple(shape.required_members)
    is_union = bool(shape.metadata.get("union"))

    def check(value: Any, path: Path, out: list[Violation]) -> None:
        for name in required:
            if value.get(name) is None:
                out.append(Violation((*path, name), "is required"))
        if is_union and len(value) != 1:
            out.append(Violation(path, "must set exactly one member"))
        for name, item in value.items():
            member_check = members.get(name)
            if member_check is not None and item is not None:
                member_check(item, (*path, name), out)

    return check


def _sized(shape: Shape, inner: _Check) -> _Check:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")

    def check(value: Any, path: Path, out: list[Violation]) -> None:
        size = len(value)
        if low is not None and size < low:
            out.append(Violation(path, f"must have at least {low} entries"))
        if high is not None and size > high:
            # Stop here: checking every entry of a hostile size costs more than rejecting it.
            out.append(Violation(path, f"must have at most {high} entries"))
        else:
            inner(value, path, out)

    return check


def _each(member: _Check) -> _Check:
    def check(value: Any, path: Path, out: list[Violation]) -> None:
        for index, item in enumerate(value):
            member(item, (*path, index), out)

    return check


def _map_entries(key_check: _Check, value_check: _Check) -> _Check:
    def check(value: Any, path: Path, out: list[Violation]) -> None:
        for key, item in value.items():
            key_check(key, (*path, key), out)
            value_check(item, (*path, key), out)

    return check


def _string(shape: Shape) -> _Check:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    enum = frozenset(shape.enum) if getattr(shape, "enum", None) else None
    source = shape.metadata.get("pattern")
    pattern = compile_aws_pattern(source) if source is not None else None

    def check(value: Any, path: Path, out: list[Violation]) -> None:
        size = len(value)
        if low is not None and size < low:
            out.append(Violation(path, f"must be at least {low} characters long"))
        elif high is not None and size > high:
            out.append(Violation(path, f"must be at most {high} characters long"))
        elif enum is not None and value not in enum:
            out.append(Violation(path, f"must be one of {', '.join(sorted(enum))}"))
        elif pattern is not None and pattern.fullmatch(value) is None:
            out.append(Violation(path, f"must match the pattern {source}"))

    return check


def _number(shape: Shape) -> _Check:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")

    def check(value: Any, path: Path, out: list[Violation]) -> None:
        if isinstance(value, float) and not math.isfinite(value):
            out.append(Violation(path, "must be a finite number"))
        elif low is not None and value < low:
            out.append(Violation(path, f"must be at least {low}"))
        elif high is not None and value > high:
            out.append(Violation(path, f"must be at most {high}"))

    return check
