"""AWS wire formats: error shapes, rest-json request members, model-driven output encoding.

botocore reads errors like this (``botocore/parsers.py``):

* json 1.1 (``BaseJSONParser._do_error_parse``): the code is the body's ``__type`` (the
  part after ``#`` if namespaced), the message is ``message`` or ``Message``.
* rest-json (``RestJSONParser._inject_error_code``): the code comes from the
  ``x-amzn-ErrorType`` header first, the message from the JSON body as above.

When the code names an error shape of the operation, botocore raises that modelled
exception class (``client.exceptions.<Code>``); otherwise a plain ``ClientError``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote

from gateway.emulator.routing import OpSpec

__all__ = [
    "AwsError",
    "decode_http_members",
    "encode_output",
    "error_body",
    "error_status",
    "iso8601",
]

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode

# Status codes for errors the models do not carry an httpStatusCode for (all json 1.1
# errors, and errors a service returns without modelling them, like throttling).
_DEFAULT_STATUS: Mapping[str, int] = {
    "InternalServerException": 500,
    "InternalFailure": 500,
    "ServiceUnavailableException": 503,
    "ServiceUnavailable": 503,
    "MissingAuthenticationTokenException": 403,
    "IncompleteSignatureException": 403,
    "AccessDeniedException": 403,
}


class AwsError(Exception):
    """An error answered in the service's own wire shape."""

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


def error_status(spec: OpSpec | None, err: AwsError) -> int:
    if err.status is not None:
        return err.status
    if spec is not None:
        modelled = spec.error_status.get(err.code)
        if modelled is not None:
            return modelled
    return _DEFAULT_STATUS.get(err.code, 400)


def error_body(protocol: str, code: str, message: str) -> tuple[bytes, dict[str, str]]:
    """The body and extra headers of an error for ``protocol`` ("json" or "rest-json")."""
    if protocol == "json":
        return _dumps({"__type": code, "message": message}).encode(), {}
    return _dumps({"message": message}).encode(), {"x-amzn-ErrorType": code}


def _parse_timestamp(raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        pass
    value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.timestamp()


def _convert_scalar(shape: Any, raw: str) -> Any:
    kind = shape.type_name
    if kind in ("integer", "long"):
        return int(raw)
    if kind in ("double", "float"):
        return float(raw)
    if kind == "boolean":
        if raw not in ("true", "false"):
            raise ValueError(raw)
        return raw == "true"
    if kind == "timestamp":
        return _parse_timestamp(raw)
    return raw


def decode_http_members(
    spec: OpSpec,
    params: dict[str, Any],
    path_params: Mapping[str, str],
    query_string: str,
    headers: Mapping[str, str],
) -> None:
    """Add the rest-json members bound to the URI, query string and headers to ``params``.

    Values are converted to their modelled types so validation sees the same Python
    types a JSON body would carry (timestamps become epoch seconds).
    """
    query: dict[str, list[str]] = {}
    if query_string:
        for k, v in parse_qsl(query_string, keep_blank_values=True):
            query.setdefault(k, []).append(v)
    for member in spec.http_members:
        try:
            if member.location == "uri":
                raw = path_params.get(member.wire_name)
                if raw is not None:
                    params[member.name] = _convert_scalar(member.shape, unquote(raw))
            elif member.location == "querystring":
                values = query.get(member.wire_name)
                if values is None:
                    continue
                if member.shape.type_name == "list":
                    params[member.name] = [_convert_scalar(member.shape.member, v) for v in values]
                else:
                    params[member.name] = _convert_scalar(member.shape, values[0])
            else:
                raw = headers.get(member.wire_name)
                if raw is not None:
                    params[member.name] = _convert_scalar(member.shape, raw)
        except ValueError as exc:
            raise AwsError(
                spec.validation_code,
                f"Value at '{member.name}' could not be parsed as {member.shape.type_name}",
            ) from exc


def iso8601(epoch: float) -> str:
    """AWS's ISO 8601 rendering: UTC, millisecond precision, a ``Z`` suffix."""
    value = dt.datetime.fromtimestamp(epoch, dt.UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _encode(shape: Any, value: Any) -> Any:
    kind = shape.type_name
    if kind == "structure":
        out: dict[str, Any] = {}
        for name, member in shape.members.items():
            v = value.get(name)
            if v is not None:
                out[member.serialization.get("name", name)] = _encode(member, v)
        return out
    if kind == "list":
        return [_encode(shape.member, v) for v in value]
    if kind == "map":
        return {k: _encode(shape.value, v) for k, v in value.items()}
    if kind == "timestamp":
        # Body timestamps default to epoch seconds in both json and rest-json; some
        # shapes (all of Bedrock's) declare iso8601.
        if shape.serialization.get("timestampFormat") == "iso8601":
            return iso8601(float(value))
        return round(float(value), 3)
    return value


def encode_output(spec: OpSpec, value: Mapping[str, Any]) -> bytes:
    """Serialise a handler's result dict per the operation's output shape."""
    shape = spec.output_shape
    if shape is None:
        return b"{}"
    return _dumps(_encode(shape, value)).encode()
