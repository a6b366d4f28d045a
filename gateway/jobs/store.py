"""Where operations and the queue live: the store interface and its embedded (SQLite) form.

Both stores make the same promises (the Redis one, gateway/jobs/redis_store.py, to every
replica on one Redis): an accepted submit is durable before the RPC returns; a request_id
names at most one operation; a phase changes only from the phase the writer read
(compare-and-set), so a cancel and a dispatcher never both win; and a lease lets exactly one
process at a time submit a backend's queue.

SQLite runs in WAL mode with `synchronous=NORMAL`: a committed write survives the process
being killed (SIGKILL), which is the failure the queue guarantees are about; a power loss may
lose the last transactions (use `synchronous=FULL` semantics through Redis AOF `always`, or
accept it). Several worker processes may share one file: every write is one transaction.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from gateway.jobs.record import IN_QUEUE, JobRecord, Phase


class JobStore(Protocol):
    async def create(self, record: JobRecord) -> tuple[JobRecord, bool]:
        """Insert `record` (its seq assigned here) unless its request_id is taken; then the
        existing operation and False."""
        ...

    async def get(self, name: str) -> JobRecord | None: ...

    async def save(self, record: JobRecord, expect: Iterable[Phase]) -> bool:
        """Write `record` if the stored phase is one of `expect`; False otherwise."""
        ...

    async def page(
        self,
        after: int,
        limit: int,
        backend: str | None = None,
        state: int | None = None,
        tenant: str | None = None,
    ) -> list[JobRecord]:
        """Up to `limit` operations with seq > `after` (of one backend, in one state), in
        submit order."""
        ...

    async def queued(self, backend: str) -> list[JobRecord]:
        """The backend's queue (QUEUED and SUBMITTING), in submit order."""
        ...

    async def unfinished(self) -> list[JobRecord]:
        """Every operation not done yet."""
        ...

    async def delete(self, name: str) -> None: ...

    async def purge(self, ended_before: float) -> int:
        """Forget operations that ended before this time; how many."""
        ...

    async def lease(self, key: str, owner: str, seconds: float) -> bool:
        """Take or renew the lease `key` for `owner`; False while another holds it."""
        ...

    async def release(self, key: str, owner: str) -> None: ...

    async def aclose(self) -> None: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS operations (
    name TEXT PRIMARY KEY,
    request_id TEXT UNIQUE,
    backend TEXT NOT NULL,
    phase TEXT NOT NULL,
    seq INTEGER NOT NULL,
    end_time REAL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS operations_by_phase ON operations (phase, backend, seq);
CREATE TABLE IF NOT EXISTS leases (key TEXT PRIMARY KEY, owner TEXT NOT NULL, expires REAL);
"""


class SqliteStore:
    """The embedded store: one SQLite file in `[jobs] state_dir`.

    Calls are synchronous and short (an indexed row or two; WAL commits without fsync), so
    they run on the event loop rather than paying a thread hop each."""

    FILE = "jobs.sqlite3"

    def __init__(self, state_dir: str | Path) -> None:
        path = Path(state_dir)
        path.mkdir(parents=True, exist_ok=True)
        self.path = path / self.FILE
        self._db = sqlite3.connect(self.path, isolation_level=None, timeout=5.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    async def create(self, record: JobRecord) -> tuple[JobRecord, bool]:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            if record.request_id:
                row = db.execute(
                    "SELECT data FROM operations WHERE request_id = ?", (record.request_id,)
                ).fetchone()
                if row is not None:
                    db.execute("COMMIT")
                    return JobRecord.from_json(row[0]), False
            (top,) = db.execute("SELECT COALESCE(MAX(seq), 0) FROM operations").fetchone()
            record.seq = int(top) + 1
            db.execute(
                "INSERT INTO operations VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    record.name,
                    record.request_id or None,
                    record.backend,
                    record.phase.value,
                    record.seq,
                    record.end_time,
                    record.to_json(),
                ),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return record, True

    async def get(self, name: str) -> JobRecord | None:
        row = self._db.execute("SELECT data FROM operations WHERE name = ?", (name,)).fetchone()
        return None if row is None else JobRecord.from_json(row[0])

    async def save(self, record: JobRecord, expect: Iterable[Phase]) -> bool:
        phases = [p.value for p in expect]
        marks = ",".join("?" * len(phases))
        cursor = self._db.execute(
            f"UPDATE operations SET phase = ?, end_time = ?, data = ? "
            f"WHERE name = ? AND phase IN ({marks})",
            (record.phase.value, record.end_time, record.to_json(), record.name, *phases),
        )
        return cursor.rowcount == 1

    async def page(
        self,
        after: int,
        limit: int,
        backend: str | None = None,
        state: int | None = None,
        tenant: str | None = None,
    ) -> list[JobRecord]:
        rows = self._db.execute(
            "SELECT data FROM operations WHERE seq > ? AND (? IS NULL OR backend = ?) "
            "AND (? IS NULL OR json_extract(data, '$.state') = ?) "
            "AND (? IS NULL OR COALESCE(json_extract(data, '$.tenant'), '') = ?) "
            "ORDER BY seq LIMIT ?",
            (after, backend, backend, state, state, tenant, tenant, limit),
        ).fetchall()
        return [JobRecord.from_json(r[0]) for r in rows]

    async def queued(self, backend: str) -> list[JobRecord]:
        rows = self._db.execute(
            "SELECT data FROM operations WHERE backend = ? AND phase IN (?, ?) ORDER BY seq",
            (backend, *(p.value for p in IN_QUEUE)),
        ).fetchall()
        return [JobRecord.from_json(r[0]) for r in rows]

    async def unfinished(self) -> list[JobRecord]:
        rows = self._db.execute(
            "SELECT data FROM operations WHERE phase != ? ORDER BY seq", (Phase.DONE.value,)
        ).fetchall()
        return [JobRecord.from_json(r[0]) for r in rows]

    async def delete(self, name: str) -> None:
        self._db.execute("DELETE FROM operations WHERE name = ?", (name,))

    async def purge(self, ended_before: float) -> int:
        cursor = self._db.execute(
            "DELETE FROM operations WHERE phase = ? AND end_time < ?",
            (Phase.DONE.value, ended_before),
        )
        return cursor.rowcount

    async def lease(self, key: str, owner: str, seconds: float) -> bool:
        now = time.time()
        cursor = self._db.execute(
            "INSERT INTO leases VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET "
            "owner = excluded.owner, expires = excluded.expires "
            "WHERE leases.owner = excluded.owner OR leases.expires < ?",
            (key, owner, now + seconds, now),
        )
        return cursor.rowcount == 1

    async def release(self, key: str, owner: str) -> None:
        self._db.execute("DELETE FROM leases WHERE key = ? AND owner = ?", (key, owner))

    async def aclose(self) -> None:
        self._db.close()
