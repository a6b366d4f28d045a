"""The gateway keeps to the client contract (protos/mlgw/contract/v1/contract.proto).

Every ErrorInfo reason it can emit is an ErrorReason value, and every metadata key and
value it reads or writes is a value of the contract's enums. Reasons are found in the source
itself (each `reason=` argument and each ErrorRow), so a reason added anywhere in the gateway
without its enum value fails here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import grpc
from mlgw.contract.v1 import contract_pb2 as contract
from mlgw_client.contract import parse_reason, wire_strings

from gateway import errors, operations
from gateway.pipeline import admission, cache, cachecontrol
from gateway.pipeline import call as pipeline_call
from gateway.upstream import errors as upstream_errors

GATEWAY = Path(errors.__file__).resolve().parent
REASONS = wire_strings(contract.ErrorReason.DESCRIPTOR)

#: Forwarding a reason chosen elsewhere (`reason=reason`, `reason=row.reason`) is fine: the
#: literal it came from is scanned where it is written. Anything else (a call, an f-string,
#: a concatenation) could build a reason no enum value names, so the scan refuses it.
FORWARDS = (ast.Name, ast.Attribute)


def _is_code_reason_pair(node: ast.Tuple) -> bool:
    """`(grpc.StatusCode.X, "REASON")`, as error tables write a row."""
    if len(node.elts) != 2:
        return False
    code = node.elts[0]
    return isinstance(code, ast.Attribute) and code.attr in grpc.StatusCode.__members__


def _reasons_in_source() -> tuple[set[str], set[tuple[str, str]]]:
    """Every reason literal: `reason="..."` arguments, ErrorRow(code, "...") rows and
    (StatusCode.X, "...") pairs in tables; and every `reason=` that is not a literal nor a
    plain forward, by file."""
    literals: set[str] = set()
    built: set[tuple[str, str]] = set()
    for path in sorted(GATEWAY.rglob("*.py")):
        name = path.relative_to(GATEWAY).as_posix()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            values: list[ast.expr] = []
            if isinstance(node, ast.Call):
                values = [k.value for k in node.keywords if k.arg == "reason"]
                if isinstance(node.func, ast.Name) and node.func.id == "ErrorRow":
                    values += node.args[1:2]
            elif isinstance(node, ast.Tuple) and _is_code_reason_pair(node):
                values = [node.elts[1]]
            for value in values:
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    literals.add(value.value)
                elif not isinstance(value, FORWARDS):
                    built.add((name, ast.unparse(value)))
    return literals, built


def test_every_reason_in_the_gateway_source_is_in_the_enum() -> None:
    literals, built = _reasons_in_source()
    # Not vacuous: the scan sees the reasons of every layer.
    assert {"INVALID_REQUEST", "RATE_LIMITED", "UPSTREAM_THROTTLED", "CIRCUIT_OPEN"} <= literals
    assert not literals - REASONS, f"reasons missing from ErrorReason: {literals - REASONS}"
    assert not built, f"reasons built from an expression: {built}"


def test_the_aws_error_table_uses_enum_reasons() -> None:
    rows = [*upstream_errors.AWS_ERRORS.values(), upstream_errors._THROTTLED]
    assert {row.reason for row in rows} <= REASONS


def test_emitted_errors_carry_enum_reasons() -> None:
    emitted = [
        errors.InvalidRequest([errors.FieldViolation("user_id", "is required")]),
        errors.MalformedRequest("GetRecommendationsRequest"),
        errors.InternalError(RuntimeError("bug")),
        errors.Overloaded(10),
        admission.RateLimited("runtime", admission.DEADLINE, 0.5, 10.0),
        upstream_errors.from_exception(TimeoutError(), "personalize-runtime", idempotent=True),
        upstream_errors.from_exception(ConnectionError(), "personalize", idempotent=True),
    ]
    for error in emitted:
        (info, *_) = error.details()
        assert parse_reason(info.reason) != contract.ERROR_REASON_UNSPECIFIED, info.reason


def test_the_metadata_keys_the_gateway_uses_are_in_the_contract() -> None:
    request = wire_strings(contract.RequestMetadata.DESCRIPTOR)
    response = wire_strings(contract.ResponseMetadata.DESCRIPTOR)
    read = {cachecontrol.HEADER, pipeline_call.PRIORITY_METADATA, pipeline_call.REQUEST_ID_METADATA}
    assert read <= request
    sent = {
        cachecontrol.CACHE, cachecontrol.TIER, cachecontrol.AGE, cachecontrol.STALE,
        cachecontrol.COALESCED, cachecontrol.MERGED, errors.STATUS_DETAILS_KEY,
    }  # fmt: skip
    assert sent == response


def test_the_metadata_values_are_in_the_contract() -> None:
    assert {p.value for p in operations.Priority} == wire_strings(contract.Priority.DESCRIPTOR)
    pairs = [*cache._HIT_LOCAL, *cache._HIT_SHARED, cache._MISS, cache._BYPASS]
    assert {v for k, v in pairs if k == cachecontrol.CACHE} | {"stale"} == wire_strings(
        contract.CacheStatus.DESCRIPTOR
    )
    assert {v for k, v in pairs if k == cachecontrol.TIER} == wire_strings(
        contract.CacheTier.DESCRIPTOR
    )


def test_the_stale_values_are_the_ones_the_cache_sends() -> None:
    source = Path(cache.__file__).read_text()
    for value in wire_strings(contract.CacheStale.DESCRIPTOR) | {"stale"}:
        assert f'"{value}"' in source, value
