"""The security stages on their own: config rules, key hashing and matching, globs over RPCs
and ARNs, the resources a request names, and the planted-secrets scanner itself."""

from __future__ import annotations

import logging
import subprocess
import sys
from contextlib import AsyncExitStack
from typing import Any

import grpc
import pytest
from mlgw.bedrock.v1 import bedrock_pb2 as bedrock
from mlgw.personalize_runtime.v1 import personalize_runtime_pb2 as rt

from gateway.cache_config import RedisConfig
from gateway.config import Config, ConfigError
from gateway.errors import QuotaExceeded, Unauthenticated
from gateway.limits_config import LimitsConfig
from gateway.pipeline.global_limits import open_shared_buckets
from gateway.pipeline.validate import OversizedRequest
from gateway.security.authz import Rights, matcher, resources_of
from gateway.security.identity import Authenticator, Caller, key_digest
from gateway.security.quotas import Quotas
from tests import secrets_scan

KEY = "unit-key-0123456789abcdef01234567"


def auth(**caller: Any) -> Config:
    entry = {"name": "web", "api_keys": [key_digest(KEY)], **caller}
    return Config.from_dict({"auth": {"callers": [entry]}})


class NoCertificate:
    def auth_context(self) -> dict[str, list[bytes]]:
        return {}


class Certificate:
    def __init__(self, spiffe: str = "", san: str = "") -> None:
        self._context = {
            "peer_spiffe_id": [spiffe.encode()] if spiffe else [],
            "x509_subject_alternative_name": [san.encode()] if san else [],
        }

    def auth_context(self) -> dict[str, list[bytes]]:
        return self._context


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"auth": {"callers": [{"name": "a", "api_keys": ["plain-key"]}]}}, '"sha256:"'),
        ({"auth": {"callers": [{"name": "a"}]}}, "needs api_keys or identities"),
        ({"auth": {"callers": [{"name": "a", "identities": ["web"]}]}}, "spiffe://"),
        ({"tls": {"cert_file": "c", "key_file": "k", "require_client_cert": True}}, "client_ca"),
    ],
)
def test_config_refuses(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Config.from_dict(data)
    assert message in str(caught.value)
    assert "plain-key" not in str(caught.value) or "api_keys" in str(caught.value)


def test_keys_match_by_digest_only() -> None:
    authn = Authenticator(auth().auth)
    assert authn.identify({"authorization": f"Bearer {KEY}"}, NoCertificate()).name == "web"
    assert authn.identify({"authorization": f"bearer  {KEY} "}, NoCertificate()).name == "web"
    for header in (f"Bearer {KEY}x", f"Basic {KEY}", "Bearer ", key_digest(KEY)):
        with pytest.raises(Unauthenticated):
            authn.identify({"authorization": header}, NoCertificate())
    with pytest.raises(Unauthenticated):
        authn.identify({}, NoCertificate())


def test_certificate_identities() -> None:
    cfg = auth(identities=["spiffe://t/ns/a/sa/web", "dns:web.a.svc"])
    authn = Authenticator(cfg.auth)
    assert authn.identify({}, Certificate(spiffe="spiffe://t/ns/a/sa/web")).name == "web"
    assert authn.identify({}, Certificate(san="web.a.svc")).name == "web"
    with pytest.raises(Unauthenticated):
        authn.identify({}, Certificate(spiffe="spiffe://t/ns/b/sa/web", san="other.svc"))


def test_globs_over_rpcs_and_resources() -> None:
    rights = Rights(
        ["mlgw.personalize_runtime.v1.*/Get*", "google.longrunning.Operations/GetOperation"],
        ["arn:aws:personalize:*:*:campaign/team-a-*"],
    )
    assert rights.rpc("mlgw.personalize_runtime.v1.PersonalizeRuntimeService/GetRecommendations")
    assert not rights.rpc("mlgw.bedrock.v1.BedrockService/GetModelInvocationJob")
    assert not rights.rpc("google.longrunning.Operations/DeleteOperation")
    allowed = rt.GetRecommendationsRequest(campaign_arn="arn:aws:personalize:r:1:campaign/team-a-x")
    assert rights.request(allowed) is None
    other = "arn:aws:personalize:r:1:campaign/team-b-x"
    assert rights.request(rt.GetRecommendationsRequest(campaign_arn=other)) == other
    # Every resource counts: an allowed campaign with another team's filter is denied.
    mixed = rt.GetRecommendationsRequest(
        campaign_arn="arn:aws:personalize:r:1:campaign/team-a-x",
        filter_arn="arn:aws:personalize:r:1:filter/team-b",
    )
    assert rights.request(mixed) == "arn:aws:personalize:r:1:filter/team-b"
    assert matcher([])("anything") is False


def test_resources_of_requests() -> None:
    job = bedrock.CreateModelInvocationJobRequest(
        job_name="j", role_arn="arn:aws:iam::1:role/r", model_id="anthropic.claude"
    )
    assert resources_of(job) == ["arn:aws:iam::1:role/r", "anthropic.claude"]
    assert resources_of(bedrock.GetModelInvocationJobRequest(job_identifier="abc")) == ["abc"]


def test_the_scanner_finds_a_planted_secret(caplog: pytest.LogCaptureFixture) -> None:
    secret = "planted-unit-secret-0123456789abcdef"
    secrets_scan.plant(secret)
    before = len(secrets_scan.leaks)
    found = secrets_scan.scan("a test", f"some text with {secret} inside")
    assert found == ["a test: plante..."]
    assert secrets_scan.scan("a test", "nothing here") == []
    # What the scan found is not a leak of the gateway's: take it back out.
    del secrets_scan.leaks[before:]


def test_the_scanner_hooks_see_logs_and_client_errors() -> None:
    secret = "planted-hook-secret-0123456789abcdef"
    secrets_scan.plant(secret)
    before = len(secrets_scan.leaks)
    logging.getLogger("gateway.unit").info("oops %s", secret)
    error = grpc.aio.AioRpcError(
        grpc.StatusCode.INTERNAL,
        grpc.aio.Metadata(),
        grpc.aio.Metadata(("x-leak", secret)),
        details=f"bad {secret}",
    )
    places = [leak.split(":")[0] for leak in secrets_scan.leaks[before:]]
    del secrets_scan.leaks[before:]  # planted here on purpose: not a leak of the gateway's
    assert error.code() == grpc.StatusCode.INTERNAL
    assert places == ["log gateway.unit", "error message", "trailer x-leak"]


def test_hashkey_reads_the_key_from_stdin() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "gateway.security.hashkey"],
        input=KEY,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == key_digest(KEY)
    assert KEY not in out.stdout


def test_start_without_tls_or_auth_says_so(caplog: pytest.LogCaptureFixture) -> None:
    from gateway.security.guard import open_guard

    caplog.set_level(logging.WARNING)
    assert open_guard(Config(), None) is None
    assert any("anonymous" in r.getMessage() for r in caplog.records)


def test_a_request_the_edge_refused_to_parse_names_no_resource() -> None:
    """A hostile count stops the edge's parser (an OversizedRequest, not a message): the
    audit and the resource check read no fields of it, and the precheck answers it. (The
    live fuzz found the create audit raising AttributeError on one: UNKNOWN, no ErrorInfo.)"""
    refused = OversizedRequest([])
    assert resources_of(refused) == []  # type: ignore[arg-type]


async def test_streams_fall_back_to_the_process_share_while_redis_is_unavailable() -> None:
    """Redis configured but refusing connections: each of 4 processes keeps max_streams / 4
    (at least 1) streams, as the rate keeps rate / processes; without Redis, the whole limit."""
    down = RedisConfig(url="redis://127.0.0.1:1/0", connect_timeout_seconds=0.2)
    async with AsyncExitStack() as stack:
        shared = await open_shared_buckets(down, LimitsConfig(redis_cooldown_seconds=60.0), stack)
        assert shared is not None
        assert shared.down
        quotas = Quotas(shared, "mlgw:test:streams:", processes=4)
        eight, two = (Caller(auth(max_streams=n).auth.callers[0]) for n in (8, 2))
        assert [await quotas.open_stream(eight) for _ in range(2)] == [None, None]
        with pytest.raises(QuotaExceeded) as caught:
            await quotas.open_stream(eight)
        assert caught.value.metadata == {"caller": "web", "limit": "max_streams"}
        quotas.close_stream(eight, None)
        assert await quotas.open_stream(eight) is None  # a closed stream frees its place
        assert await quotas.open_stream(two) is None  # 2 / 4 rounds up to one stream
        with pytest.raises(QuotaExceeded):
            await quotas.open_stream(two)
    alone = Quotas(None, "mlgw:test:streams:", processes=4)
    three = Caller(auth(max_streams=3).auth.callers[0])
    assert [await alone.open_stream(three) for _ in range(3)] == [None] * 3
    with pytest.raises(QuotaExceeded):
        await alone.open_stream(three)
