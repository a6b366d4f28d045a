"""Fault injection (errors, latency, resets, TPS limits) and the admin API."""

from __future__ import annotations

import asyncio
import math
import random
import time
from typing import Any

import aiohttp
import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError

from gateway.emulator import Emulator, FaultConfig
from gateway.emulator.faults import FaultConfigError, LatencySpec, TokenBucket

ARN = "arn:aws:personalize:us-east-1:000000000000"
DEMO = f"{ARN}:campaign/demo"
POPULAR = f"{ARN}:campaign/popular"


async def wait_for(predicate: Any, limit_s: float = 5.0) -> None:
    """Poll ``predicate`` (bounded) instead of sleeping a fixed time."""
    deadline = time.monotonic() + limit_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


async def admin(emulator: Emulator, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, f"{emulator.endpoint_url}/_emulator/{path}", json=body) as resp,
    ):
        return resp.status, await resp.json()


# -- the admin API -------------------------------------------------------------------


async def test_admin_health_catalog_and_unknown_paths(emulator: Emulator) -> None:
    status, health = await admin(emulator, "GET", "health")
    assert status == 200
    assert health["status"] == "ok"
    status, catalog = await admin(emulator, "GET", "catalog")
    assert status == 200
    assert catalog["campaigns"][DEMO] == "user-personalization"
    assert catalog["items"] == 1000
    assert (await admin(emulator, "GET", "nope"))[0] == 404
    assert (await admin(emulator, "DELETE", "stats"))[0] == 405


async def test_admin_stats_and_reset(emulator: Emulator, emulator_client: Any) -> None:
    rt = await emulator_client("personalize-runtime")
    await rt.get_recommendations(campaignArn=DEMO, userId="u1")
    await rt.get_recommendations(campaignArn=POPULAR)
    status, stats = await admin(emulator, "GET", "stats")
    assert status == 200
    assert stats["calls"] == {"GetRecommendations": 2}
    assert stats["calls_by_arn"] == {
        DEMO: {"GetRecommendations": 1},
        POPULAR: {"GetRecommendations": 1},
    }
    assert stats["in_flight"] == 0
    assert stats["abandoned"] == {}
    assert stats["throttled"] == {}
    assert (await admin(emulator, "POST", "reset-stats"))[0] == 200
    assert (await admin(emulator, "GET", "stats"))[1]["calls"] == {}


async def test_admin_fault_config_put_patch_get(emulator: Emulator) -> None:
    config = {
        "seed": 7,
        "latency": {
            "*": {"fixed_ms": 1, "tail_probability": 0.5, "tail_p50_ms": 10, "tail_p99_ms": 100}
        },
        "errors": {"GetRecommendations": {"ThrottlingException": 0.1}},
        "tps": [{"arn": DEMO, "rate": 5, "burst": 2}],
    }
    status, body = await admin(emulator, "PUT", "faults", config)
    assert status == 200
    assert body["latency"]["*"]["tail_mu"] == pytest.approx(math.log(10))
    assert emulator.faults.tps[0].burst == 2
    status, body = await admin(
        emulator,
        "PATCH",
        "faults",
        {"errors": {"GetRecommendations": None, "*": {"connection_reset": 0.01}}},
    )
    assert status == 200
    assert body["errors"] == {"*": {"connection_reset": 0.01}}
    assert body["seed"] == 7
    assert body["tps"] == [{"arn": DEMO, "rate": 5.0, "burst": 2.0}]
    assert (await admin(emulator, "GET", "faults"))[1] == body
    status, err = await admin(emulator, "PUT", "faults", {"errors": {"*": {"not-an-error": 0.5}}})
    assert status == 400
    assert "not-an-error" in err["error"]
    assert (await admin(emulator, "PUT", "faults", {"errors": {"*": {"ThrottlingException": 2}}}))[
        0
    ] == 400
    assert (await admin(emulator, "GET", "faults"))[1] == body  # a bad update changes nothing
    assert (await admin(emulator, "PUT", "faults", {}))[1]["errors"] == {}


def test_fault_config_round_trips_and_rejects_nonsense() -> None:
    raw = {"seed": 3, "tps": [{"arn": "*", "rate": 10, "operations": ["GetRecommendations"]}]}
    config = FaultConfig.from_mapping(raw)
    assert FaultConfig.from_mapping(config.to_mapping()) == config
    for bad in (
        {"tps": [{"arn": "*", "rate": 0}]},
        {"latency": {"*": {"tail_p50_ms": 10, "tail_mu": 1}}},
        {"latency": {"*": {"fixed_ms": -1}}},
        {"unknown": 1},
    ):
        with pytest.raises(FaultConfigError):
            FaultConfig.from_mapping(bad)


# -- injected errors ------------------------------------------------------------------


async def test_injected_errors_use_each_service_wire_shape(
    emulator: Emulator, emulator_client: Any
) -> None:
    rt = await emulator_client("personalize-runtime")
    br = await emulator_client("bedrock")
    ml = await emulator_client("machinelearning")
    cases = [
        ("ThrottlingException", "ThrottlingException", 400),
        ("InternalServerException", "InternalServerException", 500),
        ("ServiceUnavailable", "ServiceUnavailableException", 503),
    ]
    for kind, code, status in cases:
        emulator.set_faults({"errors": {"*": {kind: 1.0}}})
        with pytest.raises(ClientError) as info:
            await rt.get_recommendations(campaignArn=DEMO, userId="u1")
        assert info.value.response["Error"]["Code"] == code
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    # Where the model has the error shape, botocore raises its class (and Bedrock's
    # throttle is modelled as 429).
    emulator.set_faults({"errors": {"*": {"ThrottlingException": 1.0}}})
    with pytest.raises(br.exceptions.ThrottlingException) as throttled:
        await br.list_model_invocation_jobs()
    assert throttled.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    pz = await emulator_client("personalize")  # json 1.1: an unmodelled throttle, 400
    with pytest.raises(ClientError) as json_throttle:
        await pz.list_batch_inference_jobs()
    assert json_throttle.value.response["Error"]["Code"] == "ThrottlingException"
    assert json_throttle.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    emulator.set_faults({"errors": {"*": {"InternalServerException": 1.0}}})
    with pytest.raises(br.exceptions.InternalServerException):
        await br.list_model_invocation_jobs()
    with pytest.raises(ml.exceptions.InternalServerException) as internal:
        await ml.describe_batch_predictions()
    assert internal.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    injected = emulator.stats()["injected"]
    assert injected["GetRecommendations"] == {
        "ThrottlingException": 1,
        "InternalServerException": 1,
        "ServiceUnavailable": 1,
    }


async def test_error_rates_are_per_operation_and_seeded(
    emulator: Emulator, emulator_client: Any
) -> None:
    rt = await emulator_client("personalize-runtime")
    outcomes = []
    for _ in range(2):
        emulator.set_faults(
            {"seed": 11, "errors": {"GetRecommendations": {"InternalServerException": 0.3}}}
        )
        run = []
        for n in range(100):
            try:
                await rt.get_recommendations(campaignArn=DEMO, userId=f"u{n}")
                run.append(True)
            except ClientError:
                run.append(False)
        outcomes.append(run)
    assert outcomes[0] == outcomes[1]  # same seed, same faults
    failures = outcomes[0].count(False)
    assert 15 <= failures <= 45  # binomial(100, 0.3): mean 30, sd 4.6
    # Other operations are untouched by this operation's error rate.
    ranked = await rt.get_personalized_ranking(
        campaignArn=f"{ARN}:campaign/ranking", userId="u1", inputList=["i1"]
    )
    assert ranked["personalizedRanking"][0]["itemId"] == "i1"


async def test_connection_reset(emulator: Emulator, emulator_client: Any) -> None:
    rt = await emulator_client("personalize-runtime")
    emulator.set_faults({"errors": {"GetRecommendations": {"connection_reset": 1.0}}})
    with pytest.raises((ConnectionClosedError, EndpointConnectionError)):
        await rt.get_recommendations(campaignArn=DEMO, userId="u1")
    await wait_for(lambda: emulator.stats()["in_flight"] == 0)
    stats = emulator.stats()
    assert stats["injected"] == {"GetRecommendations": {"connection_reset": 1}}
    assert stats["abandoned"] == {}  # we hung up; the client did not abandon
    emulator.set_faults({})
    assert (await rt.get_recommendations(campaignArn=DEMO, userId="u1"))["itemList"]


# -- latency --------------------------------------------------------------------------


async def test_fixed_latency_is_added(emulator: Emulator, emulator_client: Any) -> None:
    rt = await emulator_client("personalize-runtime")
    await rt.get_recommendations(campaignArn=DEMO, userId="u1")  # warm the connection
    emulator.set_faults({"latency": {"GetRecommendations": {"fixed_ms": 300}}})
    start = time.monotonic()
    await rt.get_recommendations(campaignArn=DEMO, userId="u1")
    delayed = time.monotonic() - start
    assert delayed >= 0.3
    emulator.set_faults({})
    start = time.monotonic()
    await rt.get_recommendations(campaignArn=DEMO, userId="u1")
    assert time.monotonic() - start < delayed - 0.2


def test_lognormal_tail_matches_its_percentiles() -> None:
    spec = LatencySpec.from_mapping(
        {"tail_probability": 1.0, "tail_p50_ms": 20, "tail_p99_ms": 200, "max_ms": 10_000}, "t"
    )
    rng = random.Random(1)
    samples = sorted(spec.sample_ms(rng) for _ in range(20_000))
    assert samples[10_000] == pytest.approx(20, rel=0.1)
    assert samples[19_800] == pytest.approx(200, rel=0.2)
    never = LatencySpec.from_mapping({"fixed_ms": 5, "tail_probability": 0.0}, "t")
    assert {never.sample_ms(rng) for _ in range(100)} == {5.0}


async def test_abandoned_requests_are_counted(emulator: Emulator, emulator_client: Any) -> None:
    rt = await emulator_client("personalize-runtime")
    emulator.set_faults({"latency": {"GetRecommendations": {"fixed_ms": 30_000}}})
    call = asyncio.create_task(rt.get_recommendations(campaignArn=DEMO, userId="u1"))
    await wait_for(lambda: emulator.stats()["in_flight"] == 1)
    call.cancel()
    await wait_for(lambda: emulator.stats()["abandoned"].get("GetRecommendations") == 1)
    stats = emulator.stats()
    assert stats["in_flight"] == 0
    assert stats["calls"] == {"GetRecommendations": 1}
    with pytest.raises(asyncio.CancelledError):
        await call


# -- TPS limits -------------------------------------------------------------------------


def test_token_bucket_refills_at_its_rate() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=10, burst=3, now=lambda: now[0])
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    now[0] += 0.25  # 2.5 tokens
    assert [bucket.take() for _ in range(3)] == [True, True, False]
    now[0] += 100
    assert sum(bucket.take() for _ in range(10)) == 3  # never more than the burst


async def test_per_arn_tps_limit_holds_under_overload(
    emulator: Emulator, emulator_client: Any
) -> None:
    """Offer far more than the limit for ~3 s: the accepted rate stays at the limit.

    A burst of a few tokens absorbs event-loop stalls of the load generator (a bucket of
    one token would waste refills whenever no request happens to arrive for 1/rate s);
    while overloaded the bucket stays near empty, so the burst barely moves the count.
    """
    rate = 25.0
    rt = await emulator_client("personalize-runtime")
    emulator.set_faults(
        {"tps": [{"arn": DEMO, "rate": rate, "burst": 3, "operations": ["GetRecommendations"]}]}
    )
    running = True
    codes: set[str] = set()

    async def offer(worker: int) -> None:
        n = 0
        while running:
            n += 1
            try:
                await rt.get_recommendations(campaignArn=DEMO, userId=f"u{worker}-{n}")
            except ClientError as exc:
                codes.add(exc.response["Error"]["Code"])

    workers = [asyncio.create_task(offer(w)) for w in range(16)]
    # Measure from the steady state: once requests are being throttled.
    await wait_for(lambda: DEMO in emulator.stats()["throttled_by_arn"], limit_s=10)
    before, t0 = emulator.stats(), time.monotonic()
    await asyncio.sleep(3.0)
    after, t1 = emulator.stats(), time.monotonic()
    running = False
    await asyncio.gather(*workers)

    def accepted(stats: dict[str, Any]) -> int:
        calls = stats["calls_by_arn"][DEMO]["GetRecommendations"]
        return calls - stats["throttled_by_arn"].get(DEMO, {}).get("GetRecommendations", 0)

    offered = (
        after["calls_by_arn"][DEMO]["GetRecommendations"]
        - before["calls_by_arn"][DEMO]["GetRecommendations"]
    ) / (t1 - t0)
    measured = (accepted(after) - accepted(before)) / (t1 - t0)
    assert codes == {"ThrottlingException"}
    assert offered > 2 * rate  # really overloaded
    assert measured == pytest.approx(rate, rel=0.10)
    # Other ARNs are not limited by DEMO's bucket.
    for n in range(50):
        await rt.get_recommendations(campaignArn=POPULAR, userId=f"p{n}")
    assert POPULAR not in emulator.stats()["throttled_by_arn"]
