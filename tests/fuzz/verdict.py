"""What counts as a clear answer in the live fuzz, for an RPC's status and for each entry of
a batch or stream answer: a code other than UNKNOWN/INTERNAL with exactly one ErrorInfo,
and, for a caller over its quota, the QuotaFailure and RetryInfo that say which limit and
when to retry."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

import grpc
from google.rpc import error_details_pb2, status_pb2

from tests.fuzz.targets import (
    FORBIDDEN_CODES,
    count_details,
    count_error_infos,
    status_from_trailers,
)

QUOTA_REASON = "CALLER_QUOTA_EXCEEDED"
_CODES = {code.value[0]: code for code in grpc.StatusCode}


class Answer(NamedTuple):
    """One input's outcome: the RPC's code and ErrorInfo reason ("-" for none), why it is
    not clear (None when it is), and the (code, reason) of each failed entry."""

    code: str
    reason: str
    complaint: str | None = None
    entries: tuple[tuple[str, str], ...] = ()
    #: A stream whose status grpc.aio lost, judged by asking again (tests/fuzz/streams.py).
    asked_again: bool = False


def reason_of(status: status_pb2.Status) -> str:
    for box in status.details:
        info = error_details_pb2.ErrorInfo()
        if box.Unpack(info):
            return str(info.reason)
    return "-"


def status_complaint(code: grpc.StatusCode, status: status_pb2.Status) -> str | None:
    """Why a failure is not clear, or None when it is."""
    infos = count_error_infos(status)
    if code in FORBIDDEN_CODES or infos != 1:
        return f"{code.name} with {infos} ErrorInfo"
    if reason_of(status) == QUOTA_REASON:
        failures = count_details(status, error_details_pb2.QuotaFailure.DESCRIPTOR)
        retries = count_details(status, error_details_pb2.RetryInfo.DESCRIPTOR)
        if (failures, retries) != (1, 1):
            return f"{QUOTA_REASON} with {failures} QuotaFailure and {retries} RetryInfo"
    return None


def of_error(error: grpc.aio.AioRpcError, label: str) -> Answer:
    """The answer of an RPC that failed as a whole."""
    return of_status(error.code(), error.trailing_metadata(), error.details(), label)


def of_status(code: grpc.StatusCode, trailers: Any, details: str | None, label: str) -> Answer:
    status = status_from_trailers(trailers)
    if code == grpc.StatusCode.OK:
        return Answer(code.name, "-")
    complaint = status_complaint(code, status)
    if complaint is not None:
        complaint = f"{label}: {complaint}: {details!r}"[:500]
    return Answer(code.name, reason_of(status), complaint)


def entry_verdicts(results: Iterable[Any], label: str) -> tuple[list[tuple[str, str]], str | None]:
    """(code, reason) of each failed entry of a batch or stream answer, and the first
    entry that is not clear."""
    failed: list[tuple[str, str]] = []
    complaint = None
    for n, result in enumerate(results):
        if not result.HasField("error"):
            continue
        code = _CODES.get(result.error.code, grpc.StatusCode.UNKNOWN)
        failed.append((code.name, reason_of(result.error)))
        why = status_complaint(code, result.error)
        if why is not None and complaint is None:
            complaint = f"{label} entry {n}: {why}"[:500]
    return failed, complaint
