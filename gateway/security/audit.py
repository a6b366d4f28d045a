"""The audit log: one structured line per control-plane call (submit, create, stop, cancel,
delete) and per denied or unauthenticated call, on the `gateway.audit` logger.

Each line names the caller, the RPC, the resource and the outcome; never a key, a token or a
certificate (the caller is its configured name, the resource an ARN from the request)."""

from __future__ import annotations

import logging

log = logging.getLogger("gateway.audit")

#: Method-name prefixes of the calls that change state (upstream or in the job store).
_CONTROL = ("Create", "Stop", "Submit", "Cancel", "Delete")

ANONYMOUS = "anonymous"


def is_control_plane(method: str) -> bool:
    return method.startswith(_CONTROL)


def record(caller: str | None, rpc: str, resource: str, outcome: str) -> None:
    """`outcome`: "ok", or the status code name (PERMISSION_DENIED, ...)."""
    log.info(
        "audit",
        extra={
            "caller": caller or ANONYMOUS,
            "rpc": rpc,
            "resource": resource,
            "outcome": outcome,
        },
    )
