"""The three backends a job runs on: which mirrored operations create, describe, list and
stop its jobs, and where each reads its status, times and counts.

Every reading works on the botocore-shaped dict (`to_aws` of the mirrored message), so member
names here are AWS's, as in the operation table.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message
from mlgw.bedrock.v1 import bedrock_pb2 as bedrock
from mlgw.jobs.v1 import jobs_pb2
from mlgw.machinelearning.v1 import machinelearning_pb2 as aml
from mlgw.personalize.v1 import personalize_pb2 as personalize

from gateway.upstream.mapping import from_aws


@dataclass(frozen=True)
class Backend:
    name: str  # botocore service name
    label: str  # for messages
    enum: int  # jobs_pb2.Backend
    create: str  # the mirrored operations, by name (rows of gateway/operations.py)
    describe: str
    list: str
    stop: str | None
    stop_request: type[Message] | None
    create_request: type[Message]
    result: type[Message]  # the Describe/Get response: the operation's result
    describe_request: type[Message]
    id_member: str  # of the describe request
    create_id_member: str  # of the create response
    #: Where the job sits in the describe response (Personalize nests it).
    view_member: str | None
    status_member: str
    message_member: str
    changed_member: str
    start_member: str | None
    end_member: str | None
    #: Count name in JobMetadata -> the describe response's member.
    counts: tuple[tuple[str, str], ...]
    list_request: type[Message]
    list_member: str
    token_member: str
    page_member: str
    page_size: int
    #: Members of the create request that name the job upstream (its idempotency key).
    key_member: str

    def view(self, described: Mapping[str, Any]) -> Mapping[str, Any]:
        return described.get(self.view_member, {}) if self.view_member else described

    def describe_for(self, job_id: str) -> Message:
        return from_aws(self.describe_request, {self.id_member: job_id})

    def stop_for(self, job_id: str) -> Message:
        assert self.stop_request is not None
        return from_aws(self.stop_request, {"jobIdentifier": job_id})

    def list_page(self, token: str | None) -> Message:
        params: dict[str, Any] = {self.page_member: self.page_size}
        if token:
            params[self.token_member] = token
        return from_aws(self.list_request, params)


PERSONALIZE = Backend(
    name="personalize", label="Amazon Personalize", enum=jobs_pb2.BACKEND_PERSONALIZE,
    create="CreateBatchInferenceJob", describe="DescribeBatchInferenceJob",
    list="ListBatchInferenceJobs", stop=None, stop_request=None,
    create_request=personalize.CreateBatchInferenceJobRequest,
    result=personalize.DescribeBatchInferenceJobResponse,
    describe_request=personalize.DescribeBatchInferenceJobRequest,
    id_member="batchInferenceJobArn", create_id_member="batchInferenceJobArn",
    view_member="batchInferenceJob", status_member="status", message_member="failureReason",
    changed_member="lastUpdatedDateTime", start_member=None, end_member=None, counts=(),
    list_request=personalize.ListBatchInferenceJobsRequest, list_member="batchInferenceJobs",
    token_member="nextToken", page_member="maxResults", page_size=100,
    key_member="jobName",
)  # fmt: skip
MACHINE_LEARNING = Backend(
    name="machinelearning", label="Amazon Machine Learning",
    enum=jobs_pb2.BACKEND_MACHINE_LEARNING,
    create="CreateBatchPrediction", describe="GetBatchPrediction",
    list="DescribeBatchPredictions", stop=None, stop_request=None,
    create_request=aml.CreateBatchPredictionRequest, result=aml.GetBatchPredictionResponse,
    describe_request=aml.GetBatchPredictionRequest,
    id_member="BatchPredictionId", create_id_member="BatchPredictionId",
    view_member=None, status_member="Status", message_member="Message",
    changed_member="LastUpdatedAt", start_member="StartedAt", end_member="FinishedAt",
    counts=(("total_record_count", "TotalRecordCount"),
            ("error_record_count", "InvalidRecordCount")),
    list_request=aml.DescribeBatchPredictionsRequest, list_member="Results",
    token_member="NextToken", page_member="Limit", page_size=100,
    key_member="BatchPredictionId",
)  # fmt: skip
BEDROCK = Backend(
    name="bedrock", label="Amazon Bedrock", enum=jobs_pb2.BACKEND_BEDROCK,
    create="CreateModelInvocationJob", describe="GetModelInvocationJob",
    list="ListModelInvocationJobs", stop="StopModelInvocationJob",
    stop_request=bedrock.StopModelInvocationJobRequest,
    create_request=bedrock.CreateModelInvocationJobRequest,
    result=bedrock.GetModelInvocationJobResponse,
    describe_request=bedrock.GetModelInvocationJobRequest,
    id_member="jobIdentifier", create_id_member="jobArn",
    view_member=None, status_member="status", message_member="message",
    changed_member="lastModifiedTime", start_member=None, end_member="endTime",
    counts=(("total_record_count", "totalRecordCount"),
            ("processed_record_count", "processedRecordCount"),
            ("success_record_count", "successRecordCount"),
            ("error_record_count", "errorRecordCount")),
    list_request=bedrock.ListModelInvocationJobsRequest, list_member="invocationJobSummaries",
    token_member="nextToken", page_member="maxResults", page_size=1000,
    key_member="clientRequestToken",
)  # fmt: skip

BACKENDS: dict[str, Backend] = {b.name: b for b in (PERSONALIZE, MACHINE_LEARNING, BEDROCK)}
#: Every mirrored operation the job service calls.
JOB_OPERATIONS = frozenset(
    name
    for b in BACKENDS.values()
    for name in (b.create, b.describe, b.list, b.stop)
    if name is not None
)


def derived_token(operation_name: str) -> str:
    """Bedrock's clientRequestToken for an operation whose request has none: stable for the
    operation, so every create attempt (after a crash, on another replica) is the same."""
    return "mlgw" + hashlib.sha256(operation_name.encode()).hexdigest()[:32]


def prepared(backend: Backend, request: Message, operation_name: str) -> Message:
    """The create request as sent upstream: with an idempotency key where the backend takes
    one (Bedrock's token, derived unless given; Amazon ML's id is required anyway)."""
    if backend is BEDROCK and not request.HasField("client_request_token"):
        request = _copy(request)
        request.client_request_token = derived_token(operation_name)  # type: ignore[attr-defined]
    return request


def _copy(message: Message) -> Message:
    out = type(message)()
    out.CopyFrom(message)
    return out


def epoch(value: Any) -> float | None:
    """A botocore timestamp (datetime) as epoch seconds."""
    if isinstance(value, dt.datetime):
        return value.timestamp()
    if isinstance(value, int | float):
        return float(value)
    return None


#: Request members that AWS does not echo in the description (not compared on adoption).
_NOT_DESCRIBED = frozenset({"jobName", "tags"})


def same_parameters(request: Mapping[str, Any], described: Mapping[str, Any]) -> bool:
    """Whether an existing Personalize job (its description) was created from `request`."""
    return all(
        described.get(key) == value for key, value in request.items() if key not in _NOT_DESCRIBED
    )
