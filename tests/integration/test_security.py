"""Security over real TLS connections: mTLS identities, API keys, every rejection path,
per-entry authorization, certificate reload, tenant isolation of operations, audit lines.
Certificates are made by the tests (tests/integration/security_support.py)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.longrunning import operations_pb2, operations_pb2_grpc
from google.rpc import code_pb2
from mlgw.batch.v1 import batch_pb2, batch_pb2_grpc
from mlgw.jobs.v1 import jobs_pb2, jobs_pb2_grpc
from mlgw.personalize_runtime.v1 import personalize_runtime_pb2 as rt
from mlgw.personalize_runtime.v1 import personalize_runtime_pb2_grpc as rt_grpc

from gateway.emulator import Emulator
from gateway.server import Gateway
from tests.integration.conftest import TEST_CREDENTIALS
from tests.integration.jobs_support import FAST_JOBS, personalize_job
from tests.integration.requests import ARN
from tests.integration.security_support import (
    Authority,
    bearer,
    caller,
    channel,
    secure_config,
    write_tls,
)
from tests.support import error_info

DEMO = f"{ARN}:campaign/demo"
RANKING = f"{ARN}:campaign/ranking"
MISSING = f"{ARN}:campaign/does-not-exist"
WEB_ID = "spiffe://mlgw.test/ns/recs/sa/web"
KEY_A, KEY_B = "key-a-0123456789abcdef0123456789", "key-b-fedcba9876543210fedcba9876"
RECS_ONLY = {
    "rpcs": ["mlgw.personalize_runtime.v1.*/GetRecommendations", "mlgw.batch.v1.*/*"],
    "resources": [f"{ARN}:campaign/demo*"],
}

Start = Callable[..., Awaitable[Gateway]]


@pytest.fixture
async def start(emulator: Emulator, tmp_path: Path) -> AsyncIterator[Start]:
    started: list[Gateway] = []

    async def make(
        tls: dict[str, Any] | None, callers: list[dict[str, Any]], **more: Any
    ) -> Gateway:
        sections = {"auth": {"callers": callers}, **more}
        gw = Gateway(
            secure_config(emulator.endpoint_url, tls, **sections), credentials=TEST_CREDENTIALS
        )
        await gw.start()
        started.append(gw)
        return gw

    yield make
    for gw in started:
        await gw.stop(0)


def recs(campaign: str = DEMO, user: str = "u-1") -> rt.GetRecommendationsRequest:
    return rt.GetRecommendationsRequest(campaign_arn=campaign, user_id=user)


async def refused(call: Awaitable[Any]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


async def test_mtls_identities_and_every_rejection_path(start: Start, tmp_path: Path) -> None:
    ca, other_ca = Authority(), Authority("another CA")
    tls = write_tls(tmp_path / "tls", ca.server(), ca)
    callers = [
        caller("web", identities=[WEB_ID], **RECS_ONLY),
        caller("ranker", identities=["dns:ranker.recs.svc"], key=KEY_A),
    ]
    gw = await start(tls, callers)
    web = ca.spiffe(WEB_ID)

    async with channel(gw.port, ca, web) as ch:
        stub = rt_grpc.PersonalizeRuntimeServiceStub(ch)
        assert (await stub.GetRecommendations(recs())).item_list
        # A denied ARN: the same answer whether the campaign exists or not.
        denied = [await refused(stub.GetRecommendations(recs(c))) for c in (RANKING, MISSING)]
        for error in denied:
            assert error.code() == grpc.StatusCode.PERMISSION_DENIED
            assert error_info(error).reason == "PERMISSION_DENIED"
        assert denied[0].details() == denied[1].details()
        assert error_info(denied[0]).metadata == error_info(denied[1]).metadata
        # A denied RPC.
        ranking = rt.GetPersonalizedRankingRequest(campaign_arn=DEMO, user_id="u", input_list=["a"])
        error = await refused(stub.GetPersonalizedRanking(ranking))
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED
        # A bad key decides even over a valid certificate.
        error = await refused(stub.GetRecommendations(recs(), metadata=bearer("wrong")))
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
        assert error_info(error).reason == "UNAUTHENTICATED"

    # A DNS SAN identity.
    async with channel(gw.port, ca, ca.dns("ranker.recs.svc")) as ch:
        ranking.campaign_arn = RANKING
        assert await rt_grpc.PersonalizeRuntimeServiceStub(ch).GetPersonalizedRanking(ranking)

    # A certificate of the right CA with no configured identity, and no key.
    async with channel(gw.port, ca, ca.spiffe("spiffe://mlgw.test/stranger")) as ch:
        error = await refused(rt_grpc.PersonalizeRuntimeServiceStub(ch).GetRecommendations(recs()))
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
        assert error_info(error).reason == "UNAUTHENTICATED"

    # Handshakes the TLS layer refuses: no certificate, an expired one, another CA's.
    for client in (None, ca.spiffe(WEB_ID, expired=True), other_ca.spiffe(WEB_ID)):
        async with channel(gw.port, ca, client) as ch:
            stub = rt_grpc.PersonalizeRuntimeServiceStub(ch)
            error = await refused(stub.GetRecommendations(recs(), timeout=5))
            assert error.code() == grpc.StatusCode.UNAVAILABLE


async def test_api_keys_over_tls_and_cached_answers_only_for_the_authorized(
    start: Start, tmp_path: Path
) -> None:
    ca = Authority()
    tls = write_tls(tmp_path / "tls", ca.server(), None)
    callers = [
        caller("a", key=KEY_A),
        caller("b", key=KEY_B, rpcs=["*"], resources=[f"{ARN}:campaign/ranking"]),
    ]
    gw = await start(tls, callers)
    async with channel(gw.port, ca) as ch:
        stub = rt_grpc.PersonalizeRuntimeServiceStub(ch)
        for metadata in ((), bearer("not-a-key"), (("authorization", f"Basic {KEY_A}"),)):
            error = await refused(stub.GetRecommendations(recs(), metadata=metadata))
            assert error.code() == grpc.StatusCode.UNAUTHENTICATED
            assert error_info(error).reason == "UNAUTHENTICATED"
        first = await stub.GetRecommendations(recs(), metadata=bearer(KEY_A))
        call = stub.GetRecommendations(recs(), metadata=bearer(KEY_A))
        assert await call == first
        assert ("mlgw-cache", "hit") in tuple(await call.trailing_metadata())
        # The answer is in the cache, yet b may not see it.
        error = await refused(stub.GetRecommendations(recs(), metadata=bearer(KEY_B)))
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED
        # Health stays open (load balancers probe without keys).
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        health = health_pb2_grpc.HealthStub(ch)
        answer = await health.Check(health_pb2.HealthCheckRequest())
        assert answer.status == health_pb2.HealthCheckResponse.SERVING


async def test_batch_and_stream_entries_are_authorized_one_by_one(
    start: Start, tmp_path: Path
) -> None:
    ca = Authority()
    gw = await start(
        write_tls(tmp_path / "tls", ca.server(), ca),
        [caller("web", identities=[WEB_ID], **RECS_ONLY)],
    )
    async with channel(gw.port, ca, ca.spiffe(WEB_ID)) as ch:
        stub = batch_pb2_grpc.BatchServiceStub(ch)
        batch = batch_pb2.BatchGetRecommendationsRequest(
            requests=[recs(), recs(RANKING), recs(MISSING)]
        )
        results = (await stub.BatchGetRecommendations(batch)).results
        assert results[0].response.item_list
        assert [r.error.code for r in results[1:]] == [code_pb2.PERMISSION_DENIED] * 2
        assert results[1].error.message == results[2].error.message
        entries = [
            batch_pb2.StreamRecommendationsEntry(id="ok", get_recommendations=recs()),
            batch_pb2.StreamRecommendationsEntry(id="no", get_recommendations=recs(RANKING)),
        ]
        call = stub.StreamRecommendations(
            iter([batch_pb2.StreamRecommendationsRequest(entries=entries)])
        )
        got = {r.id: r async for m in call for r in m.results}
        assert got["ok"].get_recommendations.item_list
        assert got["no"].error.code == code_pb2.PERMISSION_DENIED


async def test_server_certificate_reloads_without_dropping_connections(
    start: Start, tmp_path: Path
) -> None:
    old_ca, new_ca = Authority("old CA"), Authority("new CA")
    tls = write_tls(tmp_path / "tls", old_ca.server(), None)
    gw = await start(tls, [caller("a", key=KEY_A)])
    async with channel(gw.port, old_ca) as established:
        stub = rt_grpc.PersonalizeRuntimeServiceStub(established)
        assert await stub.GetRecommendations(recs(), metadata=bearer(KEY_A))
        write_tls(tmp_path / "tls", new_ca.server(), None)
        # The connection made before the rotation keeps working ...
        assert await stub.GetRecommendations(recs(user="u-2"), metadata=bearer(KEY_A))
        # ... and new handshakes present the new certificate.
        async with channel(gw.port, new_ca) as fresh:
            fresh_stub = rt_grpc.PersonalizeRuntimeServiceStub(fresh)
            assert await fresh_stub.GetRecommendations(recs(), metadata=bearer(KEY_A))
        async with channel(gw.port, old_ca) as stale:
            stale_stub = rt_grpc.PersonalizeRuntimeServiceStub(stale)
            error = await refused(
                stale_stub.GetRecommendations(recs(), metadata=bearer(KEY_A), timeout=5)
            )
            assert error.code() == grpc.StatusCode.UNAVAILABLE
        assert await stub.GetRecommendations(recs(user="u-3"), metadata=bearer(KEY_A))
    assert gw.tls is not None
    assert gw.tls.reloads == 1


async def test_operations_belong_to_their_tenant(
    start: Start, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ca = Authority()
    tls = write_tls(tmp_path / "tls", ca.server(), None)
    callers = [caller("a", key=KEY_A, team="team-a"), caller("b", key=KEY_B)]
    jobs = {"state_dir": str(tmp_path / "state"), **FAST_JOBS}
    gw = await start(tls, callers, jobs=jobs)
    caplog.set_level(logging.INFO, logger="gateway.audit")
    async with channel(gw.port, ca) as ch:
        submit = jobs_pb2_grpc.JobsServiceStub(ch).SubmitBatchInferenceJob
        ops = operations_pb2_grpc.OperationsStub(ch)
        request = jobs_pb2.SubmitBatchInferenceJobRequest(
            request=personalize_job("tenant-a"), request_id="6f1c3d1e-4c55-4c43-9b7b-6f0c9a4d1e01"
        )
        mine = await submit(request, metadata=bearer(KEY_A))
        name = mine.name
        assert (
            await ops.GetOperation(
                operations_pb2.GetOperationRequest(name=name), metadata=bearer(KEY_A)
            )
        ).name == name

        async def as_b(method: Any, message: Any) -> grpc.aio.AioRpcError:
            return await refused(method(message, metadata=bearer(KEY_B)))

        missing = "operations/0123456789abcdef0123456789abcdef"
        for target in (name, missing):
            answers = [
                await as_b(ops.GetOperation, operations_pb2.GetOperationRequest(name=target)),
                await as_b(ops.WaitOperation, operations_pb2.WaitOperationRequest(name=target)),
                await as_b(ops.CancelOperation, operations_pb2.CancelOperationRequest(name=target)),
                await as_b(ops.DeleteOperation, operations_pb2.DeleteOperationRequest(name=target)),
            ]
            watch = jobs_pb2_grpc.JobsServiceStub(ch).WatchOperation
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                async for _ in watch(
                    jobs_pb2.WatchOperationRequest(name=target), metadata=bearer(KEY_B)
                ):
                    pass
            answers.append(caught.value)
            assert {e.code() for e in answers} == {grpc.StatusCode.NOT_FOUND}
            assert {error_info(e).reason for e in answers} == {error_info(answers[0]).reason}
        listed = await ops.ListOperations(
            operations_pb2.ListOperationsRequest(), metadata=bearer(KEY_B)
        )
        assert list(listed.operations) == []
        listed = await ops.ListOperations(
            operations_pb2.ListOperationsRequest(), metadata=bearer(KEY_A)
        )
        assert [o.name for o in listed.operations] == [name]
        # The same request_id is b's own: a new operation, not a's.
        theirs = await submit(request, metadata=bearer(KEY_B))
        assert theirs.name != name
    audit = [r for r in caplog.records if r.name == "gateway.audit"]
    submits = [r for r in audit if r.rpc.endswith("SubmitBatchInferenceJob")]
    assert [(r.caller, r.outcome) for r in submits] == [("a", "OK"), ("b", "OK")]
    assert all(r.resource.startswith(f"{ARN}:solution") for r in submits)
    cancels = [r for r in audit if r.rpc.endswith("CancelOperation")]
    assert [(r.caller, r.outcome) for r in cancels] == [("b", "NOT_FOUND")] * 2


async def test_without_tls_or_auth_the_start_says_so(
    make_gateway: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="gateway")
    gw = await make_gateway()
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum("plaintext" in line for line in lines) == 1
    assert sum("anonymous" in line for line in lines) == 1
    async with grpc.aio.insecure_channel(f"127.0.0.1:{gw.port}") as ch:
        assert (
            await rt_grpc.PersonalizeRuntimeServiceStub(ch).GetRecommendations(recs())
        ).item_list
