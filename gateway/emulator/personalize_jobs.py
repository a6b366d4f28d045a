"""Amazon Personalize batch inference jobs (control plane ``personalize``).

Lifecycle: ``PENDING`` (one step) -> ``IN PROGRESS`` (``in_progress_steps``) -> ``ACTIVE``,
or ``CREATE FAILED`` when the input path contains the fail marker. At most
``personalize_max_active`` jobs may be PENDING or IN PROGRESS at once (AWS's default
quota is 5); one more is LimitExceededException, which is what AWS answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.emulator.catalog import Catalog
from gateway.emulator.config import JobsConfig
from gateway.emulator.jobs import Clock, InvalidPageToken, Timeline, paginate
from gateway.emulator.protocol import AwsError

__all__ = ["PersonalizeJobs"]

_ACTIVE = ("PENDING", "IN PROGRESS")


@dataclass(frozen=True)
class _Job:
    arn: str
    request: dict[str, Any]
    timeline: Timeline
    failure_reason: str | None


class PersonalizeJobs:
    def __init__(self, catalog: Catalog, cfg: JobsConfig, clock: Clock) -> None:
        self._catalog = catalog
        self._cfg = cfg
        self._clock = clock
        self._jobs: dict[str, _Job] = {}
        self._prefix = f"arn:aws:personalize:{catalog.region}:{catalog.account_id}"

    def reset(self) -> None:
        self._jobs.clear()

    def _timeline(self, created: float, fails: bool) -> Timeline:
        step = self._cfg.step_seconds
        end = step * (1 + self._cfg.in_progress_steps)
        final = "CREATE FAILED" if fails else "ACTIVE"
        return Timeline(created, ((0.0, "PENDING"), (step, "IN PROGRESS"), (end, final)))

    def create(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p["jobName"]
        arn = f"{self._prefix}:batch-inference-job/{name}"
        if arn in self._jobs:
            raise AwsError("ResourceAlreadyExistsException", f"Resource {arn} already exists.")
        sv = p["solutionVersionArn"]
        if sv not in self._catalog.solution_versions:
            raise AwsError("ResourceNotFoundException", f"Resource {sv} does not exist.")
        farn = p.get("filterArn")
        if farn is not None and farn not in self._catalog.filters:
            raise AwsError("ResourceNotFoundException", f"Resource {farn} does not exist.")
        now = self._clock()
        active = sum(1 for j in self._jobs.values() if j.timeline.at(now)[0] in _ACTIVE)
        if active >= self._cfg.personalize_max_active:
            raise AwsError(
                "LimitExceededException",
                f"You have reached the limit of {self._cfg.personalize_max_active} "
                "batch inference jobs that are pending or in progress.",
            )
        path = p["jobInput"]["s3DataSource"]["path"]
        fails = self._cfg.fail_marker in path
        reason = f"Input {path} could not be read." if fails else None
        self._jobs[arn] = _Job(arn, dict(p), self._timeline(now, fails), reason)
        return {"batchInferenceJobArn": arn}

    def _job(self, arn: str) -> _Job:
        job = self._jobs.get(arn)
        if job is None:
            raise AwsError("ResourceNotFoundException", f"Resource {arn} does not exist.")
        return job

    def _summary(self, job: _Job, now: float) -> dict[str, Any]:
        status, updated = job.timeline.at(now)
        out = {
            "batchInferenceJobArn": job.arn,
            "jobName": job.request["jobName"],
            "status": status,
            "creationDateTime": job.timeline.start,
            "lastUpdatedDateTime": updated,
            "solutionVersionArn": job.request["solutionVersionArn"],
            "batchInferenceJobMode": job.request.get("batchInferenceJobMode", "BATCH_INFERENCE"),
        }
        if status == "CREATE FAILED":
            out["failureReason"] = job.failure_reason
        return out

    def describe(self, p: dict[str, Any]) -> dict[str, Any]:
        job = self._job(p["batchInferenceJobArn"])
        out = self._summary(job, self._clock())
        for key in (
            "filterArn",
            "numResults",
            "jobInput",
            "jobOutput",
            "batchInferenceJobConfig",
            "roleArn",
            "themeGenerationConfig",
        ):
            if key in job.request:
                out[key] = job.request[key]
        return {"batchInferenceJob": out}

    def list(self, p: dict[str, Any]) -> dict[str, Any]:
        sv = p.get("solutionVersionArn")
        jobs = [
            j for j in self._jobs.values() if sv is None or j.request["solutionVersionArn"] == sv
        ]
        # Newest first, as the console and the API list them.
        jobs.sort(key=lambda j: (j.timeline.start, j.arn), reverse=True)
        try:
            page, token = paginate(
                jobs,
                lambda j: [j.timeline.start, j.arn],
                descending=True,
                token=p.get("nextToken"),
                limit=p.get("maxResults") or 100,
                query={"solutionVersionArn": sv},
            )
        except InvalidPageToken as exc:
            raise AwsError("InvalidNextTokenException", str(exc)) from exc
        now = self._clock()
        out: dict[str, Any] = {"batchInferenceJobs": [self._summary(j, now) for j in page]}
        if token:
            out["nextToken"] = token
        return out
