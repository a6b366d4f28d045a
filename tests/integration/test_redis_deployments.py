"""Redis as operators run it: a real 3-master Redis Cluster and a Sentinel set-up, started on
loopback ports for the test. Through the cluster: two gateway processes share hits, make
one upstream call for a hot request (the lease script: value and lease in one slot) and
take their tokens through the GCRA script. Through Sentinel: the client finds the master
by asking the sentinel."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from gateway.cache_config import RedisConfig
from gateway.jobs.redis_store import RedisStore
from gateway.limits_config import LimitsConfig
from gateway.pipeline.global_limits import open_shared_buckets
from gateway.pipeline.shared import SharedTier
from gateway.redis import open_redis
from tests.integration.cache_support import answer, recs
from tests.integration.redis_servers import Node, cluster, sentinel, tls_node
from tests.integration.replica_support import replica_config, replicas, upstream_calls
from tests.support import eventually
from tests.unit import test_jobs_store as job_store

JOB_STORE_CONTRACT = (
    job_store.test_a_request_id_names_one_operation,
    job_store.test_queue_order_and_compare_and_set,
    job_store.test_purge_forgets_only_finished_operations_past_retention,
    job_store.test_a_lease_has_one_holder_until_it_expires,
    job_store.test_pages_filter_by_backend_and_state,
)


async def keys_on(nodes: list[Node], pattern: str) -> list[bytes]:
    found: list[bytes] = []
    for node in nodes:
        client = Redis(host="127.0.0.1", port=node.port)
        try:
            found += [key async for key in client.scan_iter(match=pattern)]
        finally:
            await client.aclose()
    return found


async def test_replicas_on_a_redis_cluster_share_hits_leases_and_limits(
    emulator: Any, tmp_path: Path
) -> None:
    emulator.set_faults({"latency": {"*": {"fixed_ms": 30}}})
    async with cluster(tmp_path / "cluster") as masters:
        url = f"redis://127.0.0.1:{masters[0].port}"
        config = replica_config(emulator.endpoint_url, "mlgw:c:", "cluster = true", url=url)
        async with replicas(tmp_path, [config, config]) as (a, b):
            before = upstream_calls(emulator)
            calls = [(a, b)[i % 2].runtime.GetRecommendations(recs("hot")) for i in range(60)]
            await asyncio.gather(*calls)
            assert upstream_calls(emulator) - before == 1  # the lease, across the cluster
            _, meta = await answer(a.runtime.GetRecommendations(recs("shared")))
            assert meta["mlgw-cache"] == "miss"
            # That upstream call took its token from a bucket kept in the cluster (a bucket
            # key lives until the bucket is full again: about a second).
            assert await keys_on(masters, "mlgw:c:limits:*")

            async def stored() -> bool:
                values = await keys_on(masters, "mlgw:c:cache:*")
                return len([k for k in values if not k.endswith(b":lease")]) >= 2

            await eventually(stored)
            _, meta = await answer(b.runtime.GetRecommendations(recs("shared")))
            assert (meta["mlgw-cache"], meta["mlgw-cache-tier"]) == ("hit", "shared")
        for log in ("r0", "r1"):
            assert "unavailable" not in (tmp_path / f"{log}.log").read_text()


async def test_every_script_keeps_to_one_hash_slot(tmp_path: Path) -> None:
    """On a real cluster: a cache key and its lease, a bucket, and the job store's
    operations, queue and leases (its scripts touch several keys: one hash tag)."""
    async with cluster(tmp_path / "cluster") as masters, AsyncExitStack() as stack:
        cfg = RedisConfig(url=f"redis://127.0.0.1:{masters[0].port}", cluster=True)
        client = await open_redis(cfg, stack)
        assert client is not None
        shared = SharedTier(client, cfg, "mlgw:slot:")
        slots = set()
        for i in range(20):
            key = shared.redis_key(f"GetRecommendations\n{i}".encode())
            slot = await client.cluster_keyslot(key)
            assert await client.cluster_keyslot(shared.lease_key(key)) == slot
            slots.add(slot)
        assert len(slots) > 10  # keys still spread over the cluster
        buckets = await open_shared_buckets(cfg, LimitsConfig(redis_timeout_seconds=0.5), stack)
        assert buckets is not None
        assert await buckets.take("mlgw:slot:bucket", 0.1, 3.0, 5) == (
            3,
            pytest.approx(0.1, abs=0.02),
        )
        for contract in JOB_STORE_CONTRACT:  # the promises both job stores keep, here too
            store = await RedisStore.open(cfg, 2.0, f"mlgw:slot:jobs:{contract.__name__}:")
            try:
                await contract(store)
            finally:
                await store.aclose()


async def test_the_client_finds_the_master_through_sentinel(tmp_path: Path) -> None:
    async with sentinel(tmp_path / "sentinel") as (master, watcher), AsyncExitStack() as stack:
        cfg = RedisConfig(
            url="redis://mymaster/0",  # the host is the sentinels' business
            sentinels=[f"127.0.0.1:{watcher.port}"],
            timeout_seconds=0.5,
        )
        client = await open_redis(cfg, stack)
        assert client is not None
        shared = SharedTier(client, cfg, "mlgw:sentinel:")
        stack.push_async_callback(shared.aclose)
        shared.put(b"k", 3.0, b"answer", keep_seconds=30)

        async def found() -> bool:
            return await shared.get(b"k") == (3.0, b"answer")

        await eventually(found)
        direct = Redis(host="127.0.0.1", port=master.port)
        try:
            assert await direct.exists(shared.redis_key(b"k")) == 1  # on that master
        finally:
            await direct.aclose()
        buckets = await open_shared_buckets(cfg, LimitsConfig(redis_timeout_seconds=0.5), stack)
        assert buckets is not None
        taken = await buckets.take("mlgw:sentinel:bucket", 0.1, 2.0, 1)
        assert taken is not None
        assert taken[0] == 1


async def test_tls_with_an_acl_user_and_a_password_file(tmp_path: Path) -> None:
    node = tls_node(tmp_path / "tls", "s3cret-pass")
    (tmp_path / "password").write_text("s3cret-pass\n")  # a mounted Secret's file
    (tmp_path / "wrong").write_text("not-it\n")
    node.start()
    try:
        for password_file, works in (("password", True), ("wrong", False)):
            async with AsyncExitStack() as stack:
                cfg = RedisConfig(
                    url=f"rediss://mlgw@127.0.0.1:{node.port}/0",
                    password_file=str(tmp_path / password_file),
                    tls_ca_file=str(tmp_path / "tls" / "ca.crt"),
                    timeout_seconds=0.5,
                    # A TLS handshake takes longer than a plain connect (docs/operations.md).
                    connect_timeout_seconds=2.0,
                )
                client = await open_redis(cfg, stack)
                assert client is not None
                shared = SharedTier(client, cfg, "mlgw:tls:")
                stack.push_async_callback(shared.aclose)
                shared.put(b"k", 4.0, b"answer", keep_seconds=30)

                await eventually(lambda tier=shared: _settled(tier), within=10)
                assert (await shared.get(b"k") == (4.0, b"answer")) is works
                assert shared.link.down is not works  # a refused login: the tier is off
    finally:
        node.stop()


async def _settled(shared: SharedTier) -> bool:
    return await shared.get(b"k") is not None or shared.link.down
