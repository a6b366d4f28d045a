"""Amazon Bedrock batch inference (model invocation jobs, rest-json).

Lifecycle, one step each: ``Submitted`` -> ``Validating`` -> ``Scheduled`` -> ``InProgress``
(``in_progress_steps``) -> ``Completed``. Markers in the input S3 URI pick other endings:
the fail marker -> ``Failed`` after validation, the expire marker -> ``Expired`` instead of
starting, the partial marker -> ``PartiallyCompleted``. StopModelInvocationJob moves a
running job to ``Stopping`` for one step, then ``Stopped``; stopping a finished job is
ConflictException. ``clientRequestToken`` makes creates idempotent (same token -> same
job ARN) and job names are unique (a reused name is ConflictException). With
``bedrock_max_active`` set, a create beyond that many unfinished jobs is
ServiceQuotaExceededException.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.emulator.config import JobsConfig
from gateway.emulator.jobs import Clock, InvalidPageToken, Timeline, paginate, stable_int
from gateway.emulator.protocol import AwsError

__all__ = ["BedrockJobs"]

_TERMINAL = frozenset({"Completed", "PartiallyCompleted", "Failed", "Stopped", "Expired"})
_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_ERROR_RATE_DIVISOR = 50  # about 2% of processed records fail


@dataclass
class _Job:
    arn: str
    request: dict[str, Any]
    timeline: Timeline
    total_records: int
    running_from: float  # when InProgress starts
    running_until: float  # when InProgress would end
    stop_at: float | None = None
    stopped_state: tuple[float, str] | None = field(default=None)


def _job_id(name: str) -> str:
    n = stable_int("bedrock-job", name)
    return "".join(_ALPHABET[(n >> (5 * i)) % 36] for i in range(12))


class BedrockJobs:
    def __init__(self, cfg: JobsConfig, clock: Clock, region: str, account_id: str) -> None:
        self._cfg = cfg
        self._clock = clock
        self._prefix = f"arn:aws:bedrock:{region}:{account_id}:model-invocation-job/"
        self._jobs: dict[str, _Job] = {}
        self._by_token: dict[str, str] = {}
        self._by_name: dict[str, str] = {}

    def reset(self) -> None:
        self._jobs.clear()
        self._by_token.clear()
        self._by_name.clear()

    def create(self, p: dict[str, Any]) -> dict[str, Any]:
        token = p.get("clientRequestToken")
        if token is not None and token in self._by_token:
            return {"jobArn": self._by_token[token]}
        name = p["jobName"]
        if name in self._by_name:
            raise AwsError("ConflictException", f"A job named {name} already exists.")
        cfg = self._cfg
        self._check_quota()
        step = cfg.step_seconds
        uri = p["inputDataConfig"].get("s3InputDataConfig", {}).get("s3Uri", "")
        run_from = 3 * step
        run_until = run_from + step * cfg.in_progress_steps
        steps: list[tuple[float, str]] = [
            (0.0, "Submitted"),
            (step, "Validating"),
            (2 * step, "Scheduled"),
        ]
        if cfg.fail_marker in uri:
            steps[-1] = (2 * step, "Failed")
        elif cfg.expire_marker in uri:
            steps.append((run_from, "Expired"))
        else:
            steps.append((run_from, "InProgress"))
            final = "PartiallyCompleted" if cfg.partial_marker in uri else "Completed"
            steps.append((run_until, final))
        now = self._clock()
        arn = self._prefix + _job_id(name)
        self._jobs[arn] = _Job(
            arn=arn,
            request=dict(p),
            timeline=Timeline(now, tuple(steps)),
            total_records=100 + stable_int("bedrock-records", uri) % 9_900,
            running_from=now + run_from,
            running_until=now + run_until,
        )
        self._by_name[name] = arn
        if token is not None:
            self._by_token[token] = arn
        return {"jobArn": arn}

    def _check_quota(self) -> None:
        limit = self._cfg.bedrock_max_active
        now = self._clock()
        if (
            limit
            and sum(self._state(j, now)[0] not in _TERMINAL for j in self._jobs.values()) >= limit
        ):
            raise AwsError(
                "ServiceQuotaExceededException",
                f"You have reached the quota of {limit} batch inference jobs in progress.",
            )

    def _job(self, identifier: str) -> _Job:
        arn = identifier if identifier.startswith("arn:") else self._prefix + identifier
        job = self._jobs.get(arn)
        if job is None:
            raise AwsError("ResourceNotFoundException", f"Job {identifier} was not found.")
        return job

    def _state(self, job: _Job, now: float) -> tuple[str, float]:
        if job.stop_at is not None and now >= job.stop_at:
            if now >= job.stop_at + self._cfg.step_seconds:
                return "Stopped", job.stop_at + self._cfg.step_seconds
            return "Stopping", job.stop_at
        return job.timeline.at(now)

    def stop(self, p: dict[str, Any]) -> dict[str, Any]:
        job = self._job(p["jobIdentifier"])
        now = self._clock()
        state, _ = self._state(job, now)
        if state in _TERMINAL:
            raise AwsError(
                "ConflictException", f"The job is already {state} and cannot be stopped."
            )
        if job.stop_at is None:  # a second stop while Stopping is a no-op
            job.stop_at = now
        return {}

    def _processed(self, job: _Job, state: str, at: float) -> int:
        if state in ("Completed",):
            return job.total_records
        if state == "PartiallyCompleted":
            return job.total_records * 9 // 10
        # Running or stopped part-way: linear progress through the InProgress window.
        span = job.running_until - job.running_from
        frac = min(1.0, max(0.0, (at - job.running_from) / span)) if span > 0 else 1.0
        return int(job.total_records * frac)

    def _view(self, job: _Job, now: float) -> dict[str, Any]:
        r = job.request
        state, entered = self._state(job, now)
        hours = r.get("timeoutDurationInHours") or self._cfg.bedrock_default_timeout_hours
        out: dict[str, Any] = {
            "jobArn": job.arn,
            "jobName": r["jobName"],
            "modelId": r["modelId"],
            "clientRequestToken": r.get("clientRequestToken"),
            "roleArn": r["roleArn"],
            "status": state,
            "submitTime": job.timeline.start,
            "lastModifiedTime": entered,
            "inputDataConfig": r["inputDataConfig"],
            "outputDataConfig": r["outputDataConfig"],
            "vpcConfig": r.get("vpcConfig"),
            "timeoutDurationInHours": hours,
            "jobExpirationTime": job.timeline.start + hours * 3600.0,
            "modelInvocationType": r.get("modelInvocationType"),
        }
        if state in _TERMINAL:
            out["endTime"] = entered
        if state == "Failed":
            out["message"] = "Validation of the input data failed."
        elif state == "Expired":
            out["message"] = "The job was not started before it expired."
        if state not in ("Submitted", "Validating", "Failed"):
            # Progress is frozen at the stop request, and at the end for finished jobs.
            at = min(now, job.stop_at) if job.stop_at is not None else now
            processed = 0 if state == "Expired" else self._processed(job, state, at)
            errors = processed // _ERROR_RATE_DIVISOR
            out["totalRecordCount"] = job.total_records
            out["processedRecordCount"] = processed
            out["errorRecordCount"] = errors
            out["successRecordCount"] = processed - errors
        return out

    def get(self, p: dict[str, Any]) -> dict[str, Any]:
        return self._view(self._job(p["jobIdentifier"]), self._clock())

    def list(self, p: dict[str, Any]) -> dict[str, Any]:
        now = self._clock()
        views = [self._view(j, now) for j in self._jobs.values()]
        if p.get("statusEquals") is not None:
            views = [v for v in views if v["status"] == p["statusEquals"]]
        if p.get("nameContains") is not None:
            views = [v for v in views if p["nameContains"] in v["jobName"]]
        if p.get("submitTimeAfter") is not None:
            views = [v for v in views if v["submitTime"] > p["submitTimeAfter"]]
        if p.get("submitTimeBefore") is not None:
            views = [v for v in views if v["submitTime"] < p["submitTimeBefore"]]
        # sortBy has one value (CreationTime); Descending is the default order.
        descending = p.get("sortOrder", "Descending") == "Descending"
        views.sort(key=lambda v: (v["submitTime"], v["jobArn"]), reverse=descending)
        query = {
            k: p.get(k)
            for k in (
                "statusEquals",
                "nameContains",
                "submitTimeAfter",
                "submitTimeBefore",
                "sortBy",
                "sortOrder",
            )
        }
        try:
            page, token = paginate(
                views,
                lambda v: [v["submitTime"], v["jobArn"]],
                token=p.get("nextToken"),
                limit=p.get("maxResults") or 1000,
                query=query,
                descending=descending,
            )
        except InvalidPageToken as exc:
            raise AwsError("ValidationException", str(exc)) from exc
        out: dict[str, Any] = {"invocationJobSummaries": page}
        if token:
            out["nextToken"] = token
        return out
