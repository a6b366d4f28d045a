"""Fast path: the runtime operations sent without botocore's per-call machinery.

A botocore call spends ~1 ms of CPU here on work that is the same for every call of a
runtime operation: emitting a dozen events, resolving the endpoint, rebuilding the
User-Agent, serializing by walking the model, signing with per-call URL parsing, and
parsing the answer by walking the model again (tests/bench/bench_gateway.py, BENCHMARKS.md).
For an operation whose wire form is plain JSON both ways, this module sends the same HTTP
request through the same client's aiohttp session and credentials, in about half the CPU:

- eligibility is decided from botocore's model, once (`ineligible_because`): rest-json,
  POST to a fixed path, every member in the body, no timestamps, blobs, documents,
  idempotency tokens, host prefixes, checksums, compression or streaming;
- the request is `json.dumps` of the already-validated parameters (what botocore's
  rest-json serializer produces for such shapes), signed by `sigv4.RequestSigner`;
- a 2xx answer is `json.loads`; anything else goes through botocore's own parser and
  exception classes, so errors look exactly as on the botocore path.

`[upstream] fast_path = false` sends every call through botocore. tests/unit/test_fastpath.py
compares the prepared request with botocore's, field by field.
"""

from __future__ import annotations

import json
import platform
import time
import uuid
from typing import Any

import aiobotocore
import botocore
import grpc
from aiobotocore.endpoint import convert_to_response_dict
from aiobotocore.parsers import create_parser
from botocore.awsrequest import AWSPreparedRequest
from botocore.credentials import ReadOnlyCredentials
from botocore.exceptions import NoCredentialsError
from botocore.model import OperationModel, Shape

from gateway import __version__
from gateway.errors import UpstreamError
from gateway.upstream.sigv4 import RequestSigner, amz_date

CONTENT_TYPE = "application/json"
USER_AGENT = (
    f"mlgw/{__version__} aiobotocore/{aiobotocore.__version__} botocore/{botocore.__version__}"
    f" lang/python#{platform.python_version()} md/fastpath"
)
#: Shape types whose JSON form differs from the Python value botocore would hand back.
_SPECIAL_TYPES = frozenset({"timestamp", "blob"})
_SIGV4 = (None, "v4")


def ineligible_because(op: OperationModel) -> str | None:
    """Why `op` must go through botocore, or None when the fast path sends it exactly."""
    http = op.http
    checks = (
        (op.service_model.protocol != "rest-json", "protocol is not rest-json"),
        (http.get("method") != "POST", "method is not POST"),
        (any(c in http.get("requestUri", "") for c in "{?"), "path has labels or a query"),
        (op.auth_type not in _SIGV4, "auth is not SigV4"),
        (op.endpoint is not None, "host prefix"),
        (bool(op.http_checksum) or op.http_checksum_required, "checksum"),
        (op.request_compression is not None, "request compression"),
        (op.has_streaming_input or op.has_streaming_output, "streaming"),
        (op.has_event_stream_input or op.has_event_stream_output, "event stream"),
        (op.endpoint_discovery is not None or op.is_endpoint_discovery_operation, "discovery"),
    )
    for failed, why in checks:
        if failed:
            return why
    for shape in (op.input_shape, op.output_shape):
        problem = _shape_problem(shape, set()) if shape is not None else None
        if problem is not None:
            return problem
    return None


def _shape_problem(shape: Shape, seen: set[str]) -> str | None:
    if shape.name in seen:
        return None
    seen.add(shape.name)
    if shape.type_name in _SPECIAL_TYPES or shape.serialization.get("jsonvalue"):
        return f"{shape.name} is a {shape.type_name}"
    if shape.type_name == "structure":
        if shape.is_document_type:
            return f"{shape.name} is a document"
        for name, member in shape.members.items():
            if member.serialization.get("location") or member.metadata.get("idempotencyToken"):
                return f"{name} is not a plain body member"
            reason = _shape_problem(member, seen)
            if reason is not None:
                return reason
    elif shape.type_name == "list":
        return _shape_problem(shape.member, seen)
    elif shape.type_name == "map":
        return _shape_problem(shape.key, seen) or _shape_problem(shape.value, seen)
    return None


class FastCall:
    """Sends one eligible operation through `client`'s HTTP session and credentials."""

    def __init__(self, client: Any, op: OperationModel) -> None:
        self._op = op
        self._client = client
        # aiobotocore exposes no public handle on these two; tests/unit/test_fastpath.py
        # fails first if a release moves them.
        self._http = client._endpoint.http_session
        self._credentials = client._request_signer._credentials
        self.url = client.meta.endpoint_url.rstrip("/") + op.http["requestUri"]
        self._signer = RequestSigner(
            "POST", self.url, op.service_model.signing_name, client.meta.region_name
        )
        self._parser = create_parser(op.service_model.protocol)

    async def __call__(self, params: dict[str, Any]) -> dict[str, Any]:
        if self._credentials is None:
            raise NoCredentialsError()
        credentials = await self._credentials.get_frozen_credentials()
        response = await self._http.send(self.prepare(params, credentials, time.time()))
        body: bytes = await response.content
        if response.status_code >= 300:
            raise await self._error(response)
        if not body:
            return {}
        try:
            answer = json.loads(body)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise UpstreamError(
                f"{self._op.name} answered with a body that is not a JSON object",
                code=grpc.StatusCode.INTERNAL,
                reason="UPSTREAM_BAD_RESPONSE",
                service=self._op.service_model.service_name,
                request_id=response.headers.get("x-amzn-requestid"),
            )
        return answer

    def prepare(
        self, params: dict[str, Any], credentials: ReadOnlyCredentials, now: float
    ) -> AWSPreparedRequest:
        body = json.dumps(params).encode()
        date = amz_date(now)
        signed = {"content-type": CONTENT_TYPE, "x-amz-date": date}
        if credentials.token:
            signed["x-amz-security-token"] = credentials.token
        auth = self._signer.authorization(
            credentials.access_key, credentials.secret_key, date, signed, body
        )
        headers = {
            **signed,
            "authorization": auth,
            "user-agent": USER_AGENT,
            "amz-sdk-invocation-id": str(uuid.uuid4()),
            "amz-sdk-request": "attempt=1; max=1",
            "content-length": str(len(body)),
        }
        return AWSPreparedRequest("POST", self.url, headers, body, stream_output=False)

    async def _error(self, response: Any) -> Exception:
        """The exception botocore would raise for this answer."""
        parsed = await self._parser.parse(
            await convert_to_response_dict(response, self._op), self._op.output_shape
        )
        code = parsed.get("Error", {}).get("Code")
        error_class = self._client.exceptions.from_code(code)
        error: Exception = error_class(parsed, self._op.name)
        return error


def fast_call(client: Any, operation: str) -> FastCall | None:
    """The fast path for `operation` of `client`, or None when botocore must send it."""
    op = client.meta.service_model.operation_model(operation)
    if ineligible_because(op) is not None:
        return None
    if client.meta.config.signature_version not in _SIGV4:
        return None
    return FastCall(client, op)
