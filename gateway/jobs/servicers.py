"""The gRPC face of the job service: `google.longrunning.Operations` and
`mlgw.jobs.v1.JobsService`.

Errors become statuses here the way the edge (gateway/services.py) does it: a GatewayError's
code, scrubbed message and google.rpc details (exactly one ErrorInfo); anything else is
INTERNAL with its traceback logged once.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc
from google.longrunning import operations_pb2
from google.protobuf import empty_pb2
from google.protobuf.message import DecodeError, Message
from mlgw.jobs.v1 import jobs_pb2, jobs_pb2_grpc

from gateway import metrics
from gateway.errors import GatewayError, InternalError, MalformedRequest
from gateway.jobs import errors
from gateway.jobs.backends import BACKENDS, BEDROCK, MACHINE_LEARNING, PERSONALIZE, Backend
from gateway.jobs.record import JobRecord
from gateway.jobs.service import JobService
from gateway.jobs.states import state_name
from gateway.security import audit
from gateway.security.guard import Guard, admit, first_resource

log = logging.getLogger("gateway.jobs")

Context = grpc.aio.ServicerContext[Any, Any]
R = TypeVar("R")

#: Kept back from the caller's deadline so a WaitOperation answers before the caller gives up.
_WAIT_MARGIN = 0.05


async def _answer(context: Context, method: str, work: Awaitable[R]) -> R:
    """Run one RPC's work, counted like every other RPC (mlgw_requests by method and code)."""
    recorded = metrics.request_metrics(method)
    start = time.perf_counter()
    recorded.in_flight.inc()
    try:
        answer = await work
    except asyncio.CancelledError:
        recorded.code(grpc.StatusCode.CANCELLED).inc()
        raise
    except Exception as exc:
        await _abort(context, method, exc)
        raise  # abort() raises; this tells readers and mypy so
    finally:
        recorded.in_flight.dec()
        recorded.latency.observe(time.perf_counter() - start)
    recorded.code(grpc.StatusCode.OK).inc()
    return answer


async def _abort(context: Context, method: str, exc: Exception) -> None:
    error = exc if isinstance(exc, GatewayError) else InternalError(exc)
    metrics.request_metrics(method).code(error.code).inc()
    if isinstance(error, InternalError):
        log.error("unexpected failure", exc_info=exc, extra={"method": method})
    else:
        extra = {"method": method, "code": error.code.name, "reason": error.reason}
        log.debug("rpc failed", extra=extra)
    await context.abort(error.code, error.caller_message, error.trailing_metadata())


OPERATIONS_SERVICE = "google.longrunning.Operations"
JOBS_SERVICE = jobs_pb2.DESCRIPTOR.services_by_name["JobsService"].full_name


async def _tenant(guard: Guard | None, context: Context, rpc: str) -> str | None:
    """The caller's tenant (None: anonymous, who sees every operation)."""
    caller = await admit(guard, context, rpc)
    return None if caller is None else caller.tenant


async def _audited(caller: str | None, rpc: str, resource: str, work: Awaitable[R]) -> R:
    """A control-plane call's work, with its audit line (outcome: OK or the status code)."""
    try:
        answer = await work
    except GatewayError as exc:
        audit.record(caller, rpc, resource, exc.code.name)
        raise
    audit.record(caller, rpc, resource, "OK")
    return answer


class OperationsServicer:
    """google.longrunning.Operations (its generated base class is untyped, so none).

    Each caller sees only its tenant's operations: another tenant's is NOT_FOUND, exactly
    as one that does not exist, for every method (README "Security")."""

    def __init__(self, jobs: JobService, guard: Guard | None = None) -> None:
        self._jobs = jobs
        self._guard = guard

    async def GetOperation(
        self, request: operations_pb2.GetOperationRequest, context: Context
    ) -> operations_pb2.Operation:
        return await _answer(context, "GetOperation", self._get(request.name, context, "Get"))

    async def _get(self, name: str, context: Context, method: str) -> operations_pb2.Operation:
        tenant = await _tenant(self._guard, context, f"{OPERATIONS_SERVICE}/{method}Operation")
        return await self._jobs.operation(await self._jobs.get(name, tenant))

    async def ListOperations(
        self, request: operations_pb2.ListOperationsRequest, context: Context
    ) -> operations_pb2.ListOperationsResponse:
        return await _answer(context, "ListOperations", self._list(request, context))

    async def _list(
        self, request: operations_pb2.ListOperationsRequest, context: Context
    ) -> operations_pb2.ListOperationsResponse:
        tenant = await _tenant(self._guard, context, f"{OPERATIONS_SERVICE}/ListOperations")
        if request.name not in ("", "operations"):
            raise errors.invalid("name", 'the collection is "operations" (or empty)')
        backend, state = parse_filter(request.filter)
        limit = self._jobs.cfg.max_page_size
        if request.page_size < 0:
            raise errors.invalid("page_size", "must be >= 0")
        size = min(request.page_size or limit, limit)
        after = _page_start(request.page_token, request.filter)
        chosen = await self._jobs.store.page(
            after, size + 1, backend.name if backend else None, state, tenant
        )
        page = chosen[:size]
        out = operations_pb2.ListOperationsResponse(
            operations=[await self._jobs.operation(r) for r in page]
        )
        if len(chosen) > size:
            out.next_page_token = _page_token(page[-1].seq, request.filter)
        return out

    async def WaitOperation(
        self, request: operations_pb2.WaitOperationRequest, context: Context
    ) -> operations_pb2.Operation:
        return await _answer(context, "WaitOperation", self._wait(request, context))

    async def _wait(
        self, request: operations_pb2.WaitOperationRequest, context: Context
    ) -> operations_pb2.Operation:
        bounds = [context.time_remaining(), self._jobs.cfg.max_wait_seconds]
        if request.HasField("timeout"):
            bounds.append(request.timeout.ToTimedelta().total_seconds())
        budget = min(b for b in bounds if b is not None)
        latest = await self._get(request.name, context, "Wait")
        if latest.done:
            return latest
        try:
            async with asyncio.timeout(max(budget - _WAIT_MARGIN, 0.0)):
                async for change in self._jobs.watch(request.name):
                    latest = change
        except TimeoutError:
            pass  # AIP-151: Wait may return before the operation is done
        return latest

    async def CancelOperation(
        self, request: operations_pb2.CancelOperationRequest, context: Context
    ) -> empty_pb2.Empty:
        await _answer(context, "CancelOperation", self._change(request.name, context, "Cancel"))
        return empty_pb2.Empty()

    async def DeleteOperation(
        self, request: operations_pb2.DeleteOperationRequest, context: Context
    ) -> empty_pb2.Empty:
        await _answer(context, "DeleteOperation", self._change(request.name, context, "Delete"))
        return empty_pb2.Empty()

    async def _change(self, name: str, context: Context, method: str) -> None:
        rpc = f"{OPERATIONS_SERVICE}/{method}Operation"
        caller = await admit(self._guard, context, rpc)
        tenant = None if caller is None else caller.tenant

        async def change() -> None:
            await self._jobs.get(name, tenant)  # another tenant's: not found, before acting
            if method == "Cancel":
                await self._jobs.cancel(name)
            else:
                await self._jobs.delete(name)

        await _audited(None if caller is None else caller.name, rpc, name, change())


class JobsServicer(jobs_pb2_grpc.JobsServiceServicer):
    def __init__(self, jobs: JobService, guard: Guard | None = None) -> None:
        self._jobs = jobs
        self._guard = guard

    async def _submit(
        self, backend: Backend, request: Message, request_id: str, context: Context, method: str
    ) -> operations_pb2.Operation:
        rpc = f"{JOBS_SERVICE}/{method}"
        # The create request's resources (solution version, model, role) are authorized
        # like those of the mirrored Create RPC.
        caller = await admit(self._guard, context, rpc, request)
        name = None if caller is None else caller.name
        tenant = "" if caller is None else caller.tenant
        work = self._jobs.submit(backend, request, request_id, tenant)
        record: JobRecord = await _audited(name, rpc, first_resource(request), work)
        return await self._jobs.operation(record)

    def _submitter(
        self, backend: Backend, method: str
    ) -> Callable[[Any, Context], Awaitable[operations_pb2.Operation]]:
        async def submit(request: Any, context: Context) -> operations_pb2.Operation:
            if not request.HasField("request"):
                work = _refuse(errors.invalid("request", "required: the create request"))
            else:
                work = self._submit(backend, request.request, request.request_id, context, method)
            return await _answer(context, method, work)

        return submit

    async def SubmitBatchInferenceJob(
        self, request: jobs_pb2.SubmitBatchInferenceJobRequest, context: Context
    ) -> operations_pb2.Operation:
        return await self._submitter(PERSONALIZE, "SubmitBatchInferenceJob")(request, context)

    async def SubmitBatchPrediction(
        self, request: jobs_pb2.SubmitBatchPredictionRequest, context: Context
    ) -> operations_pb2.Operation:
        return await self._submitter(MACHINE_LEARNING, "SubmitBatchPrediction")(request, context)

    async def SubmitModelInvocationJob(
        self, request: jobs_pb2.SubmitModelInvocationJobRequest, context: Context
    ) -> operations_pb2.Operation:
        return await self._submitter(BEDROCK, "SubmitModelInvocationJob")(request, context)

    async def WatchOperation(
        self, request: jobs_pb2.WatchOperationRequest, context: Context
    ) -> AsyncIterator[jobs_pb2.WatchOperationResponse]:
        recorded = metrics.request_metrics("WatchOperation")
        start = time.perf_counter()
        recorded.in_flight.inc()
        try:
            tenant = await _tenant(self._guard, context, f"{JOBS_SERVICE}/WatchOperation")
            await self._jobs.get(request.name, tenant)
            async for operation in self._jobs.watch(request.name):
                yield jobs_pb2.WatchOperationResponse(operation=operation)
        except asyncio.CancelledError:
            recorded.code(grpc.StatusCode.CANCELLED).inc()
            raise
        except Exception as exc:
            await _abort(context, "WatchOperation", exc)
        else:
            recorded.code(grpc.StatusCode.OK).inc()
        finally:
            recorded.in_flight.dec()
            recorded.latency.observe(time.perf_counter() - start)


async def _refuse(error: GatewayError) -> operations_pb2.Operation:
    raise error


# -- ListOperations: filter and page tokens --------------------------------------------------

#: "personalize" and "machinelearning" are the botocore names; "machine_learning" the enum's.
_BACKEND_NAMES = {
    **BACKENDS,
    **{
        jobs_pb2.Backend.Name(b.enum).removeprefix("BACKEND_").lower(): b for b in BACKENDS.values()
    },
}
_STATE_NAMES = {
    state_name(v.number): v.number
    for v in jobs_pb2.JobState.DESCRIPTOR.values
    if v.number != jobs_pb2.JOB_STATE_UNSPECIFIED
}


def parse_filter(text: str) -> tuple[Backend | None, int | None]:
    """AIP-160's subset the collection needs: `backend = "bedrock" AND state = "running"`
    (either term alone; values case-insensitive, quotes optional; enum names accepted)."""
    backend: Backend | None = None
    state: int | None = None
    if not text.strip():
        return backend, state
    for term in _split_and(text):
        key, sep, raw = term.partition("=")
        value = raw.strip().strip("\"'").lower()
        key = key.strip().lower()
        if not sep or not value:
            raise _bad_filter(f"{term.strip()!r} is not `key = value`")
        if key == "backend" and value.removeprefix("backend_") in _BACKEND_NAMES:
            backend = _BACKEND_NAMES[value.removeprefix("backend_")]
        elif key == "state" and value.removeprefix("job_state_") in _STATE_NAMES:
            state = _STATE_NAMES[value.removeprefix("job_state_")]
        elif key in ("backend", "state"):
            allowed = sorted(_BACKEND_NAMES if key == "backend" else _STATE_NAMES)
            raise _bad_filter(f"{key} {value!r} is not one of {', '.join(allowed)}")
        else:
            raise _bad_filter(f"unknown field {key!r}: filter on backend and state")
    return backend, state


def _split_and(text: str) -> list[str]:
    words = text.replace(" and ", " AND ").split(" AND ")
    return [w for w in words if w.strip()]


def _bad_filter(why: str) -> GatewayError:
    return errors.invalid("filter", why)


def _page_token(seq: int, filter_text: str) -> str:
    data = json.dumps({"after": seq, "filter": filter_text}).encode()
    return base64.urlsafe_b64encode(data).decode()


def _page_start(token: str, filter_text: str) -> int:
    if not token:
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        after, used = int(data["after"]), data["filter"]
    except (ValueError, KeyError, TypeError):
        raise errors.invalid("page_token", "not a token this service issued") from None
    if used != filter_text:
        raise errors.invalid("page_token", "issued for another filter")
    return after


class _Undecodable:
    """What the tolerant deserializer hands on for a body that is not the request type."""

    __slots__ = ("message_type",)

    def __init__(self, message_type: str) -> None:
        self.message_type = message_type


def _tolerant(handler: Any) -> Any:
    """The generated method handler, decoding its request itself.

    grpc's own deserializer fails a corrupt body before any code of ours runs (UNKNOWN, a
    logged traceback, no ErrorInfo); as at the edge (gateway/services.py), a body that does
    not decode is answered INVALID_ARGUMENT with MALFORMED_REQUEST."""
    parse = handler.request_deserializer
    message_type = parse.__self__.DESCRIPTOR.full_name  # a generated `Message.FromString`

    def deserialize(body: bytes) -> Any:
        try:
            return parse(body)
        except DecodeError:
            return _Undecodable(message_type)

    async def refuse(request: _Undecodable, context: Context, method: str) -> None:
        await _abort(context, method, MalformedRequest(request.message_type))

    method = handler.unary_unary or handler.unary_stream
    name = method.__name__
    if handler.unary_unary is not None:
        behaviour = handler.unary_unary

        async def unary(request: Any, context: Context) -> Any:
            if isinstance(request, _Undecodable):
                await refuse(request, context, name)
            return await behaviour(request, context)

        return handler._replace(request_deserializer=deserialize, unary_unary=unary)
    streaming = handler.unary_stream

    async def stream(request: Any, context: Context) -> AsyncIterator[Any]:
        if isinstance(request, _Undecodable):
            await refuse(request, context, name)
        async for answer in streaming(request, context):
            yield answer

    return handler._replace(request_deserializer=deserialize, unary_stream=stream)


class TolerantServer:
    """The server as the generated `add_*_to_server` functions see it: every method they
    add, registered or generic (googleapis' older stubs add only generic handlers), decodes
    its own request (`_tolerant`)."""

    def __init__(self, server: grpc.aio.Server) -> None:
        self._server = server

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        self._server.add_generic_rpc_handlers([_TolerantGeneric(h) for h in handlers])

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Any]) -> None:
        tolerant = {name: _tolerant(handler) for name, handler in handlers.items()}
        self._server.add_registered_method_handlers(service, tolerant)


class _TolerantGeneric(grpc.GenericRpcHandler):
    def __init__(self, inner: grpc.GenericRpcHandler) -> None:
        self._inner = inner

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> Any:
        handler = self._inner.service(handler_call_details)
        return None if handler is None else _tolerant(handler)
