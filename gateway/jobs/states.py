"""THE status table: every backend status of the pinned botocore models -> one JobState.

tests/unit/test_jobs_states.py reads the botocore models (Amazon ML and Bedrock model the
status as an enum; Personalize as a string whose documentation lists the values) and fails
on any status missing here, so a new AWS status breaks a test, not production.
"""

from __future__ import annotations

from mlgw.jobs.v1 import jobs_pb2

S = jobs_pb2.JobState

#: (botocore service, backend status) -> normalized state.
STATUS_TABLE: dict[str, dict[str, int]] = {
    "personalize": {
        "PENDING": S.JOB_STATE_VALIDATING,
        "IN PROGRESS": S.JOB_STATE_RUNNING,
        "ACTIVE": S.JOB_STATE_SUCCEEDED,
        "CREATE FAILED": S.JOB_STATE_FAILED,
    },
    "machinelearning": {
        "PENDING": S.JOB_STATE_VALIDATING,
        "INPROGRESS": S.JOB_STATE_RUNNING,
        "COMPLETED": S.JOB_STATE_SUCCEEDED,
        "FAILED": S.JOB_STATE_FAILED,
        # Deleted by its owner: the result is gone, so the job did not deliver one.
        "DELETED": S.JOB_STATE_CANCELLED,
    },
    "bedrock": {
        "Submitted": S.JOB_STATE_VALIDATING,
        "Validating": S.JOB_STATE_VALIDATING,
        "Scheduled": S.JOB_STATE_SCHEDULED,
        "InProgress": S.JOB_STATE_RUNNING,
        "Completed": S.JOB_STATE_SUCCEEDED,
        "PartiallyCompleted": S.JOB_STATE_PARTIALLY_SUCCEEDED,
        "Failed": S.JOB_STATE_FAILED,
        "Stopping": S.JOB_STATE_STOPPING,
        "Stopped": S.JOB_STATE_CANCELLED,
        "Expired": S.JOB_STATE_EXPIRED,
    },
}

TERMINAL: frozenset[int] = frozenset(
    {
        S.JOB_STATE_SUCCEEDED,
        S.JOB_STATE_PARTIALLY_SUCCEEDED,
        S.JOB_STATE_FAILED,
        S.JOB_STATE_CANCELLED,
        S.JOB_STATE_EXPIRED,
    }
)
#: Terminal states whose operation ends with `response` (the others end with `error`).
SUCCESSFUL: frozenset[int] = frozenset({S.JOB_STATE_SUCCEEDED, S.JOB_STATE_PARTIALLY_SUCCEEDED})


def normalized(backend: str, status: str) -> int:
    """The state of a backend status; one AWS added after the pinned model is RUNNING (not
    terminal, so the poller keeps following it) until the table learns it."""
    return STATUS_TABLE[backend].get(status, S.JOB_STATE_RUNNING)


def occupies_slot(backend: str, status: str) -> bool:
    """Whether a job with this status counts against the backend's concurrency quota."""
    return normalized(backend, status) not in TERMINAL


def state_name(state: int) -> str:
    """`JOB_STATE_RUNNING` -> `running` (filters and logs)."""
    return S.Name(state).removeprefix("JOB_STATE_").lower()
