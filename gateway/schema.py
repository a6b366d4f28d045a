"""The one schema mechanism of every configuration (the gateway's and the emulator's).

A settings section is a frozen dataclass decorated with `settings`: pydantic validates it
on construction (so `dataclasses.replace` and direct calls are checked too), rejects
unknown keys, and takes every type strictly: `"80"` is not a port and `true` is not a
count. Attribute access stays plain dataclass access, so hot paths pay nothing.

A document (a TOML file already parsed) is validated in pydantic's JSON mode, because TOML
values *are* JSON values (tables, arrays, strings, numbers, booleans): strict JSON mode
takes a table for a section and an array for a tuple, and nothing else is coerced.

The constrained types below carry the text a user sees when a value is refused, so a
failure is one line naming the key, the value and what is allowed:

    server.port = -5: must be an integer from 0 to 65535

Add a setting with one line, `name: Seconds = 1.5`, using the type that says what is
allowed; cross-field rules go in an `@model_validator(mode="after")` that raises `invalid`.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import re
import types
import typing
from collections.abc import Mapping
from typing import Annotated, Any, TypeVar, dataclass_transform

import pydantic
import pydantic.dataclasses
import pydantic.fields
from pydantic import AfterValidator, AnyUrl, Field, TypeAdapter, UrlConstraints, ValidationError
from pydantic_core import PydanticCustomError

__all__ = [
    "Count",
    "Fraction",
    "HttpUrl",
    "LogLevel",
    "NonNegativeCount",
    "Number",
    "Port",
    "Positive",
    "Ratio",
    "RedisUrl",
    "Seconds",
    "Text",
    "ZeroOrSeconds",
    "changed",
    "invalid",
    "load",
    "message",
    "settings",
]

T = TypeVar("T")

#: strict: no coercion; forbid: a typo is an error, not a silent default; finite numbers only.
_CONFIG = pydantic.ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)
_SETTING = "setting"  # the error type of `invalid`


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field, Field))
def settings(cls: type[T]) -> type[T]:
    """Make `cls` a frozen, strictly validated settings section (a dataclass still)."""
    made: type[T] = pydantic.dataclasses.dataclass(frozen=True, config=_CONFIG)(cls)  # type: ignore[assignment]
    return made


def _allowed(text: str, **constraints: Any) -> Any:
    return Field(description=text, **constraints)


Port = Annotated[int, _allowed("an integer from 0 to 65535", ge=0, le=65535)]
#: Workers, attempts, queue lengths, sizes in bytes: at least one.
Count = Annotated[int, _allowed("an integer >= 1", ge=1)]
NonNegativeCount = Annotated[int, _allowed("an integer >= 0", ge=0)]
#: A duration that must be > 0 (a timeout of 0 would fail every call).
Seconds = Annotated[float, _allowed("a number of seconds > 0", gt=0)]
#: A duration where 0 means "off" (no wait, no window, no caching).
ZeroOrSeconds = Annotated[float, _allowed("a number of seconds >= 0", ge=0)]
Positive = Annotated[float, _allowed("a number > 0", gt=0)]
Number = Annotated[float, _allowed("a number >= 0", ge=0)]
Fraction = Annotated[float, _allowed("a number from 0 to 1", ge=0, le=1)]
#: A share of calls that must be more than none: (0, 1].
Ratio = Annotated[float, _allowed("a number > 0 and <= 1", gt=0, le=1)]
#: A percentile of a distribution, such as 99.9: (0, 100].
Percentile = Annotated[float, _allowed("a number > 0 and <= 100", gt=0, le=100)]
#: A multiplier that may not shrink what it scales.
Factor = Annotated[float, _allowed("a number >= 1", ge=1)]
Text = Annotated[str, _allowed("a non-empty string", min_length=1)]


def _level(value: str) -> str:
    if value.upper() not in logging.getLevelNamesMapping():
        raise PydanticCustomError("level", "not a level")
    return value


LogLevel = Annotated[
    str,
    AfterValidator(_level),
    _allowed("one of " + ", ".join(logging.getLevelNamesMapping()) + " (any case)"),
]


def _url(*schemes: str, empty: bool = False) -> AfterValidator:
    """Checks a URL string has one of `schemes`; the value stays the string given."""
    checker = TypeAdapter(Annotated[AnyUrl, UrlConstraints(allowed_schemes=list(schemes))])

    def check(value: str) -> str:
        if not (empty and value == ""):
            try:
                checker.validate_python(value)
            except ValidationError:
                raise PydanticCustomError("url", "not such a URL") from None
        return value

    return AfterValidator(check)


HttpUrl = Annotated[str, _url("http", "https"), _allowed("an http:// or https:// URL")]
RedisUrl = Annotated[
    str,
    _url("redis", "rediss", "unix", empty=True),
    _allowed('a redis://, rediss:// or unix:// URL, or "" for none'),
]


def invalid(key: str, value: Any, text: str) -> PydanticCustomError:
    """A cross-field rule's failure, raised from a section's after-validator.

    `key` is relative to the section (`default_deadline_seconds`, `operations.0`);
    `text` says what is wrong or allowed: "must be at most ...", "not an operation (...)".
    """
    return PydanticCustomError(_SETTING, text, {"key": key, "value": value})


# -- validating a document and explaining a failure ------------------------------------------


def load(kind: type[T], data: Any, error: type[Exception], where: str = "") -> T:
    """Validate a parsed TOML document (or table at `where`) as `kind`, raising `error`
    with a one-line message."""
    bad_key = _non_string_key(data, ())
    if bad_key is not None:  # json.dumps would turn it into a string silently
        loc, key = bad_key
        allowed = _description(kind, (*loc, "[key]")) or "a string"
        prefix = f"{where}." if where else ""
        raise error(f"{prefix}{_dotted(loc)} has the key {_render(key)}: it must be {allowed}")
    try:
        document = json.dumps(data, default=_not_toml)
    except _NotToml as exc:
        raise error(f"{_render(exc.value)} is not a value any setting takes") from None
    try:
        return TypeAdapter(kind).validate_json(document)
    except ValidationError as exc:
        raise error(message(kind, exc, prefix=f"{where}." if where else "")) from None


def _non_string_key(
    data: Any, loc: tuple[str | int, ...]
) -> tuple[tuple[str | int, ...], Any] | None:
    if isinstance(data, Mapping):
        for key, value in data.items():
            if not isinstance(key, str):
                return loc, key
            found = _non_string_key(value, (*loc, key))
            if found is not None:
                return found
    elif isinstance(data, list | tuple):
        for i, value in enumerate(data):
            found = _non_string_key(value, (*loc, i))
            if found is not None:
                return found
    return None


class _NotToml(TypeError):
    def __init__(self, value: object) -> None:
        super().__init__()
        self.value = value


def _not_toml(value: object) -> object:
    raise _NotToml(value)  # TOML dates and times: no setting is one


def message(kind: type[Any], exc: ValidationError, prefix: str = "") -> str:
    """The first error of `exc` as `key = value: allowed` (one line, no Python names)."""
    error = exc.errors(include_url=False)[0]
    loc: tuple[str | int, ...] = tuple(error["loc"])
    value = error.get("input")
    ctx = error.get("ctx") or {}
    if error["type"] == _SETTING:
        loc += tuple(int(p) if p.isdigit() else p for p in str(ctx["key"]).split("."))
        value = ctx["value"]
    key = prefix + _dotted(loc)
    shown = "(hidden)" if _secret(kind, loc) else _render(value)
    if loc[-1:] == ("[key]",):  # a table's key is refused: the key is the value
        key = prefix + _dotted(loc[:-2])
        allowed = _explain(kind, (*loc[:-2], "[key]"), error)
        return f"{key} has the key {_render(value)}: it must be {allowed}"
    if error["type"] == "missing":
        return f"{key} is required: {_explain(kind, loc, error)}"
    if error["type"] == "unexpected_keyword_argument":
        known = ", ".join(f.name for f in dataclasses.fields(_section(kind, loc[:-1])))
        return f"{key} = {shown}: unknown setting (known: {known})"
    if error["type"] == _SETTING:
        return f"{key} = {shown}: {error['msg']}"
    return f"{key} = {shown}: must be {_explain(kind, loc, error)}"


_TYPES = {
    "int_type": "an integer",
    "float_type": "a number",
    "string_type": "a string",
    "bool_type": "true or false",
    "dict_type": "a table",
    "dataclass_type": "a table",
    "tuple_type": "an array",
    "list_type": "an array",
}


def _explain(kind: type[Any], loc: tuple[str | int, ...], error: Any) -> str:
    if error["type"] in _TYPES and not _leaf(kind, loc):
        return _TYPES[error["type"]]
    described = _description(kind, loc)
    if described:
        return described
    if error["type"] in _TYPES:
        return _TYPES[error["type"]]
    return str(error["msg"]).removeprefix("Input should be ").removeprefix("Value error, ")


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _dotted(loc: tuple[str | int, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = part if _BARE_KEY.fullmatch(part) else json.dumps(part)
            out += f".{name}" if out else name
    return out


def _render(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return json.dumps(value) if isinstance(value, str) else str(value)
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, datetime.date | datetime.time):
        return f"the date/time {value.isoformat()}"
    return "this value"


# -- walking the schema along an error's location ---------------------------------------------


def _walk(kind: Any, loc: tuple[str | int, ...]) -> list[tuple[Any, Any]]:
    """(type, field info or None) for each step of `loc`; stops where the schema ends."""
    steps: list[tuple[Any, Any]] = []
    current, info = kind, None
    for part in loc:
        current = _unwrap(current)
        fields = getattr(current, "__pydantic_fields__", None)
        origin = typing.get_origin(current)
        if fields is not None and part in fields:
            info = fields[part]
            current = info.annotation
        elif origin in (dict, Mapping):
            current, info = typing.get_args(current)[1 if part != "[key]" else 0], None
        elif origin is tuple and isinstance(part, int):
            current, info = typing.get_args(current)[0], None
        else:
            break
        steps.append((current, info))
    return steps


def _unwrap(kind: Any) -> Any:
    if typing.get_origin(kind) is Annotated:
        kind = typing.get_args(kind)[0]
    if _optional(kind):
        kind = next(arg for arg in typing.get_args(kind) if arg is not type(None))
    return _unwrap(kind) if typing.get_origin(kind) is Annotated else kind


def _optional(kind: Any) -> bool:
    return typing.get_origin(kind) in (typing.Union, types.UnionType)


def _description(kind: type[Any], loc: tuple[str | int, ...]) -> str | None:
    steps = _walk(kind, loc)
    if len(steps) != len(loc):
        return None
    current, info = steps[-1]
    if info is not None and info.description:
        return str(info.description)
    if _optional(current):  # `X | None`: X says what is allowed
        current = next(arg for arg in typing.get_args(current) if arg is not type(None))
    for meta in typing.get_args(current)[1:] if typing.get_origin(current) is Annotated else ():
        if isinstance(meta, pydantic.fields.FieldInfo) and meta.description:
            return str(meta.description)
    return None


def _leaf(kind: type[Any], loc: tuple[str | int, ...]) -> bool:
    """Whether `loc` ends at a value rather than at a section, table or array."""
    steps = _walk(kind, loc)
    if len(steps) != len(loc) or not steps:
        return False
    current = _unwrap(steps[-1][0])
    return not hasattr(current, "__pydantic_fields__") and typing.get_origin(current) not in (
        dict,
        Mapping,
        tuple,
    )


def _section(kind: type[Any], loc: tuple[str | int, ...]) -> Any:
    steps = _walk(kind, loc)
    return _unwrap(steps[-1][0]) if steps else kind


def _secret(kind: type[Any], loc: tuple[str | int, ...]) -> bool:
    """Fields declared `repr=False` (credentials, URLs with passwords) never show values."""
    return any(info is not None and info.repr is False for _, info in _walk(kind, loc))


def changed(obj: T, error: type[Exception], where: str, **changes: Any) -> T:
    """`dataclasses.replace` for a section, failing like `load` (e.g. a bad --port)."""
    try:
        return dataclasses.replace(obj, **changes)  # type: ignore[type-var]
    except ValidationError as exc:
        raise error(message(type(obj), exc, prefix=f"{where}.")) from None
