"""Amazon Machine Learning batch predictions (``machinelearning``, JSON 1.1).

Lifecycle: ``PENDING`` (one step) -> ``INPROGRESS`` (``in_progress_steps``) -> ``COMPLETED``,
or ``FAILED`` when the data source id or output URI contains the fail marker. The
caller-chosen ``BatchPredictionId`` is the idempotency key: the same id with the same
payload returns the id again; with a different payload it is
IdempotentParameterMismatchException.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gateway.emulator.config import JobsConfig
from gateway.emulator.jobs import Clock, InvalidPageToken, Timeline, paginate, stable_int
from gateway.emulator.protocol import AwsError

__all__ = ["AmlJobs"]

_PAYLOAD = ("MLModelId", "BatchPredictionDataSourceId", "OutputUri", "BatchPredictionName")
_COMPARATORS: dict[str, Callable[[Any, Any], bool]] = {
    "EQ": operator.eq,
    "NE": operator.ne,
    "GT": operator.gt,
    "GE": operator.ge,
    "LT": operator.lt,
    "LE": operator.le,
}
_TIME_VARIABLES = ("CreatedAt", "LastUpdatedAt")


@dataclass(frozen=True)
class _Prediction:
    request: dict[str, Any]
    timeline: Timeline
    failed: bool
    total_records: int
    invalid_records: int


def _parse_time(raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as exc:
        raise AwsError("InvalidInputException", f"Cannot compare a date with {raw!r}") from exc
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.timestamp()


class AmlJobs:
    def __init__(self, cfg: JobsConfig, clock: Clock, account_id: str) -> None:
        self._cfg = cfg
        self._clock = clock
        self._user = f"arn:aws:iam::{account_id}:user/emulator"
        self._jobs: dict[str, _Prediction] = {}

    def reset(self) -> None:
        self._jobs.clear()

    def create(self, p: dict[str, Any]) -> dict[str, Any]:
        bp_id = p["BatchPredictionId"]
        existing = self._jobs.get(bp_id)
        if existing is not None:
            if any(existing.request.get(k) != p.get(k) for k in _PAYLOAD):
                raise AwsError(
                    "IdempotentParameterMismatchException",
                    f"BatchPrediction {bp_id} already exists with different parameters.",
                )
            return {"BatchPredictionId": bp_id}
        step = self._cfg.step_seconds
        marker = self._cfg.fail_marker
        failed = marker in p["BatchPredictionDataSourceId"] or marker in p["OutputUri"]
        now = self._clock()
        end = step * (1 + self._cfg.in_progress_steps)
        timeline = Timeline(
            now,
            ((0.0, "PENDING"), (step, "INPROGRESS"), (end, "FAILED" if failed else "COMPLETED")),
        )
        total = 1000 + stable_int("aml", bp_id, p["BatchPredictionDataSourceId"]) % 99_000
        invalid = stable_int("aml-invalid", bp_id) % max(1, total // 50)
        self._jobs[bp_id] = _Prediction(dict(p), timeline, failed, total, invalid)
        return {"BatchPredictionId": bp_id}

    def _view(self, job: _Prediction, now: float, detail: bool) -> dict[str, Any]:
        r = job.request
        status, updated = job.timeline.at(now)
        out: dict[str, Any] = {
            "BatchPredictionId": r["BatchPredictionId"],
            "MLModelId": r["MLModelId"],
            "BatchPredictionDataSourceId": r["BatchPredictionDataSourceId"],
            "InputDataLocationS3": f"s3://emulator-datasources/{r['BatchPredictionDataSourceId']}/",
            "CreatedByIamUser": self._user,
            "CreatedAt": job.timeline.start,
            "LastUpdatedAt": updated,
            "Name": r.get("BatchPredictionName"),
            "Status": status,
            "OutputUri": r["OutputUri"],
        }
        started = job.timeline.entered("INPROGRESS")
        if status != "PENDING" and started is not None:
            out["StartedAt"] = started
        if status in ("COMPLETED", "FAILED"):
            out["FinishedAt"] = updated
            out["ComputeTime"] = int((updated - (started or updated)) * 1000)
        if status == "COMPLETED":
            out["TotalRecordCount"] = job.total_records
            out["InvalidRecordCount"] = job.invalid_records
        if status == "FAILED":
            out["Message"] = "The data source could not be read."
        if detail:
            out["LogUri"] = (
                f"https://emulator-logs.s3.amazonaws.com/batch-prediction/{r['BatchPredictionId']}.log"
            )
        return out

    def get(self, p: dict[str, Any]) -> dict[str, Any]:
        job = self._jobs.get(p["BatchPredictionId"])
        if job is None:
            raise AwsError(
                "ResourceNotFoundException", f"BatchPrediction {p['BatchPredictionId']} not found."
            )
        return self._view(job, self._clock(), detail=True)

    def describe(self, p: dict[str, Any]) -> dict[str, Any]:
        now = self._clock()
        views = [self._view(j, now, detail=False) for j in self._jobs.values()]
        variable = p.get("FilterVariable")
        field = {
            "IAMUser": "CreatedByIamUser",
            "DataSourceId": "BatchPredictionDataSourceId",
            "DataURI": "InputDataLocationS3",
        }.get(variable or "", variable)
        used = [op for op in (*_COMPARATORS, "Prefix") if p.get(op) is not None]
        if used and field is None:
            raise AwsError("InvalidInputException", "Comparators need a FilterVariable.")
        if field is not None:
            for op in used:
                raw = p[op]
                if op == "Prefix":
                    views = [v for v in views if str(v.get(field) or "").startswith(raw)]
                    continue
                if variable in _TIME_VARIABLES:
                    bound: Any = _parse_time(raw)
                    views = [v for v in views if _COMPARATORS[op](v[field], bound)]
                else:
                    views = [v for v in views if _COMPARATORS[op](str(v.get(field) or ""), raw)]
        sort_field = field or "CreatedAt"
        descending = p.get("SortOrder") == "dsc"

        def sort_key(v: dict[str, Any]) -> list[Any]:
            value = v.get(sort_field)
            return [value if isinstance(value, float) else str(value or ""), v["BatchPredictionId"]]

        views.sort(key=sort_key, reverse=descending)
        try:
            page, token = paginate(
                views,
                sort_key,
                token=p.get("NextToken"),
                limit=p.get("Limit") or 100,
                query={k: p.get(k) for k in ("FilterVariable", "SortOrder", *used)},
                descending=descending,
            )
        except InvalidPageToken as exc:
            raise AwsError("InvalidInputException", str(exc)) from exc
        out: dict[str, Any] = {"Results": page}
        if token:
            out["NextToken"] = token
        return out
