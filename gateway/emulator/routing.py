"""Which emulated operation an HTTP request is, derived from botocore's service models.

Nothing here is hand-typed per operation except the list of operations in scope:
HTTP methods, URI templates, querystring/header member names, ``X-Amz-Target`` values
and modelled error status codes all come from the pinned botocore models.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import botocore.session

__all__ = ["SCOPE", "OpSpec", "Router", "load_operations"]

# The operations the emulator answers, per botocore service name.
SCOPE: Mapping[str, tuple[str, ...]] = {
    "personalize-runtime": (
        "GetRecommendations",
        "GetPersonalizedRanking",
        "GetActionRecommendations",
    ),
    "personalize": (
        "CreateBatchInferenceJob",
        "DescribeBatchInferenceJob",
        "ListBatchInferenceJobs",
    ),
    "machinelearning": (
        "CreateBatchPrediction",
        "GetBatchPrediction",
        "DescribeBatchPredictions",
    ),
    "bedrock": (
        "CreateModelInvocationJob",
        "GetModelInvocationJob",
        "ListModelInvocationJobs",
        "StopModelInvocationJob",
    ),
}

# Request members that name "the resource" of a call, in priority order. Used to key the
# per-ARN statistics and TPS limits; the first one present in a request wins.
RESOURCE_MEMBERS: tuple[str, ...] = (
    "campaignArn",
    "recommenderArn",
    "batchInferenceJobArn",
    "solutionVersionArn",
    "jobIdentifier",
    "modelId",
    "BatchPredictionId",
    "MLModelId",
)


@dataclass(frozen=True)
class HttpMember:
    """A request member bound to the URI, the query string or a header (rest-json)."""

    name: str
    location: str  # "uri" | "querystring" | "header"
    wire_name: str
    shape: Any  # botocore.model.Shape


@dataclass(frozen=True)
class OpSpec:
    service: str
    name: str
    protocol: str  # "json" | "rest-json"
    model: Any  # botocore.model.OperationModel
    method: str
    request_uri: str
    target: str | None
    validation_code: str
    content_type: str
    error_status: Mapping[str, int]
    http_members: tuple[HttpMember, ...]
    resource_members: tuple[str, ...]
    uri_regex: re.Pattern[str] | None = field(default=None)

    @property
    def input_shape(self) -> Any:
        return self.model.input_shape

    @property
    def output_shape(self) -> Any:
        return self.model.output_shape


def _uri_regex(template: str) -> re.Pattern[str]:
    """``/a/{id}/stop`` -> ``^/a/(?P<id>[^/]+)/stop$``; ``{key+}`` labels may span "/"."""
    out = ["^"]
    pos = 0
    for m in re.finditer(r"\{([^}]+)\}", template):
        out.append(re.escape(template[pos : m.start()]))
        label = m.group(1)
        greedy = label.endswith("+")
        out.append(f"(?P<{label.rstrip('+')}>{'.+' if greedy else '[^/]+'})")
        pos = m.end()
    out.append(re.escape(template[pos:]))
    out.append("$")
    return re.compile("".join(out))


def _error_status(service_model: Any) -> dict[str, int]:
    status: dict[str, int] = {}
    for shape in service_model.error_shapes:
        code = shape.metadata.get("error", {}).get("code", shape.name)
        http_status = shape.metadata.get("error", {}).get("httpStatusCode")
        if http_status is not None:
            status[code] = int(http_status)
            status[shape.name] = int(http_status)
    return status


def load_operations(session: Any | None = None) -> list[OpSpec]:
    session = session or botocore.session.get_session()
    specs: list[OpSpec] = []
    for service, names in SCOPE.items():
        sm = session.get_service_model(service)
        protocol = sm.protocol
        errors = _error_status(sm)
        for name in names:
            om = sm.operation_model(name)
            error_names = {s.name for s in om.error_shapes}
            # Each service's own name for "your request is malformed".
            validation = (
                "ValidationException"
                if "ValidationException" in error_names
                else "InvalidInputException"
            )
            http_members: list[HttpMember] = []
            members: tuple[str, ...] = ()
            if om.input_shape is not None:
                members = tuple(om.input_shape.members)
                for mname, mshape in om.input_shape.members.items():
                    loc = mshape.serialization.get("location")
                    if loc in ("uri", "querystring", "header"):
                        wire = mshape.serialization.get("name", mname)
                        http_members.append(HttpMember(mname, loc, wire, mshape))
            target = None
            if protocol == "json":
                target = f"{sm.metadata['targetPrefix']}.{name}"
                content_type = f"application/x-amz-json-{sm.metadata.get('jsonVersion', '1.1')}"
            else:
                content_type = "application/json"
            uri = om.http["requestUri"]
            specs.append(
                OpSpec(
                    service=service,
                    name=name,
                    protocol=protocol,
                    model=om,
                    method=om.http["method"],
                    request_uri=uri,
                    target=target,
                    validation_code=validation,
                    content_type=content_type,
                    error_status=errors,
                    http_members=tuple(http_members),
                    resource_members=tuple(m for m in RESOURCE_MEMBERS if m in members),
                    uri_regex=_uri_regex(uri.split("?", 1)[0]) if protocol != "json" else None,
                )
            )
    return specs


class Router:
    """Finds the OpSpec for a request: JSON 1.1 by target, rest-json by method + path."""

    def __init__(self, specs: list[OpSpec]) -> None:
        self.by_name: dict[str, OpSpec] = {s.name: s for s in specs}
        self._by_target: dict[str, OpSpec] = {s.target: s for s in specs if s.target}
        # Exact paths are a dict hit; templated ones are tried in order after.
        self._static: dict[tuple[str, str], OpSpec] = {}
        self._templated: list[tuple[str, re.Pattern[str], OpSpec]] = []
        for s in specs:
            if s.protocol == "json":
                continue
            path = s.request_uri.split("?", 1)[0]
            if "{" in path:
                assert s.uri_regex is not None
                self._templated.append((s.method, s.uri_regex, s))
            else:
                self._static[(s.method, path)] = s
        self.json_prefixes = frozenset(t.split(".", 1)[0] for t in self._by_target)

    def by_target(self, target: str) -> OpSpec | None:
        return self._by_target.get(target)

    def by_path(self, method: str, path: str) -> tuple[OpSpec, dict[str, str]] | None:
        spec = self._static.get((method, path))
        if spec is not None:
            return spec, {}
        for m, rx, s in self._templated:
            if m == method:
                match = rx.match(path)
                if match:
                    return s, match.groupdict()
        return None
