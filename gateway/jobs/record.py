"""One job operation as the store keeps it (the same JSON in SQLite and in Redis)."""

from __future__ import annotations

import base64
import dataclasses
import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Phase(StrEnum):
    """Where the gateway is with a job (the normalized state says where the backend is)."""

    #: Accepted, persisted, waiting for a slot.
    QUEUED = "queued"
    #: Taken from the queue by one dispatcher; the create may or may not have happened
    #: upstream (a crash here resumes with the same upstream key, so nothing is doubled).
    SUBMITTING = "submitting"
    #: Exists upstream (job_id known); followed by the pollers.
    SUBMITTED = "submitted"
    #: Terminal: `response` or `error` is set.
    DONE = "done"


#: The phases a job is in while it waits for the queue (in order of the `seq` field).
IN_QUEUE = (Phase.QUEUED, Phase.SUBMITTING)


@dataclass
class JobRecord:
    name: str
    backend: str
    request_id: str
    #: Digest of the submitted request (request_id replays must match it).
    fingerprint: str
    #: The mirrored Create request as sent upstream (with any derived idempotency key).
    request: bytes
    seq: int
    submit_time: float
    phase: Phase = Phase.QUEUED
    state: int = 1  # JOB_STATE_QUEUED
    backend_status: str = ""
    job_id: str = ""
    start_time: float | None = None
    end_time: float | None = None
    last_change_time: float | None = None
    counts: dict[str, int] = field(default_factory=dict)
    message: str = ""
    #: The mirrored Describe/Get response, serialized (last seen; the result when done).
    response: bytes = b""
    #: A google.rpc.Status, serialized, when the operation ended with an error.
    error: bytes = b""
    #: The submitting caller's tenant ([auth] team or name); "" when callers are anonymous.
    #: `request_id` is then kept as `<tenant>/<request_id>`: each tenant has its own ids.
    tenant: str = ""

    @property
    def caller_request_id(self) -> str:
        return self.request_id.removeprefix(f"{self.tenant}/") if self.tenant else self.request_id

    @property
    def done(self) -> bool:
        return self.phase is Phase.DONE

    def to_json(self) -> str:
        data: dict[str, Any] = dataclasses.asdict(self)
        data["phase"] = self.phase.value
        for key in _BYTES:
            data[key] = base64.b64encode(getattr(self, key)).decode()
        return json.dumps(data, separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> JobRecord:
        data = json.loads(text)
        data["phase"] = Phase(data["phase"])
        for key in _BYTES:
            data[key] = base64.b64decode(data[key])
        return cls(**data)


_BYTES = ("request", "response", "error")
