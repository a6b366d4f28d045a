"""Per-caller quotas over TLS with API keys: rate with burst, a cost per entry, streams open
at once, shared across replicas through Redis, and one caller's excess never touching
another's calls."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2
from mlgw.batch.v1 import batch_pb2, batch_pb2_grpc
from mlgw.personalize_runtime.v1 import personalize_runtime_pb2 as rt
from mlgw.personalize_runtime.v1 import personalize_runtime_pb2_grpc as rt_grpc
from redis.asyncio import Redis

from gateway.emulator import Emulator
from gateway.server import Gateway
from tests.integration.conftest import TEST_CREDENTIALS
from tests.integration.requests import ARN
from tests.integration.security_support import (
    Authority,
    bearer,
    caller,
    channel,
    secure_config,
    write_tls,
)
from tests.support import details, error_info, eventually

DEMO = f"{ARN}:campaign/demo"
NOISY, QUIET = "noisy-key-0123456789abcdef012345", "quiet-key-0123456789abcdef012345"
REDIS_URL = "redis://127.0.0.1:6379/0"

Start = Callable[..., Awaitable[Gateway]]


@pytest.fixture
async def start(emulator: Emulator, tmp_path: Path) -> AsyncIterator[tuple[Start, Authority]]:
    ca = Authority()
    tls = write_tls(tmp_path / "tls", ca.server(), None)
    started: list[Gateway] = []

    async def make(callers: list[dict[str, Any]], **more: Any) -> Gateway:
        sections = {"auth": {"callers": callers}, **more}
        config = secure_config(emulator.endpoint_url, tls, **sections)
        gw = Gateway(config, credentials=TEST_CREDENTIALS)
        await gw.start()
        started.append(gw)
        return gw

    yield make, ca
    for gw in started:
        await gw.stop(0)


def recs(user: str) -> rt.GetRecommendationsRequest:
    return rt.GetRecommendationsRequest(campaign_arn=DEMO, user_id=user)


def assert_quota_error(error: grpc.aio.AioRpcError, name: str) -> None:
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error_info(error).reason == "CALLER_QUOTA_EXCEEDED"
    (failure,) = details(error, error_details_pb2.QuotaFailure)
    assert failure.violations[0].subject == f"caller:{name}"
    (retry,) = details(error, error_details_pb2.RetryInfo)
    assert retry.retry_delay.ToNanoseconds() > 0


async def test_rate_burst_and_cost_per_entry(start: tuple[Start, Authority]) -> None:
    make, ca = start
    # A slow refill (one token every 20 s): what the test sees is the burst alone.
    gw = await make([caller("noisy", key=NOISY, rate=0.05, burst=5)])
    async with channel(gw.port, ca) as ch:
        batch = batch_pb2.BatchGetRecommendationsRequest(
            requests=[recs(f"u-{i}") for i in range(8)]
        )
        results = (
            await batch_pb2_grpc.BatchServiceStub(ch).BatchGetRecommendations(
                batch, metadata=bearer(NOISY)
            )
        ).results
        assert [r.WhichOneof("result") for r in results] == ["response"] * 5 + ["error"] * 3
        assert {r.error.code for r in results[5:]} == {code_pb2.RESOURCE_EXHAUSTED}
        stub = rt_grpc.PersonalizeRuntimeServiceStub(ch)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.GetRecommendations(recs("u-0"), metadata=bearer(NOISY))
        assert_quota_error(caught.value, "noisy")


async def test_streams_open_at_once(start: tuple[Start, Authority]) -> None:
    make, ca = start
    gw = await make([caller("noisy", key=NOISY, max_streams=1)])
    async with channel(gw.port, ca) as ch:
        stub = batch_pb2_grpc.BatchServiceStub(ch)
        first = stub.StreamRecommendations(metadata=bearer(NOISY))
        entry = batch_pb2.StreamRecommendationsEntry(id="1", get_recommendations=recs("u"))
        await first.write(batch_pb2.StreamRecommendationsRequest(entries=[entry]))
        assert (await first.read()).results[0].get_recommendations.item_list
        second = stub.StreamRecommendations(metadata=bearer(NOISY))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await second.read()
        assert_quota_error(caught.value, "noisy")
        await first.done_writing()
        assert await first.read() is grpc.aio.EOF


async def test_one_caller_over_its_quota_leaves_another_unthrottled(
    start: tuple[Start, Authority],
) -> None:
    make, ca = start
    callers = [
        caller("noisy", key=NOISY, rate=20.0, burst=20),
        caller("quiet", key=QUIET, rate=1000.0, burst=1000),
    ]
    gw = await make(callers)
    async with channel(gw.port, ca) as ch:
        stub = rt_grpc.PersonalizeRuntimeServiceStub(ch)

        async def call(key: str, user: str) -> grpc.StatusCode:
            try:
                await stub.GetRecommendations(recs(user), metadata=bearer(key))
            except grpc.aio.AioRpcError as exc:
                return exc.code()
            return grpc.StatusCode.OK

        # noisy sends ten times its burst at once, interleaved with quiet's calls.
        noisy = [call(NOISY, f"n-{i % 10}") for i in range(200)]
        quiet = [call(QUIET, f"q-{i % 10}") for i in range(50)]
        answers = await asyncio.gather(*noisy, *quiet)
    noisy_codes, quiet_codes = answers[:200], answers[200:]
    assert set(quiet_codes) == {grpc.StatusCode.OK}
    assert noisy_codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) >= 150


async def test_quota_is_shared_across_replicas_through_redis(
    start: tuple[Start, Authority],
) -> None:
    make, ca = start
    prefix = f"test:quota:{uuid.uuid4().hex}:"
    limits = {"redis_key_prefix": prefix}
    callers = [caller("noisy", key=NOISY, rate=0.05, burst=6)]
    replicas = [await make(callers, redis={"url": REDIS_URL}, limits=limits) for _ in range(2)]
    ok = 0
    for gw in replicas:
        async with channel(gw.port, ca) as ch:
            stub = rt_grpc.PersonalizeRuntimeServiceStub(ch)
            for i in range(6):
                try:
                    await stub.GetRecommendations(recs(f"u-{i}"), metadata=bearer(NOISY))
                except grpc.aio.AioRpcError as exc:
                    assert_quota_error(exc, "noisy")
                else:
                    ok += 1
    # One bucket of 6 for both replicas (each on its own would have allowed 6).
    assert ok == 6
    client = Redis.from_url(REDIS_URL)
    try:
        assert await client.exists(f"{prefix}caller:noisy") == 1
        await client.delete(f"{prefix}caller:noisy")
    finally:
        await client.aclose()


async def test_a_caller_over_its_quota_is_refused_before_its_request_is_read(
    start: tuple[Start, Authority],
) -> None:
    make, ca = start
    gw = await make([caller("noisy", key=NOISY, rate=0.05, burst=1)])
    async with channel(gw.port, ca) as ch:
        # A body that does not decode: within the quota it is MALFORMED_REQUEST, beyond it
        # the refusal comes first, so a flooding caller costs the gateway no decoding.
        garbage: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = ch.unary_unary(
            "/mlgw.personalize_runtime.v1.PersonalizeRuntimeService/GetRecommendations"
        )
        answers = []
        for _ in range(2):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await garbage(b"\xff\xff\xff", metadata=bearer(NOISY))
            answers.append(caught.value)
    assert error_info(answers[0]).reason == "MALFORMED_REQUEST"
    assert_quota_error(answers[1], "noisy")


class Streams:
    """StreamRecommendations of one caller. A stream is written to only when the gateway is
    expected to let it through: a write racing a refusal can fail inside grpc core (INTERNAL,
    the gateway's status lost) or never return, so a refusal is seen by a read alone."""

    def __init__(self, ch: grpc.aio.Channel, key: str, name: str) -> None:
        self._stub = batch_pb2_grpc.BatchServiceStub(ch)
        self._key, self._name = key, name
        self.open: list[Any] = []

    def _call(self) -> Any:
        # The deadline only turns a stream let through unexpectedly into a failure, not a hang.
        return self._stub.StreamRecommendations(metadata=bearer(self._key), timeout=30)

    async def refused(self) -> bool:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await self._call().read()  # refused before the gateway reads anything
        assert_quota_error(caught.value, self._name)
        return True

    async def open_one(self) -> None:
        call = self._call()
        entry = batch_pb2.StreamRecommendationsEntry(id="1", get_recommendations=recs("u"))
        await call.write(batch_pb2.StreamRecommendationsRequest(entries=[entry]))
        assert (await call.read()).results[0].get_recommendations.item_list
        self.open.append(call)

    async def close_all(self) -> None:
        for call in self.open:
            await call.done_writing()
            assert await call.read() is grpc.aio.EOF
        self.open.clear()


async def leases(client: Redis, key: str) -> dict[str, float]:
    return {m.decode(): s for m, s in await client.zrange(key, 0, -1, withscores=True)}


async def gone(client: Redis, key: str) -> bool:
    return await client.exists(key) == 0


async def redis_ms(client: Redis) -> int:
    seconds, micros = await client.time()
    return int(seconds) * 1000 + int(micros) // 1000


async def test_max_streams_is_one_limit_across_replicas(start: tuple[Start, Authority]) -> None:
    make, ca = start
    prefix = f"test:streams:{uuid.uuid4().hex}:"
    callers = [caller("noisy", key=NOISY, max_streams=1)]
    limits = {"redis_key_prefix": prefix, "replicas": 2}
    a, b = [await make(callers, redis={"url": REDIS_URL}, limits=limits) for _ in range(2)]
    client = Redis.from_url(REDIS_URL)
    key = f"{prefix}streams:noisy"
    try:
        async with channel(a.port, ca) as ch_a, channel(b.port, ca) as ch_b:
            on_a, on_b = Streams(ch_a, NOISY, "noisy"), Streams(ch_b, NOISY, "noisy")
            await on_a.open_one()
            assert len(await leases(client, key)) == 1
            # Each replica alone would allow one: B sees A's lease.
            assert await on_b.refused()
            await on_a.close_all()
            # A's release (not a lapse: nothing else removes the caller's last lease).
            await eventually(lambda: gone(client, key))
            await on_b.open_one()
            assert len(await leases(client, key)) == 1
            assert await on_a.refused()
            on_b.open.pop().cancel()  # the client goes away: the stream's end releases too
            await eventually(lambda: gone(client, key))
    finally:
        await client.delete(key)
        await client.aclose()


async def test_a_dead_replicas_stream_leases_lapse(start: tuple[Start, Authority]) -> None:
    """A lease nobody renews (its replica died) stops counting once its time is up; a live
    stream's lease is renewed, so it outlasts the lease time."""
    make, ca = start
    prefix = f"test:streams:{uuid.uuid4().hex}:"
    callers = [caller("noisy", key=NOISY, max_streams=1)]
    auth = {"callers": callers, "stream_lease_seconds": 0.5}
    limits = {"redis_key_prefix": prefix}
    gw = await make(callers, auth=auth, redis={"url": REDIS_URL}, limits=limits)
    client = Redis.from_url(REDIS_URL)
    key = f"{prefix}streams:noisy"
    try:
        async with channel(gw.port, ca) as ch:
            streams = Streams(ch, NOISY, "noisy")
            # Another replica's lease, as it renewed it an hour ahead: it counts.
            await client.zadd(key, {"dead-replica": await redis_ms(client) + 3_600_000})
            assert await streams.refused()
            # The replica dies after one last renewal: its lease lapses 0.5 s later.
            lapses = await redis_ms(client) + 500
            await client.zadd(key, {"dead-replica": lapses})

            async def lapsed() -> bool:
                return await redis_ms(client) > lapses

            await eventually(lapsed)
            assert list(await leases(client, key)) == ["dead-replica"]  # lapsed, still there
            await streams.open_one()
            ((ours, first),) = (await leases(client, key)).items()  # the dead lease is gone
            assert ours != "dead-replica"

            async def renewed() -> bool:
                return (await leases(client, key)).get(ours, 0.0) > first + 500

            await eventually(renewed)  # past its first lease time, and still held
            await streams.close_all()
            await eventually(lambda: gone(client, key))
    finally:
        await client.delete(key)
        await client.aclose()
