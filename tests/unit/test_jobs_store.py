"""The two job stores keep the same promises (gateway/jobs/store.py)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.cache_config import RedisConfig
from gateway.jobs.record import JobRecord, Phase
from gateway.jobs.redis_store import RedisStore
from gateway.jobs.store import JobStore, SqliteStore
from tests.integration.jobs_support import REDIS_URL, drop_keys
from tests.support import eventually


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[JobStore]:
    if request.param == "sqlite":
        made: JobStore = SqliteStore(tmp_path)
        yield made
        await made.aclose()
        return
    prefix = f"test:jobs:{uuid.uuid4().hex}:"
    made = await RedisStore.open(RedisConfig(url=REDIS_URL), 2.0, prefix)
    yield made
    await made.aclose()
    await drop_keys(prefix)


def record(name: str, request_id: str = "", backend: str = "personalize") -> JobRecord:
    return JobRecord(
        name=name,
        backend=backend,
        request_id=request_id,
        fingerprint=f"fp-{name}",
        request=b"\x00\x01binary",
        seq=0,
        submit_time=1_700_000_000.123,
    )


async def test_a_request_id_names_one_operation(store: JobStore) -> None:
    first, made = await store.create(record("operations/a", "rid-1"))
    assert made
    again, made_again = await store.create(record("operations/b", "rid-1"))
    assert not made_again
    assert again.name == "operations/a"
    assert again.request == b"\x00\x01binary"
    assert await store.get("operations/b") is None
    other, _ = await store.create(record("operations/c"))
    assert other.seq > first.seq


async def test_queue_order_and_compare_and_set(store: JobStore) -> None:
    for name in ("operations/1", "operations/2", "operations/3"):
        await store.create(record(name))
    await store.create(record("operations/other", backend="bedrock"))
    assert [r.name for r in await store.queued("personalize")] == [
        "operations/1",
        "operations/2",
        "operations/3",
    ]
    taken = await store.get("operations/1")
    assert taken is not None
    taken.phase = Phase.SUBMITTING
    assert await store.save(taken, [Phase.QUEUED])
    # A cancel that read QUEUED loses to the dispatcher that moved it on.
    cancelled = record("operations/1")
    cancelled.phase = Phase.DONE
    assert not await store.save(cancelled, [Phase.QUEUED])
    taken.phase, taken.job_id = Phase.SUBMITTED, "arn:job"
    assert await store.save(taken, [Phase.SUBMITTING])
    assert [r.name for r in await store.queued("personalize")] == ["operations/2", "operations/3"]
    unfinished = {r.name for r in await store.unfinished()}
    assert "operations/1" in unfinished
    stored = await store.get("operations/1")
    assert stored is not None
    assert (stored.phase, stored.job_id) == (Phase.SUBMITTED, "arn:job")


async def test_purge_forgets_only_finished_operations_past_retention(store: JobStore) -> None:
    for name, end in (("operations/old", 100.0), ("operations/new", 300.0)):
        made, _ = await store.create(record(name, request_id=name))
        made.phase, made.end_time = Phase.DONE, end
        assert await store.save(made, [Phase.QUEUED])
    await store.create(record("operations/running"))
    assert await store.purge(ended_before=200.0) == 1
    assert [r.name for r in await store.page(0, 10)] == ["operations/new", "operations/running"]
    # Its request_id is free again: a replay after retention is a new operation.
    _, made = await store.create(record("operations/again", request_id="operations/old"))
    assert made


async def test_a_lease_has_one_holder_until_it_expires(store: JobStore) -> None:
    assert await store.lease("dispatch:x", "replica-a", 30.0)
    assert await store.lease("dispatch:x", "replica-a", 30.0)  # renewal
    assert not await store.lease("dispatch:x", "replica-b", 30.0)
    await store.release("dispatch:x", "replica-b")  # not the holder: no effect
    assert not await store.lease("dispatch:x", "replica-b", 30.0)
    await store.release("dispatch:x", "replica-a")
    assert await store.lease("dispatch:x", "replica-b", 0.001)
    # A holder that stops renewing (a dead replica) loses the lease when it expires.
    await eventually(lambda: store.lease("dispatch:x", "replica-a", 30.0), within=2.0)
    assert not await store.lease("dispatch:x", "replica-b", 30.0)


async def test_pages_filter_by_backend_and_state(store: JobStore) -> None:
    made = [
        (await store.create(record(f"operations/{i}", backend=("bedrock", "personalize")[i % 2])))[
            0
        ]
        for i in range(7)
    ]
    done = made[3]
    done.phase, done.state = Phase.DONE, 5
    assert await store.save(done, [Phase.QUEUED])
    first = await store.page(0, 2, backend="personalize")
    assert [r.name for r in first] == ["operations/1", "operations/3"]
    rest = await store.page(first[-1].seq, 10, backend="personalize")
    assert [r.name for r in rest] == ["operations/5"]
    assert [r.name for r in await store.page(0, 10, state=5)] == ["operations/3"]
    assert len(await store.page(0, 10)) == 7
