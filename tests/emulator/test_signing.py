"""Opt-in SigV4 verification (``[auth] credentials``), driven by real aiobotocore clients
and by hand-signed aiohttp requests over loopback."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
import yarl
from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from gateway.emulator import ConfigError, Emulator, load_config, parse_config
from gateway.emulator.config import AuthConfig, EmulatorConfig
from gateway.emulator.signing import SIGNATURE_MISMATCH, parse_authorization

AKID = "testing-access-key"
SECRET = "testing-secret-key"
REGION = "us-east-1"
DEMO = "arn:aws:personalize:us-east-1:000000000000:campaign/demo"
RUNTIME_BODY = json.dumps({"campaignArn": DEMO, "userId": "u1", "numResults": 3}).encode()
LIST_JOBS_TARGET = "AmazonPersonalize.ListBatchInferenceJobs"
SIGV4_TIMESTAMP = "%Y%m%dT%H%M%SZ"

ClientFactory = Callable[..., Awaitable[Any]]


@pytest.fixture
async def signed_emulator() -> AsyncIterator[Emulator]:
    config = parse_config({"auth": {"credentials": {AKID: SECRET, "second-key": "second"}}})
    async with Emulator(config) as emu:
        yield emu


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def make_client() -> AsyncIterator[ClientFactory]:
    """``await make_client(emu, service, key=AKID, secret=SECRET, token=None)``.

    Every client records the ``Authorization`` headers it sends in ``client.sent``.
    """
    session = AioSession()
    async with AsyncExitStack() as stack:

        async def make(
            emu: Emulator,
            service: str,
            *,
            key: str = AKID,
            secret: str = SECRET,
            token: str | None = None,
        ) -> Any:
            client = await stack.enter_async_context(
                session.create_client(
                    service,
                    region_name=REGION,
                    endpoint_url=emu.endpoint_url,
                    aws_access_key_id=key,
                    aws_secret_access_key=secret,
                    aws_session_token=token,
                    config=AioConfig(retries={"total_max_attempts": 1}),
                )
            )
            client.sent = []

            def record(request: Any, **_: Any) -> None:
                client.sent.append(request.headers["Authorization"].decode())

            client.meta.events.register("before-send", record)
            return client

        yield make


def now_stamp(offset: dt.timedelta = dt.timedelta()) -> str:
    return (dt.datetime.now(dt.UTC) + offset).strftime(SIGV4_TIMESTAMP)


def botocore_sign(
    url: str,
    method: str,
    headers: dict[str, str],
    body: bytes,
    *,
    service: str = "personalize",
    timestamp: str | None = None,
    key: str = AKID,
    secret: str = SECRET,
) -> dict[str, str]:
    """The headers of ``headers`` plus X-Amz-Date and Authorization, signed by botocore."""
    request = AWSRequest(method=method, url=url, headers=headers, data=body)
    stamp = timestamp or now_stamp()
    request.headers["X-Amz-Date"] = stamp
    request.context["timestamp"] = stamp
    signer = SigV4Auth(Credentials(key, secret), service, REGION)
    canonical = signer.canonical_request(request)
    signature = signer.signature(signer.string_to_sign(request, canonical), request)
    signed = signer.signed_headers(signer.headers_to_sign(request))
    request.headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={key}/{signer.credential_scope(request)}, "
        f"SignedHeaders={signed}, Signature={signature}"
    )
    return dict(request.headers.items())


def spec_sign(
    method: str, host: str, raw_path: str, headers: dict[str, str], body: bytes, service: str
) -> dict[str, str]:
    """SigV4 written from AWS's specification, with no botocore: the independent signer.

    Non-S3 services encode each path segment twice; the wire path is already encoded
    once. The query string is already canonical (keys sorted, values encoded).
    """
    stamp = now_stamp()
    all_headers = {**headers, "Host": host, "X-Amz-Date": stamp}
    path, _, query = raw_path.partition("?")
    canonical_headers = {k.lower(): " ".join(v.split()) for k, v in all_headers.items()}
    names = sorted(canonical_headers)
    canonical = "\n".join(
        [
            method,
            quote(path, safe="/~"),
            query,
            "".join(f"{n}:{canonical_headers[n]}\n" for n in names),
            ";".join(names),
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{stamp[:8]}/{REGION}/{service}/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = f"AWS4{SECRET}".encode()
    for part in (stamp[:8], REGION, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    all_headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={AKID}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return all_headers


def runtime_request(emu: Emulator, **sign_args: Any) -> tuple[str, dict[str, str], bytes]:
    url = f"{emu.endpoint_url}/recommendations"
    headers = {"Content-Type": "application/json"}
    return url, botocore_sign(url, "POST", headers, RUNTIME_BODY, **sign_args), RUNTIME_BODY


def json_request(emu: Emulator, **sign_args: Any) -> tuple[str, dict[str, str], bytes]:
    url = f"{emu.endpoint_url}/"
    headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": LIST_JOBS_TARGET}
    body = b'{"maxResults": 5}'
    return url, botocore_sign(url, "POST", headers, body, **sign_args), body


async def send(
    http: aiohttp.ClientSession, method: str, url: str, headers: dict[str, str], body: bytes
) -> tuple[int, str | None, str, dict[str, Any]]:
    """(status, error code, error message, body) of one raw request."""
    async with http.request(method, yarl.URL(url, encoded=True), headers=headers, data=body) as r:
        payload = await r.json(content_type=None)
        code = r.headers.get("x-amzn-ErrorType") or payload.get("__type")
        return r.status, code, payload.get("message", ""), payload


def error_of(info: pytest.ExceptionInfo[ClientError]) -> tuple[int, str, str]:
    response = info.value.response
    return (
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Code"],
        response["Error"]["Message"],
    )


async def one_call(client: Any, service: str) -> Any:
    if service == "personalize":
        return await client.list_batch_inference_jobs()
    return await client.get_recommendations(campaignArn=DEMO, userId="u1")


# -- real aiobotocore clients ---------------------------------------------------------


@pytest.mark.parametrize("token", [None, "a-session-token"])
async def test_aiobotocore_signed_requests_are_accepted(
    signed_emulator: Emulator, make_client: ClientFactory, token: str | None
) -> None:
    rt = await make_client(signed_emulator, "personalize-runtime", token=token)
    pz = await make_client(signed_emulator, "personalize", token=token)
    br = await make_client(signed_emulator, "bedrock", token=token)
    ml = await make_client(signed_emulator, "machinelearning", token=token)
    recs = await rt.get_recommendations(campaignArn=DEMO, userId="u1", numResults=3)
    assert len(recs["itemList"]) == 3
    jobs = await pz.list_batch_inference_jobs(maxResults=5)
    assert jobs["batchInferenceJobs"] == []
    # A query string, and an ARN in the path (botocore sends "/" in the label as %2F).
    listed = await br.list_model_invocation_jobs(maxResults=5, nameContains="job-1")
    assert listed["invocationJobSummaries"] == []
    with pytest.raises(br.exceptions.ResourceNotFoundException):
        await br.get_model_invocation_job(
            jobIdentifier="arn:aws:bedrock:us-east-1:000000000000:model-invocation-job/abcdef123456"
        )
    described = await ml.describe_batch_predictions(Limit=5)
    assert described["Results"] == []
    for client in (rt, pz, br, ml):
        signed_headers = parse_authorization(client.sent[-1]).signed_headers.split(";")
        assert ("x-amz-security-token" in signed_headers) == (token is not None)
    calls = signed_emulator.stats()["calls"]
    assert calls == {
        "GetRecommendations": 1,
        "ListBatchInferenceJobs": 1,
        "ListModelInvocationJobs": 1,
        "GetModelInvocationJob": 1,
        "DescribeBatchPredictions": 1,
    }


async def test_every_configured_key_pair_is_accepted(
    signed_emulator: Emulator, make_client: ClientFactory
) -> None:
    rt = await make_client(
        signed_emulator, "personalize-runtime", key="second-key", secret="second"
    )
    recs = await rt.get_recommendations(campaignArn=DEMO, userId="u1", numResults=1)
    assert len(recs["itemList"]) == 1


@pytest.mark.parametrize("service", ["personalize-runtime", "personalize"])
async def test_wrong_secret_is_an_invalid_signature(
    signed_emulator: Emulator, make_client: ClientFactory, service: str
) -> None:
    client = await make_client(signed_emulator, service, secret="not-the-secret")
    with pytest.raises(ClientError) as info:
        await one_call(client, service)
    assert error_of(info) == (403, "InvalidSignatureException", SIGNATURE_MISMATCH)
    assert "not-the-secret" not in str(info.value.response)
    # Rejected before routing, like a missing signature: no operation saw a call.
    stats = signed_emulator.stats()
    assert stats["calls"] == {}
    assert stats["errors"] == {}


@pytest.mark.parametrize("service", ["personalize-runtime", "personalize"])
async def test_unknown_access_key_is_unrecognized(
    signed_emulator: Emulator, make_client: ClientFactory, service: str
) -> None:
    client = await make_client(signed_emulator, service, key="nobody", secret=SECRET)
    with pytest.raises(ClientError) as info:
        await one_call(client, service)
    assert error_of(info) == (
        403,
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
    )
    assert signed_emulator.stats()["calls"] == {}


async def test_default_config_does_not_verify_signatures(
    emulator: Emulator, make_client: ClientFactory, http: aiohttp.ClientSession
) -> None:
    rt = await make_client(emulator, "personalize-runtime", key="any", secret="thing")
    recs = await rt.get_recommendations(campaignArn=DEMO, userId="u1", numResults=2)
    assert len(recs["itemList"]) == 2
    url, headers, body = runtime_request(emulator)
    headers["Authorization"] = (
        "AWS4-HMAC-SHA256 Credential=x/20000101/r/s/aws4_request, SignedHeaders=host, Signature=00"
    )
    status, code, _, _ = await send(http, "POST", url, headers, body)
    assert (status, code) == (200, None)
    # Still required to be there, as before.
    del headers["Authorization"]
    status, code, _, _ = await send(http, "POST", url, headers, body)
    assert (status, code) == (403, "MissingAuthenticationTokenException")


# -- hand-built requests --------------------------------------------------------------


@pytest.mark.parametrize("build", [runtime_request, json_request])
async def test_untampered_hand_signed_requests_are_accepted(
    signed_emulator: Emulator, http: aiohttp.ClientSession, build: Any
) -> None:
    # Signed as service "personalize": personalize-runtime's signing name too.
    url, headers, body = build(signed_emulator)
    status, code, _, payload = await send(http, "POST", url, headers, body)
    assert (status, code) == (200, None)
    assert "itemList" in payload or "batchInferenceJobs" in payload
    # A session token added after signing is not part of the signature; AWS takes it.
    headers["X-Amz-Security-Token"] = "unsigned-token"
    status, code, _, _ = await send(http, "POST", url, headers, body)
    assert (status, code) == (200, None)


@pytest.mark.parametrize("build", [runtime_request, json_request])
async def test_body_changed_after_signing_is_rejected(
    signed_emulator: Emulator, http: aiohttp.ClientSession, build: Any
) -> None:
    url, headers, body = build(signed_emulator)
    tampered = body.replace(b'"u1"', b'"u2"').replace(b"5", b"6")
    assert tampered != body
    status, code, message, _ = await send(http, "POST", url, headers, tampered)
    assert (status, code, message) == (403, "InvalidSignatureException", SIGNATURE_MISMATCH)
    assert signed_emulator.stats()["calls"] == {}


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("X-Amz-Target", "AmazonPersonalize.DescribeBatchInferenceJob"),
        ("Content-Type", "application/json"),
        ("X-Amz-Date", "later"),  # replaced below by a valid, one second later stamp
    ],
)
async def test_signed_header_changed_after_signing_is_rejected(
    signed_emulator: Emulator, http: aiohttp.ClientSession, header: str, value: str
) -> None:
    url, headers, body = json_request(signed_emulator)
    if header == "X-Amz-Date":
        signed_at = dt.datetime.strptime(headers[header], SIGV4_TIMESTAMP)
        value = (signed_at + dt.timedelta(seconds=1)).strftime(SIGV4_TIMESTAMP)
    headers[header] = value
    status, code, message, _ = await send(http, "POST", url, headers, body)
    assert (status, code, message) == (403, "InvalidSignatureException", SIGNATURE_MISMATCH)


async def test_query_string_changed_after_signing_is_rejected(
    signed_emulator: Emulator, http: aiohttp.ClientSession
) -> None:
    url = f"{signed_emulator.endpoint_url}/model-invocation-jobs?maxResults=5"
    headers = botocore_sign(url, "GET", {}, b"", service="bedrock")
    status, code, _, payload = await send(http, "GET", url, headers, b"")
    assert (status, code) == (200, None)
    assert payload["invocationJobSummaries"] == []
    for changed in (url.replace("=5", "=6"), f"{url}&sortOrder=Ascending"):
        status, code, message, _ = await send(http, "GET", changed, headers, b"")
        assert (status, code, message) == (403, "InvalidSignatureException", SIGNATURE_MISMATCH)


async def test_a_signed_payload_hash_must_match_the_body(
    signed_emulator: Emulator, http: aiohttp.ClientSession
) -> None:
    """botocore trusts a signed X-Amz-Content-SHA256; the emulator checks it is the body's."""
    url = f"{signed_emulator.endpoint_url}/recommendations"
    headers = {
        "Content-Type": "application/json",
        "X-Amz-Content-SHA256": hashlib.sha256(RUNTIME_BODY).hexdigest(),
    }
    signed = botocore_sign(url, "POST", headers, RUNTIME_BODY)
    assert "x-amz-content-sha256" in parse_authorization(signed["Authorization"]).signed_headers
    status, code, _, _ = await send(http, "POST", url, signed, RUNTIME_BODY)
    assert (status, code) == (200, None)
    tampered = RUNTIME_BODY.replace(b'"u1"', b'"u2"')
    status, code, message, _ = await send(http, "POST", url, signed, tampered)
    assert (status, code) == (403, "InvalidSignatureException")
    assert "x-amz-content-sha256" in message


@pytest.mark.parametrize(
    ("offset_minutes", "accepted", "message"),
    [
        (-20, False, "Signature expired: "),
        (20, False, "Signature not yet current: "),
        (-10, True, ""),
        (10, True, ""),
    ],
)
async def test_x_amz_date_must_be_within_15_minutes(
    signed_emulator: Emulator,
    http: aiohttp.ClientSession,
    offset_minutes: int,
    accepted: bool,
    message: str,
) -> None:
    stamp = now_stamp(dt.timedelta(minutes=offset_minutes))
    url, headers, body = runtime_request(signed_emulator, timestamp=stamp)
    status, code, text, _ = await send(http, "POST", url, headers, body)
    if accepted:
        assert (status, code) == (200, None)
    else:
        assert (status, code) == (403, "InvalidSignatureException")
        assert text.startswith(message + stamp)


async def test_credential_scope_date_must_match_x_amz_date(
    signed_emulator: Emulator, http: aiohttp.ClientSession
) -> None:
    url, headers, body = runtime_request(signed_emulator)
    parsed = parse_authorization(headers["Authorization"])
    headers["Authorization"] = headers["Authorization"].replace(f"/{parsed.date}/", "/20000101/")
    status, code, message, _ = await send(http, "POST", url, headers, body)
    assert (status, code) == (403, "InvalidSignatureException")
    assert "Date in Credential scope does not match" in message


async def test_credential_scope_must_name_the_service(
    signed_emulator: Emulator, http: aiohttp.ClientSession
) -> None:
    """personalize-runtime's signing name is "personalize"; its botocore name is wrong."""
    url, headers, body = runtime_request(signed_emulator, service="personalize-runtime")
    status, code, message, _ = await send(http, "POST", url, headers, body)
    assert (status, code) == (403, "InvalidSignatureException")
    assert "scoped to correct service: 'personalize'" in message
    assert signed_emulator.stats()["calls"] == {}


@pytest.mark.parametrize(
    ("authorization", "fragment"),
    [
        ("AWS4-HMAC-SHA256 Credential=testing-access-key/20240101/us-east-1", "Credential"),
        ("AWS4-HMAC-SHA256 Signature=ab, SignedHeaders=host", "Credential"),
        ("AWS4-HMAC-SHA256 Credential=k/2024/r/s/aws4_request, SignedHeaders=host, "
         f"Signature={'0' * 64}", "yyyymmdd"),
        ("AWS4-HMAC-SHA256 Credential=k/20240101/r/s/aws4_request, "
         f"SignedHeaders=x-amz-date;host, Signature={'0' * 64}", "sorted"),
        ("AWS4-HMAC-SHA256 Credential=k/20240101/r/s/aws4_request, SignedHeaders=host, "
         "Signature=xyz", "hex"),
    ],
)  # fmt: skip
async def test_malformed_authorization_is_an_incomplete_signature(
    signed_emulator: Emulator, http: aiohttp.ClientSession, authorization: str, fragment: str
) -> None:
    url, headers, body = runtime_request(signed_emulator)
    headers["Authorization"] = authorization
    status, code, message, _ = await send(http, "POST", url, headers, body)
    assert (status, code) == (403, "IncompleteSignatureException")
    assert fragment in message


async def test_host_and_date_must_be_signed(
    signed_emulator: Emulator, http: aiohttp.ClientSession
) -> None:
    url, headers, body = runtime_request(signed_emulator)
    auth = headers["Authorization"]
    signed = parse_authorization(auth).signed_headers
    for left_out in ("host", "x-amz-date"):
        fewer = ";".join(n for n in signed.split(";") if n != left_out)
        headers["Authorization"] = auth.replace(signed, fewer)
        status, code, message, _ = await send(http, "POST", url, headers, body)
        assert (status, code) == (403, "InvalidSignatureException")
        assert f"'{left_out}' must be a 'SignedHeader'" in message


async def test_requests_signed_by_an_independent_signer_verify(
    signed_emulator: Emulator, http: aiohttp.ClientSession
) -> None:
    """A SigV4 signer written from the spec (not botocore) agrees with the verifier,
    for a JSON 1.1 call, a rest-json POST, and a GET with a %2F-encoded ARN and a query."""
    host = f"127.0.0.1:{signed_emulator.port}"
    job = quote("arn:aws:bedrock:us-east-1:000000000000:model-invocation-job/abcdef123456", safe="")
    cases = [
        ("POST", "/", {"Content-Type": "application/x-amz-json-1.1",
                       "X-Amz-Target": LIST_JOBS_TARGET}, b"{}", "personalize", 200),
        ("POST", "/recommendations", {"Content-Type": "application/json"}, RUNTIME_BODY,
         "personalize", 200),
        ("GET", f"/model-invocation-job/{job}", {}, b"", "bedrock", 404),
        ("GET", "/model-invocation-jobs?maxResults=5&nameContains=job-1", {}, b"", "bedrock",
         200),
    ]  # fmt: skip
    for method, raw_path, headers, body, service, expected in cases:
        signed = spec_sign(method, host, raw_path, headers, body, service)
        url = f"{signed_emulator.endpoint_url}{raw_path}"
        status, code, _, _ = await send(http, method, url, signed, body)
        assert status == expected, (raw_path, code)
        assert code in (None, "ResourceNotFoundException")


async def test_admin_api_needs_no_signature(
    signed_emulator: Emulator, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{signed_emulator.endpoint_url}/_emulator/health") as resp:
        assert resp.status == 200
        assert (await resp.json())["status"] == "ok"


# -- configuration --------------------------------------------------------------------


def test_auth_config_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "auth.toml"
    path.write_text('[auth]\ncredentials = { "testing-access-key" = "testing-secret-key" }\n')
    config = load_config(path)
    assert config.auth == AuthConfig(credentials={AKID: SECRET})
    assert parse_config({"auth": {"credentials": {AKID: SECRET}}}) == config
    assert EmulatorConfig().auth.credentials == {}
    assert parse_config({}).auth == AuthConfig()
    assert parse_config({"auth": {}}).auth == AuthConfig()
    assert SECRET not in repr(config)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"auth": []}, "auth = an array: must be a table"),
        ({"auth": {"credentials": []}}, r"auth.credentials = \(hidden\): must be a table"),
        ({"auth": {"credentials": "k=s"}}, r"auth.credentials = \(hidden\): must be a table"),
        ({"auth": {"credentials": {"k": 1}}}, "auth.credentials.k"),
        ({"auth": {"credentials": {"k": ""}}}, "auth.credentials.k"),
        ({"auth": {"credentials": {1: "s"}}}, "access key id"),
        ({"auth": {"credentials": {"": "s"}}}, "access key id"),
        ({"auth": {"credentials": {"a/b": "s"}}}, "access key id"),
        ({"auth": {"credential": {}}}, "unknown setting"),
    ],
)
def test_bad_auth_configs_are_rejected(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(raw)
