"""The job service's errors: GatewayErrors (one ErrorInfo each), and the google.rpc.Status
a job that ended badly carries as `Operation.error`."""

from __future__ import annotations

import grpc
from google.rpc import status_pb2
from mlgw.jobs.v1 import jobs_pb2

from gateway.errors import FieldViolation, GatewayError, InvalidRequest, _cut
from gateway.jobs.states import state_name

S = jobs_pb2.JobState


#: The most characters of a caller's operation name an error echoes: the name is the
#: caller's, and echoed unbounded (twice) it outgrows grpc's metadata limit, so the caller
#: would get a bare RESOURCE_EXHAUSTED instead of NOT_FOUND (found by the live fuzz).
MAX_NAME_CHARS = 200


def not_found(name: str) -> GatewayError:
    shown = _cut(name, MAX_NAME_CHARS)
    return GatewayError(
        f"no operation {shown}: never submitted here, deleted, or past its retention",
        code=grpc.StatusCode.NOT_FOUND,
        reason="OPERATION_NOT_FOUND",
        metadata={"name": shown},
    )


def request_id_reused(request_id: str, name: str) -> GatewayError:
    return GatewayError(
        "this request_id was used for a different request (AIP-155): use a new request_id",
        code=grpc.StatusCode.ALREADY_EXISTS,
        reason="REQUEST_ID_REUSED",
        metadata={"requestId": request_id, "operation": name},
    )


def key_in_use(member: str, value: str, name: str) -> GatewayError:
    return GatewayError(
        f"{member} {value!r} is already the key of unfinished operation {name} with other "
        "parameters; the backend would take the two for one job",
        code=grpc.StatusCode.ALREADY_EXISTS,
        reason="JOB_KEY_IN_USE",
        metadata={"member": member, "operation": name},
    )


def not_cancellable(name: str, why: str) -> GatewayError:
    return GatewayError(
        why,
        code=grpc.StatusCode.FAILED_PRECONDITION,
        reason="JOB_NOT_CANCELLABLE",
        metadata={"name": name},
    )


def not_done(name: str) -> GatewayError:
    return GatewayError(
        f"operation {name} is not done: DeleteOperation forgets finished operations only "
        "(it does not cancel; CancelOperation does)",
        code=grpc.StatusCode.FAILED_PRECONDITION,
        reason="OPERATION_NOT_DONE",
        metadata={"name": name},
    )


def invalid(field: str, description: str) -> InvalidRequest:
    return InvalidRequest([FieldViolation(field, description)])


def store_unavailable() -> GatewayError:
    return GatewayError(
        "the job store is not answering; retry shortly",
        code=grpc.StatusCode.UNAVAILABLE,
        reason="JOB_STORE_UNAVAILABLE",
        retry_after=1.0,
    )


#: A terminal state that is not success -> (gRPC code, ErrorInfo reason).
_ENDINGS: dict[int, tuple[grpc.StatusCode, str]] = {
    S.JOB_STATE_FAILED: (grpc.StatusCode.ABORTED, "JOB_FAILED"),
    S.JOB_STATE_CANCELLED: (grpc.StatusCode.CANCELLED, "JOB_CANCELLED"),
    S.JOB_STATE_EXPIRED: (grpc.StatusCode.DEADLINE_EXCEEDED, "JOB_EXPIRED"),
}


def job_error(
    state: int, message: str, *, backend: str, backend_status: str, job_id: str
) -> status_pb2.Status:
    """`Operation.error` of a job that ended in `state`: the backend's message passes
    through; ErrorInfo says what happened in machine terms."""
    code, reason = _ENDINGS[state]
    metadata = {"backend": backend, "state": state_name(state)}
    if backend_status:
        metadata["backendStatus"] = backend_status
    if job_id:
        metadata["jobId"] = job_id
    text = message or f"the job ended {state_name(state)}"
    error = GatewayError(text, code=code, reason=reason, metadata=metadata)
    return error.to_status()
