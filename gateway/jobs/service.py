"""The job service: submit (idempotent), the durable queue, one poller per job, cancel,
watch and retention. The gRPC servicers (gateway/jobs/servicers.py) are thin over it.

Lifecycle of one operation (`Phase`): QUEUED (persisted before the submit RPC returns) ->
SUBMITTING (taken by the one dispatcher holding the backend's lease; the create goes out with
the job's upstream key, so a crash here resumes without a second job) -> SUBMITTED (the job
exists upstream; pollers follow it) -> DONE (result or error). Cancel moves QUEUED to DONE.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from enum import Enum
from typing import Any

import grpc
from google.longrunning import operations_pb2
from google.protobuf import timestamp_pb2
from google.protobuf.message import Message
from mlgw.jobs.v1 import jobs_pb2

from gateway import metrics
from gateway.errors import FieldViolation, GatewayError, InvalidRequest, UpstreamError
from gateway.jobs import errors
from gateway.jobs.backends import BACKENDS, PERSONALIZE, Backend, epoch, prepared, same_parameters
from gateway.jobs.calls import JobCalls
from gateway.jobs.record import IN_QUEUE, JobRecord, Phase
from gateway.jobs.states import SUCCESSFUL, TERMINAL, normalized, occupies_slot, state_name
from gateway.jobs.store import JobStore
from gateway.jobs_config import JobsConfig
from gateway.logs import LogBudget
from gateway.upstream.mapping import from_aws, to_aws

log = logging.getLogger("gateway.jobs")
S = jobs_pb2.JobState

#: The backend says its concurrency quota is full: the job stays queued.
_QUOTA_CODES = frozenset({"LimitExceededException", "ServiceQuotaExceededException"})
_MAX_REQUEST_ID = 128
#: How often finished operations past their retention are forgotten.
_PURGE_INTERVAL = 60.0
#: A cancel that keeps losing the race with the dispatcher gives up after this many reads.
_CANCEL_ATTEMPTS = 3


class NameTaken(UpstreamError):
    """A Personalize job of the requested name exists with other parameters: the create
    would fail, and adopting it would be wrong."""

    def __init__(self, service: str, name: str) -> None:
        super().__init__(
            f"a batch inference job named {name!r} already exists with other parameters",
            code=grpc.StatusCode.ALREADY_EXISTS,
            reason="RESOURCE_ALREADY_EXISTS",
            service=service,
            aws_code="ResourceAlreadyExistsException",
        )


class Outcome(Enum):
    CREATED = "created"
    FULL = "full"
    RETRY = "retry"
    FAILED = "failed"


def fingerprint(backend: str, request: Message) -> str:
    data = backend.encode() + b"\0" + request.SerializeToString(deterministic=True)
    return hashlib.sha256(data).hexdigest()


class JobService:
    def __init__(
        self,
        cfg: JobsConfig,
        store: JobStore,
        calls: JobCalls,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cfg = cfg
        self.store = store
        self.calls = calls
        self.clock = clock
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._pollers: dict[str, asyncio.Task[None]] = {}
        self._pokes: dict[str, asyncio.Event] = {}
        self._changes: dict[str, asyncio.Event] = {}
        self._wake = {name: asyncio.Event() for name in BACKENDS}
        self._tasks: list[asyncio.Task[None]] = []

    # -- start and stop ------------------------------------------------------------------

    def start(self) -> None:
        for name in BACKENDS:
            self._spawn(self._dispatch_loop(BACKENDS[name]))
        self._spawn(self._sweep_loop())

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        self._tasks.append(asyncio.create_task(work))

    async def aclose(self) -> None:
        tasks = [*self._tasks, *self._pollers.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for name in BACKENDS:
            with contextlib.suppress(Exception):
                await self.store.release(_lease(name), self.owner)
        await self.store.aclose()

    # -- submit --------------------------------------------------------------------------

    async def submit(
        self, backend: Backend, request: Message, request_id: str, tenant: str = ""
    ) -> JobRecord:
        if len(request_id) > _MAX_REQUEST_ID or not request_id.isprintable():
            raise errors.invalid("request_id", f"at most {_MAX_REQUEST_ID} printable characters")
        try:
            await self.calls.validate(backend.create, request)
        except InvalidRequest as exc:
            raise InvalidRequest(
                FieldViolation(f"request.{v.field}", v.description) for v in exc.violations
            ) from None
        digest = fingerprint(backend.name, request)
        name = f"operations/{uuid.uuid4().hex}"
        sent = prepared(backend, request, name)
        await self._check_key(backend, sent, digest)
        now = self.clock()
        record = JobRecord(
            name=name,
            backend=backend.name,
            request_id=f"{tenant}/{request_id}" if tenant and request_id else request_id,
            fingerprint=digest,
            request=sent.SerializeToString(deterministic=True),
            seq=0,
            submit_time=now,
            last_change_time=now,
            tenant=tenant,
        )
        stored, created = await self.store.create(record)
        if not created:  # AIP-155: a replay returns the operation of the first submit
            return self._same_request(stored, request_id, digest)
        metrics.JOBS_SUBMITTED.labels(backend.name).inc()
        self._wake[backend.name].set()
        return stored

    @staticmethod
    def _same_request(record: JobRecord, request_id: str, digest: str) -> JobRecord:
        if record.fingerprint != digest:
            raise errors.request_id_reused(request_id, record.name)
        return record

    async def _check_key(self, backend: Backend, sent: Message, digest: str) -> None:
        """An unfinished operation with the same upstream key and another request would be
        merged with this one by the backend (Bedrock's token, Amazon ML's id)."""
        key = to_aws(sent).get(backend.key_member)
        if not key:
            return
        for other in await self.store.unfinished():
            if other.backend != backend.name or other.fingerprint == digest:
                continue
            theirs = to_aws(backend.create_request.FromString(other.request))
            if theirs.get(backend.key_member) == key:
                raise errors.key_in_use(backend.key_member, str(key), other.name)

    # -- reading -------------------------------------------------------------------------

    async def get(self, name: str, tenant: str | None = None) -> JobRecord:
        """The record; another tenant's (`tenant` not None) is not found, as if it did not
        exist: its existence is not revealed."""
        record = await self.store.get(name)
        if record is None or (tenant is not None and record.tenant != tenant):
            raise errors.not_found(name)
        return record

    async def operation(self, record: JobRecord) -> operations_pb2.Operation:
        position = None
        if record.phase in IN_QUEUE:
            queue = await self.store.queued(record.backend)
            names = [r.name for r in queue]
            position = names.index(record.name) + 1 if record.name in names else None
        return to_operation(record, position)

    async def watch(self, name: str) -> AsyncIterator[operations_pb2.Operation]:
        """The operation now, then at each change, ending after it is done. Waits read the
        store (local notifications, else every dispatch interval for other replicas'
        writes); only the job's one poller asks the backend."""
        last = b""
        while True:
            # Subscribed before reading, so a change between the two is not missed.
            event = self._changes.setdefault(name, asyncio.Event())
            record = await self.get(name)
            if record.phase is Phase.SUBMITTED:
                self._ensure_poller(record)
            current = await self.operation(record)
            encoded = current.SerializeToString(deterministic=True)
            if encoded != last:
                last = encoded
                yield current
            if record.done:
                self._changes.pop(name, None)  # nothing will change any more
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), self.cfg.dispatch_interval_seconds)

    def _changed(self, name: str) -> None:
        event = self._changes.pop(name, None)
        if event is not None:
            event.set()

    # -- cancel and delete ---------------------------------------------------------------

    async def cancel(self, name: str) -> JobRecord:
        record = await self._unqueued(name)
        if record.done:
            return record
        backend = BACKENDS[record.backend]
        if record.phase is not Phase.SUBMITTED:
            raise errors.not_cancellable(
                name, "the job is being created upstream right now; retry the cancel shortly"
            )
        if backend.stop is None:
            raise errors.not_cancellable(
                name,
                f"{backend.label} cannot stop a job once it is created upstream "
                f"({backend.create} has no stop operation); it runs to its end",
            )
        return await self._stop(record, backend)

    async def _unqueued(self, name: str) -> JobRecord:
        """Cancel the job if it is queued; else the record once any create in flight has an
        outcome (a dispatcher may take the job, or put it back, while we look)."""
        for _ in range(_CANCEL_ATTEMPTS):
            record = await self.get(name)
            if record.phase is Phase.QUEUED:
                ended = self._ended(record, S.JOB_STATE_CANCELLED, "cancelled while queued")
                if await self.store.save(ended, [Phase.QUEUED]):
                    self._changed(name)
                    return ended
            elif record.phase is Phase.SUBMITTING:
                record = await self._settled(record)
                if record.phase is not Phase.QUEUED:
                    return record
            else:
                return record
        return record

    async def _settled(self, record: JobRecord) -> JobRecord:
        """The record once its create has an outcome (bounded by one upstream call's time)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.cfg.upstream_timeout_seconds):
                while record.phase is Phase.SUBMITTING:
                    event = self._changes.setdefault(record.name, asyncio.Event())
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(event.wait(), self.cfg.dispatch_interval_seconds)
                    record = await self.get(record.name)
        return record

    async def _stop(self, record: JobRecord, backend: Backend) -> JobRecord:
        assert backend.stop is not None
        try:
            await self.calls(backend.stop, backend.stop_for(record.job_id))
        except UpstreamError as exc:
            if exc.aws_code != "ConflictException":  # already stopping or finished: fine
                raise
        self._poke(record.name)
        return record

    async def delete(self, name: str) -> None:
        record = await self.get(name)
        if not record.done:
            raise errors.not_done(name)
        await self.store.delete(name)

    # -- the queue -----------------------------------------------------------------------

    async def _dispatch_loop(self, backend: Backend) -> None:
        wake = self._wake[backend.name]
        while True:
            wake.clear()
            try:
                await self._dispatch_round(backend)
            except Exception as exc:
                _log_loop_failure("dispatch round failed", exc, backend=backend.name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), self.cfg.dispatch_interval_seconds)

    async def _dispatch_round(self, backend: Backend) -> None:
        queue = await self.store.queued(backend.name)
        metrics.JOBS_QUEUED.labels(backend.name).set(len(queue))
        if not queue or not await self.store.lease(
            _lease(backend.name), self.owner, self.cfg.lease_seconds
        ):
            return
        limit = self.cfg.limit(backend.name)
        free = limit - await self._active(backend) if limit else len(queue)
        for record in queue:
            # Renewed before each create: a round slower than the lease must not overlap
            # another process's round (the counts would each allow the same free slots).
            if not await self.store.lease(_lease(backend.name), self.owner, self.cfg.lease_seconds):
                return
            if record.phase is Phase.QUEUED:
                if free <= 0:
                    break
                record.phase = Phase.SUBMITTING
                if not await self.store.save(record, [Phase.QUEUED]):
                    continue  # cancelled meanwhile
            # A SUBMITTING record (resumed after a crash) may already hold a slot upstream:
            # it is retried whatever the count says, and the create cannot double it.
            outcome = await self._submit(backend, record)
            if outcome is Outcome.CREATED:
                free -= 1
            elif outcome is not Outcome.FAILED:
                if outcome is Outcome.FULL:
                    record.phase = Phase.QUEUED  # cancellable again while it waits
                    await self.store.save(record, [Phase.SUBMITTING])
                break

    async def _active(self, backend: Backend) -> int:
        """Jobs holding a slot of the backend's quota, as the backend lists them (jobs
        others started count), and never fewer than the gateway knows it started."""
        listed, token = 0, None
        while True:
            page = to_aws(await self.calls(backend.list, backend.list_page(token)))
            for job in page.get(backend.list_member, []):
                if occupies_slot(backend.name, str(job.get(backend.status_member, ""))):
                    listed += 1
            token = page.get(backend.token_member)
            if not token:
                break
        ours = len(
            [
                r
                for r in await self.store.unfinished()
                if r.backend == backend.name and r.phase is Phase.SUBMITTED
            ]
        )
        return max(listed, ours)

    async def _submit(self, backend: Backend, record: JobRecord) -> Outcome:
        request = backend.create_request.FromString(record.request)
        try:
            job_id = await self._adopted(backend, request) if backend is PERSONALIZE else None
            if job_id is None:
                created = to_aws(await self.calls(backend.create, request))
                job_id = str(created[backend.create_id_member])
        except NameTaken as exc:
            await self._fail(record, exc, [Phase.SUBMITTING])
            return Outcome.FAILED
        except UpstreamError as exc:
            if exc.aws_code in _QUOTA_CODES:
                return Outcome.FULL
            if exc.aws_code == "ResourceAlreadyExistsException":
                return await self._adopt_or_fail(backend, record, request, exc)
            if exc.retryable or exc.throttled:
                return Outcome.RETRY
            await self._fail(record, exc, [Phase.SUBMITTING])
            return Outcome.FAILED
        except GatewayError:  # shed, circuit open, deadline: the upstream is in trouble
            return Outcome.RETRY
        await self._created(record, job_id)
        return Outcome.CREATED

    async def _adopted(self, backend: Backend, request: Message) -> str | None:
        """Personalize's create has no token: a job of this name with the same parameters
        (created by this operation before a crash) is adopted; another is a conflict."""
        params = to_aws(request)
        page_token = None
        while True:
            query = {"solutionVersionArn": params["solutionVersionArn"]}
            if page_token:
                query[backend.token_member] = page_token
            listing = from_aws(backend.list_request, query)
            page = to_aws(await self.calls(backend.list, listing))
            for job in page.get(backend.list_member, []):
                if job.get("jobName") == params["jobName"]:
                    job_id = str(job[backend.id_member])
                    return await self._same_or_conflict(backend, params, job_id)
            page_token = page.get(backend.token_member)
            if not page_token:
                return None

    async def _same_or_conflict(self, backend: Backend, params: dict[str, Any], job_id: str) -> str:
        answer = await self.calls(backend.describe, backend.describe_for(job_id))
        described = backend.view(to_aws(answer))
        if same_parameters(params, described):
            log.info("adopted an existing job", extra={"backend": backend.name})
            return job_id
        raise NameTaken(backend.name, str(params["jobName"]))

    async def _adopt_or_fail(
        self, backend: Backend, record: JobRecord, request: Message, exc: UpstreamError
    ) -> Outcome:
        try:
            job_id = await self._adopted(backend, request)
        except NameTaken as taken:
            exc, job_id = taken, None
        except GatewayError:
            return Outcome.RETRY
        if job_id is None:
            await self._fail(record, exc, [Phase.SUBMITTING])
            return Outcome.FAILED
        await self._created(record, job_id)
        return Outcome.CREATED

    async def _created(self, record: JobRecord, job_id: str) -> None:
        record.job_id = job_id
        record.phase = Phase.SUBMITTED
        record.state = S.JOB_STATE_VALIDATING
        record.last_change_time = self.clock()
        if await self.store.save(record, [Phase.SUBMITTING]):
            metrics.JOBS_CREATED.labels(record.backend).inc()
            self._changed(record.name)
            self._ensure_poller(record)

    async def _fail(self, record: JobRecord, exc: GatewayError, expect: list[Phase]) -> None:
        record.phase = Phase.DONE
        record.state = S.JOB_STATE_FAILED
        record.message = exc.caller_message
        record.error = exc.to_status().SerializeToString()
        record.end_time = record.last_change_time = self.clock()
        if await self.store.save(record, expect):
            metrics.JOBS_ENDED.labels(record.backend, "failed").inc()
            self._changed(record.name)

    def _ended(self, record: JobRecord, state: int, message: str) -> JobRecord:
        record.phase = Phase.DONE
        record.state = state
        record.message = message
        record.end_time = record.last_change_time = self.clock()
        record.error = errors.job_error(
            state,
            message,
            backend=record.backend,
            backend_status=record.backend_status,
            job_id=record.job_id,
        ).SerializeToString()
        return record

    # -- pollers -------------------------------------------------------------------------

    def _ensure_poller(self, record: JobRecord) -> None:
        name = record.name
        if name in self._pollers or record.phase is not Phase.SUBMITTED:
            return
        task = asyncio.create_task(self._poll(name))
        self._pollers[name] = task
        metrics.JOB_POLLERS.inc()

        def forget(_: asyncio.Task[None]) -> None:
            self._pollers.pop(name, None)
            metrics.JOB_POLLERS.dec()

        task.add_done_callback(forget)

    def _poke(self, name: str) -> None:
        event = self._pokes.get(name)
        if event is not None:
            event.set()

    async def _poll(self, name: str) -> None:
        """The poller of a job in this process: describe, back off, until terminal. Of the
        processes sharing a store, the one holding the job's poll lease asks the backend; the
        others only re-read the store (and take over if the holder stops renewing)."""
        cfg = self.cfg
        interval = cfg.poll_initial_seconds
        poke = self._pokes.setdefault(name, asyncio.Event())
        lease, hold = f"poll:{name}", cfg.poll_max_seconds + cfg.lease_seconds
        try:
            while True:
                try:
                    record = await self.store.get(name)
                    if record is None or record.phase is not Phase.SUBMITTED:
                        return
                    if await self.store.lease(lease, self.owner, hold):
                        if await self._poll_once(record):
                            return
                    else:
                        self._changed(name)  # another process polls: wake local watchers
                except GatewayError as exc:  # the store is not answering: try again later
                    _log_loop_failure("job poll failed", exc, operation=name)
                poke.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(poke.wait(), interval)
                interval = min(interval * cfg.poll_multiplier, cfg.poll_max_seconds)
        finally:
            self._pokes.pop(name, None)
            with contextlib.suppress(Exception):
                await self.store.release(lease, self.owner)

    async def _poll_once(self, record: JobRecord) -> bool:
        backend = BACKENDS[record.backend]
        metrics.JOB_POLLS.labels(backend.name).inc()
        try:
            answer = await self.calls(backend.describe, backend.describe_for(record.job_id))
        except UpstreamError as exc:
            if exc.aws_code == "ResourceNotFoundException":  # deleted upstream by someone
                await self._fail(record, exc, [Phase.SUBMITTED])
                return True
            return False
        except GatewayError:
            return False  # shed or circuit open: the next poll tries again
        return await self._observe(record, backend, answer)

    async def _observe(self, record: JobRecord, backend: Backend, answer: Message) -> bool:
        """Record what a describe says; True once the job is terminal."""
        view = backend.view(to_aws(answer))
        status = str(view.get(backend.status_member, ""))
        state = normalized(backend.name, status)
        before = (record.state, record.backend_status, record.counts, record.message)
        now = self.clock()
        if state != record.state or status != record.backend_status:
            record.last_change_time = epoch(view.get(backend.changed_member)) or now
        record.state, record.backend_status = state, status
        record.message = str(view.get(backend.message_member) or "")
        record.counts = {
            key: int(view[member]) for key, member in backend.counts if view.get(member) is not None
        }
        if backend.start_member and view.get(backend.start_member) is not None:
            record.start_time = epoch(view[backend.start_member])
        elif state == S.JOB_STATE_RUNNING and record.start_time is None:
            record.start_time = now  # the backend has no start time: when we first saw it
        record.response = answer.SerializeToString(deterministic=True)
        terminal = state in TERMINAL
        if terminal:
            record.phase = Phase.DONE
            end = epoch(view.get(backend.end_member)) if backend.end_member else None
            record.end_time = end or record.last_change_time or now
            if state not in SUCCESSFUL:
                record.error = errors.job_error(
                    state,
                    record.message,
                    backend=backend.name,
                    backend_status=status,
                    job_id=record.job_id,
                ).SerializeToString()
        elif before == (state, status, record.counts, record.message):
            return False  # nothing new: no write
        if await self.store.save(record, [Phase.SUBMITTED]) and terminal:
            metrics.JOBS_ENDED.labels(backend.name, _ending(state)).inc()
            self._wake[backend.name].set()  # a slot is free
        self._changed(record.name)
        return terminal

    # -- sweeping ------------------------------------------------------------------------

    async def _sweep_loop(self) -> None:
        """Follow every unfinished job (also those another replica or a previous run of
        this process created), and forget operations past their retention."""
        purged = 0.0
        while True:
            try:
                for record in await self.store.unfinished():
                    if record.phase is Phase.SUBMITTED:
                        self._ensure_poller(record)
                now = self.clock()
                if now - purged >= min(_PURGE_INTERVAL, self.cfg.retention_seconds):  # a write
                    purged = now
                    await self.store.purge(now - self.cfg.retention_seconds)
            except Exception as exc:
                _log_loop_failure("job sweep failed", exc)
            await asyncio.sleep(self.cfg.dispatch_interval_seconds)


#: The background loops retry every interval; a store that stays down is said a few times a
#: minute, not every second by every loop.
_LOOP_LOG = LogBudget(rate=0.1, burst=3.0)


def _log_loop_failure(what: str, exc: Exception, **extra: str) -> None:
    suppressed = _LOOP_LOG.take()
    if suppressed is None:
        return
    extra["suppressed"] = str(suppressed)
    if isinstance(exc, GatewayError):  # expected kinds (store down): no traceback
        log.warning(what, extra={**extra, "reason": exc.reason})
    else:
        log.error(what, exc_info=exc, extra=extra)


def _lease(backend: str) -> str:
    return f"dispatch:{backend}"


def _ending(state: int) -> str:
    return state_name(state)


def _timestamp(seconds: float | None) -> timestamp_pb2.Timestamp | None:
    if seconds is None:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts


def to_operation(record: JobRecord, queue_position: int | None) -> operations_pb2.Operation:
    """The google.longrunning.Operation of a record (metadata: JobMetadata)."""
    backend = BACKENDS[record.backend]
    meta = jobs_pb2.JobMetadata(
        backend=backend.enum,  # type: ignore[arg-type]
        state=record.state,  # type: ignore[arg-type]
        backend_status=record.backend_status,
        job_id=record.job_id,
        request_id=record.caller_request_id,
        message=record.message,
    )
    for key, count in record.counts.items():
        setattr(meta, key, count)
    if queue_position is not None:
        meta.queue_position = queue_position
    for field, value in (
        ("submit_time", record.submit_time),
        ("start_time", record.start_time),
        ("end_time", record.end_time),
        ("last_change_time", record.last_change_time),
    ):
        stamp = _timestamp(value)
        if stamp is not None:
            getattr(meta, field).CopyFrom(stamp)
    operation = operations_pb2.Operation(name=record.name, done=record.done)
    operation.metadata.Pack(meta)
    if record.done:
        if record.error:
            operation.error.ParseFromString(record.error)
        else:
            operation.response.Pack(backend.result.FromString(record.response))
    return operation
