"""The shared job store: every replica on one Redis sees one set of operations and one queue.

Each multi-key change is one Lua script, so it is atomic: inserting an operation and its
request_id, a compare-and-set of the phase together with the queue index, taking a lease.
Keys (under `mlgw:jobs:{jobs}:`: one hash tag, so a Redis Cluster keeps them in one slot):
`op:<name>` (the record's JSON), `rid:<request_id>` (its name), `all` (sorted set name ->
seq), `queue:<backend>` (names QUEUED or SUBMITTING, by seq), `unfinished` (sorted set),
`lease:<key>`, `seq` (the counter).

The guarantees hold as long as Redis keeps what it acknowledged: run it with AOF
(`appendonly yes`, `appendfsync everysec` or `always`) and no eviction of these keys
(`maxmemory-policy noeviction`). The gateway warns at start when persistence is off.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from redis.exceptions import RedisError

from gateway.cache_config import RedisConfig
from gateway.jobs import errors
from gateway.jobs.record import IN_QUEUE, JobRecord, Phase
from gateway.redis import RedisClient, connect

log = logging.getLogger("gateway.jobs")

PREFIX = "mlgw:jobs:"

# KEYS: op, rid, all, queue, unfinished, seq. ARGV: name, json, op key prefix, "1" when the
# record has a request_id (without one, KEYS[2] is a placeholder in the same hash slot).
_CREATE = """
if ARGV[4] == '1' then
  local known = redis.call('GET', KEYS[2])
  if known then return {0, redis.call('GET', ARGV[3] .. known)} end
end
local seq = redis.call('INCR', KEYS[6])
-- The JSON comes with "seq":0 (sorted keys, no spaces; quotes inside strings are escaped,
-- so this is the member): patched as text, the rest stays byte for byte what Python wrote.
local text = string.gsub(ARGV[2], '"seq":0,', '"seq":' .. seq .. ',', 1)
redis.call('SET', KEYS[1], text)
if ARGV[4] == '1' then redis.call('SET', KEYS[2], ARGV[1]) end
redis.call('ZADD', KEYS[3], seq, ARGV[1])
redis.call('ZADD', KEYS[4], seq, ARGV[1])
redis.call('ZADD', KEYS[5], seq, ARGV[1])
return {1, text}
"""

# KEYS: op, queue, unfinished. ARGV: name, json, new phase, expected phases...
_SAVE = """
local old = redis.call('GET', KEYS[1])
if not old then return 0 end
local phase = cjson.decode(old)['phase']
local ok = false
for i = 4, #ARGV do if ARGV[i] == phase then ok = true end end
if not ok then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
local seq = cjson.decode(old)['seq']
if ARGV[3] == 'queued' or ARGV[3] == 'submitting' then
  redis.call('ZADD', KEYS[2], seq, ARGV[1])
else
  redis.call('ZREM', KEYS[2], ARGV[1])
end
if ARGV[3] == 'done' then redis.call('ZREM', KEYS[3], ARGV[1]) end
return 1
"""

# KEYS: lease. ARGV: owner, milliseconds.
_LEASE = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""

_FAILURES = (RedisError, OSError, TimeoutError)
#: Records read per round trip when paging through every operation.
_CHUNK = 500


class RedisStore:
    def __init__(
        self, client: RedisClient, prefix: str = PREFIX, command_seconds: float = 2.0
    ) -> None:
        self._redis = client
        # Every script touches several of these keys: in a Redis Cluster they must share a
        # hash slot, so the keys carry one hash tag (a prefix with its own tag keeps it).
        self._p = prefix if "{" in prefix else f"{prefix}{{jobs}}:"
        self._seconds = command_seconds
        self._create = client.register_script(_CREATE)
        self._save = client.register_script(_SAVE)
        self._lease = client.register_script(_LEASE)
        self._release = client.register_script(_RELEASE)

    @classmethod
    async def open(
        cls, cfg: RedisConfig, command_seconds: float, prefix: str = PREFIX
    ) -> RedisStore:
        """Through the one Redis module (`gateway/redis.py`): the same URL forms, TLS,
        credentials, Sentinel and Cluster as the cache tier and the limits."""
        store = cls(connect(cfg), prefix, command_seconds)
        await store.warn_if_volatile()
        return store

    async def warn_if_volatile(self) -> None:
        """The queue's guarantees need Redis to keep acknowledged writes across restarts."""
        try:
            async with asyncio.timeout(self._seconds):
                info: dict[str, Any] = await self._redis.info("persistence")
        except _FAILURES:
            log.warning("redis is not answering: job operations fail until it does")
            return
        # A cluster client answers per node ({node: section}); every master must keep AOF.
        sections = [v for v in info.values() if isinstance(v, dict)] or [info]
        if not all(int(section.get("aof_enabled", 0)) for section in sections):
            log.warning(
                "redis persistence is off (appendonly no): a Redis restart loses queued jobs "
                "and operations; set appendonly yes (README, Batch jobs as long-running "
                "operations)"
            )

    def _k(self, *parts: str) -> str:
        return self._p + ":".join(parts)

    async def _run(self, work: Any) -> Any:
        try:
            async with asyncio.timeout(self._seconds):
                return await work
        except _FAILURES:
            raise errors.store_unavailable() from None

    async def create(self, record: JobRecord) -> tuple[JobRecord, bool]:
        record.seq = 0  # the script assigns it
        keys = [
            self._k("op", record.name),
            self._k("rid", record.request_id) if record.request_id else self._k("no-rid"),
            self._k("all"),
            self._k("queue", record.backend),
            self._k("unfinished"),
            self._k("seq"),
        ]
        made, text = await self._run(
            self._create(
                keys=keys,
                args=[
                    record.name,
                    record.to_json(),
                    self._k("op", ""),
                    int(bool(record.request_id)),
                ],
            )
        )
        return JobRecord.from_json(text), bool(made)

    async def get(self, name: str) -> JobRecord | None:
        text = await self._run(self._redis.get(self._k("op", name)))
        return None if text is None else JobRecord.from_json(text)

    async def save(self, record: JobRecord, expect: Iterable[Phase]) -> bool:
        keys = [self._k("op", record.name), self._k("queue", record.backend), self._k("unfinished")]
        args = [record.name, record.to_json(), record.phase.value, *(p.value for p in expect)]
        return bool(await self._run(self._save(keys=keys, args=args)))

    async def _records(self, index: str) -> list[JobRecord]:
        names = await self._run(self._redis.zrange(self._k(index), 0, -1))
        if not names:
            return []
        keys = [self._k("op", n.decode()) for n in names]
        texts = await self._run(self._redis.mget(keys))
        return [JobRecord.from_json(t) for t in texts if t is not None]

    async def page(
        self,
        after: int,
        limit: int,
        backend: str | None = None,
        state: int | None = None,
        tenant: str | None = None,
    ) -> list[JobRecord]:
        out: list[JobRecord] = []
        while len(out) < limit:
            names = await self._run(
                self._redis.zrangebyscore(
                    self._k("all"), f"({after}", "+inf", start=0, num=max(limit, _CHUNK)
                )
            )
            if not names:
                break
            texts = await self._run(self._redis.mget([self._k("op", n.decode()) for n in names]))
            for text in texts:
                if text is None:
                    continue  # deleted meanwhile
                record = JobRecord.from_json(text)
                after = record.seq
                if (
                    (backend is None or record.backend == backend)
                    and (state is None or record.state == state)
                    and (tenant is None or record.tenant == tenant)
                ):
                    out.append(record)
            if len(names) < max(limit, _CHUNK):
                break
        return out[:limit]

    async def queued(self, backend: str) -> list[JobRecord]:
        records = await self._records(f"queue:{backend}")
        return [r for r in records if r.phase in IN_QUEUE]

    async def unfinished(self) -> list[JobRecord]:
        return [r for r in await self._records("unfinished") if not r.done]

    async def delete(self, name: str) -> None:
        record = await self.get(name)
        if record is None:
            return
        pipe = self._redis.pipeline(transaction=True)
        pipe.delete(self._k("op", name))
        if record.request_id:
            pipe.delete(self._k("rid", record.request_id))
        for index in ("all", "unfinished", f"queue:{record.backend}"):
            pipe.zrem(self._k(index), name)
        await self._run(pipe.execute())

    async def purge(self, ended_before: float) -> int:
        gone, after = 0, 0
        while True:
            batch = await self.page(after, _CHUNK)
            if not batch:
                return gone
            after = batch[-1].seq
            for record in batch:
                if record.done and (record.end_time or 0) < ended_before:
                    await self.delete(record.name)
                    gone += 1

    async def lease(self, key: str, owner: str, seconds: float) -> bool:
        ms = max(int(seconds * 1000), 1)
        return bool(await self._run(self._lease(keys=[self._k("lease", key)], args=[owner, ms])))

    async def release(self, key: str, owner: str) -> None:
        await self._run(self._release(keys=[self._k("lease", key)], args=[owner]))

    async def aclose(self) -> None:
        await asyncio.shield(self._redis.aclose())
