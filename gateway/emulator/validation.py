"""Request validation driven by botocore's model, as AWS's front end does it.

Each input shape is compiled once, at start-up, into nested closures (patterns compiled
once too), so a request costs a walk over the members it actually carries. Messages use
AWS's wording (``1 validation error detected: Value 'x' at 'path' failed to satisfy
constraint: Member must ...``) so they read like the real service's.

Constraint failures raise the operation's validation error (InvalidInputException for
Personalize and Amazon ML, ValidationException for Bedrock). A JSON value of the wrong
type raises SerializationException, as AWS's JSON front ends do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.emulator.protocol import AwsError
from gateway.patterns import compile_aws_pattern

__all__ = ["Validator"]

# (value, path, constraint errors, type errors) -> None
Check = Callable[[Any, str, list[str], list[str]], None]


def _describe(value: Any, path: str, sensitive: bool) -> str:
    if sensitive:
        return f"Value at '{path}'"
    if isinstance(value, str):
        return f"Value '{value}' at '{path}'"
    if isinstance(value, list | dict):
        return f"Value of size {len(value)} at '{path}'"
    return f"Value '{value}' at '{path}'"


def _fail(value: Any, path: str, sensitive: bool, rule: str) -> str:
    return f"{_describe(value, path, sensitive)} failed to satisfy constraint: Member must {rule}"


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


class _Compiler:
    def __init__(self) -> None:
        # Shapes can be recursive; a cell per shape name lets a check refer to itself.
        self._memo: dict[str, list[Check]] = {}

    def compile(self, shape: Any) -> Check:
        known = self._memo.get(shape.name)
        if known is not None:
            if known:
                return known[0]
            # Still being built (a recursive shape): defer the lookup to call time.
            return lambda v, p, e, t: known[0](v, p, e, t)
        cell: list[Check] = []
        self._memo[shape.name] = cell
        check = self._build(shape)
        cell.append(check)
        return check

    def _build(self, shape: Any) -> Check:
        kind = shape.type_name
        meta = shape.metadata
        sensitive = bool(meta.get("sensitive"))
        lo = meta.get("min")
        hi = meta.get("max")
        if kind == "structure":
            return self._structure(shape)
        if kind == "list":
            return self._list(self.compile(shape.member), lo, hi, sensitive)
        if kind == "map":
            return self._map(shape, lo, hi, sensitive)
        if kind == "string":
            return self._string(shape, lo, hi, sensitive)
        if kind in ("integer", "long"):
            return self._number((int,), lo, hi, sensitive, kind)
        if kind in ("double", "float"):
            return self._number((int, float), lo, hi, sensitive, kind)
        if kind == "boolean":
            return self._typed(bool, kind)
        if kind == "timestamp":
            return self._typed((int, float, str), kind)
        if kind == "blob":
            return self._typed(str, kind)
        return lambda v, p, e, t: None

    @staticmethod
    def _typed(types: type | tuple[type, ...], kind: str) -> Check:
        def check(v: Any, p: str, errors: list[str], type_errors: list[str]) -> None:
            if not isinstance(v, types) or (kind != "boolean" and isinstance(v, bool)):
                type_errors.append(f"Expected {kind} at '{p}'")

        return check

    def _structure(self, shape: Any) -> Check:
        members: dict[str, Check] = {n: self.compile(s) for n, s in shape.members.items()}
        required = tuple(shape.required_members)
        is_union = bool(shape.metadata.get("union"))

        def check(v: Any, p: str, errors: list[str], type_errors: list[str]) -> None:
            if not isinstance(v, dict):
                type_errors.append(f"Expected structure at '{p or '(root)'}'")
                return
            for name in required:
                if v.get(name) is None:
                    errors.append(
                        f"Value null at '{_join(p, name)}' failed to satisfy constraint: "
                        "Member must not be null"
                    )
            present = 0
            for name, value in v.items():
                if value is None:
                    continue
                sub = members.get(name)
                if sub is not None:
                    present += 1
                    sub(value, _join(p, name), errors, type_errors)
            if is_union and present != 1:
                errors.append(
                    f"Value at '{p}' failed to satisfy constraint: "
                    "Member must have exactly one member set"
                )

        return check

    @staticmethod
    def _list(item: Check, lo: int | None, hi: int | None, sensitive: bool) -> Check:
        def check(v: Any, p: str, errors: list[str], type_errors: list[str]) -> None:
            if not isinstance(v, list):
                type_errors.append(f"Expected list at '{p}'")
                return
            n = len(v)
            if lo is not None and n < lo:
                errors.append(_fail(v, p, sensitive, f"have length greater than or equal to {lo}"))
            if hi is not None and n > hi:
                errors.append(_fail(v, p, sensitive, f"have length less than or equal to {hi}"))
            for i, x in enumerate(v, 1):
                if x is not None:
                    item(x, f"{p}.{i}.member", errors, type_errors)

        return check

    def _map(self, shape: Any, lo: int | None, hi: int | None, sensitive: bool) -> Check:
        key_check = self.compile(shape.key)
        value_check = self.compile(shape.value)

        def check(v: Any, p: str, errors: list[str], type_errors: list[str]) -> None:
            if not isinstance(v, dict):
                type_errors.append(f"Expected map at '{p}'")
                return
            n = len(v)
            if lo is not None and n < lo:
                errors.append(_fail(v, p, sensitive, f"have length greater than or equal to {lo}"))
            if hi is not None and n > hi:
                errors.append(_fail(v, p, sensitive, f"have length less than or equal to {hi}"))
            for key, x in v.items():
                key_check(key, f"{p}.{key}.key", errors, type_errors)
                if x is not None:
                    value_check(x, f"{p}.{key}.value", errors, type_errors)

        return check

    @staticmethod
    def _string(shape: Any, lo: int | None, hi: int | None, sensitive: bool) -> Check:
        raw_pattern = shape.metadata.get("pattern")
        rx = compile_aws_pattern(raw_pattern) if raw_pattern else None
        fullmatch = rx.fullmatch if rx is not None else None
        enum = frozenset(shape.enum) if shape.enum else None
        enum_text = "[" + ", ".join(shape.enum) + "]" if shape.enum else ""

        def check(v: Any, p: str, errors: list[str], type_errors: list[str]) -> None:
            if not isinstance(v, str):
                type_errors.append(f"Expected string at '{p}'")
                return
            n = len(v)
            if lo is not None and n < lo:
                errors.append(_fail(v, p, sensitive, f"have length greater than or equal to {lo}"))
            if hi is not None and n > hi:
                errors.append(_fail(v, p, sensitive, f"have length less than or equal to {hi}"))
            if fullmatch is not None and fullmatch(v) is None:
                errors.append(
                    _fail(v, p, sensitive, f"satisfy regular expression pattern: {raw_pattern}")
                )
            if enum is not None and v not in enum:
                errors.append(_fail(v, p, sensitive, f"satisfy enum value set: {enum_text}"))

        return check

    @staticmethod
    def _number(
        types: tuple[type, ...], lo: float | None, hi: float | None, sensitive: bool, kind: str
    ) -> Check:
        def check(v: Any, p: str, errors: list[str], type_errors: list[str]) -> None:
            # An exact type test: JSON gives int/float, and it keeps bool (an int) out.
            if type(v) not in types:
                type_errors.append(f"Expected {kind} at '{p}'")
                return
            if lo is not None and v < lo:
                errors.append(_fail(v, p, sensitive, f"have value greater than or equal to {lo}"))
            if hi is not None and v > hi:
                errors.append(_fail(v, p, sensitive, f"have value less than or equal to {hi}"))

        return check


class Validator:
    """Validates a request dict against one input shape; raises AwsError on failure."""

    def __init__(self, shape: Any, error_code: str) -> None:
        self._check = _Compiler().compile(shape) if shape is not None else None
        self._code = error_code

    def __call__(self, params: dict[str, Any]) -> None:
        if self._check is None:
            return
        errors: list[str] = []
        type_errors: list[str] = []
        self._check(params, "", errors, type_errors)
        if type_errors:
            raise AwsError("SerializationException", type_errors[0])
        if errors:
            n = len(errors)
            noun = "error" if n == 1 else "errors"
            raise AwsError(self._code, f"{n} validation {noun} detected: " + "; ".join(errors))
