"""THE operation table: one declarative row per RPC.

A row says which AWS operation an RPC mirrors, its message types and its policy. Every
servicer method, validator, upstream call and metric label is derived from these rows, so
adding an operation is a proto message pair plus one row here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property
from typing import Any

from botocore import xform_name
from google.protobuf.message import Message
from mlgw.bedrock.v1 import bedrock_pb2 as bedrock
from mlgw.machinelearning.v1 import machinelearning_pb2 as aml
from mlgw.personalize.v1 import personalize_pb2 as personalize
from mlgw.personalize_runtime.v1 import personalize_runtime_pb2 as runtime

from gateway.awsmodel import Violation

#: A cross-field rule AWS documents but its model cannot express; checks botocore params.
Rule = Callable[[Mapping[str, Any]], Iterable[Violation]]


class Priority(Enum):
    """Who goes first when upstream tokens are scarce."""

    INTERACTIVE = "interactive"
    BATCH = "batch"


@dataclass(frozen=True)
class Operation:
    """One mirrored RPC and everything the pipeline needs to know about it."""

    service: str  # proto service full name
    name: str  # RPC name == AWS operation name
    upstream: str  # botocore service name
    request: type[Message]
    response: type[Message]
    #: Safe to repeat (retry, coalesce) without a side effect.
    idempotent: bool
    #: AWS members naming the resource the call acts on (for limits, metrics and caching).
    resource_members: tuple[str, ...] = ()
    #: AWS member carrying a client-supplied idempotency key, if the operation has one.
    idempotency_key: str | None = None
    priority: Priority = Priority.INTERACTIVE
    rules: tuple[Rule, ...] = field(default=(), compare=False)

    @property
    def full_method(self) -> str:
        return f"/{self.service}/{self.name}"

    @cached_property
    def client_method(self) -> str:
        """The aiobotocore client method, e.g. `get_recommendations`."""
        return str(xform_name(self.name))

    def resource(self, params: Mapping[str, Any]) -> str | None:
        for member in self.resource_members:
            value = params.get(member)
            if value:
                return str(value)
        return None


# ---- cross-field rules AWS documents in prose -------------------------------------------


def exactly_one(*members: str) -> Rule:
    def rule(params: Mapping[str, Any]) -> Iterable[Violation]:
        if sum(1 for m in members if params.get(m)) != 1:
            yield Violation((members[0],), f"set exactly one of {' or '.join(members)}")

    return rule


def at_most(member: str, limit: int, *, when: str | None = None) -> Rule:
    """`member` (a number, or a list's length) is at most `limit` [when `when` is set]."""

    def rule(params: Mapping[str, Any]) -> Iterable[Violation]:
        value = params.get(member)
        if value is None or (when is not None and not params.get(when)):
            return
        size = len(value) if isinstance(value, list) else value
        if size > limit:
            suffix = f" when {when} is set" if when else ""
            yield Violation((member,), f"must be at most {limit}{suffix}")

    return rule


_RUNTIME = runtime.DESCRIPTOR.services_by_name["PersonalizeRuntimeService"].full_name
_PERSONALIZE = personalize.DESCRIPTOR.services_by_name["PersonalizeService"].full_name
_AML = aml.DESCRIPTOR.services_by_name["MachineLearningService"].full_name
_BEDROCK = bedrock.DESCRIPTOR.services_by_name["BedrockService"].full_name

OPERATIONS: tuple[Operation, ...] = (
    # Personalize Runtime: idempotent reads, the hot path.
    Operation(
        _RUNTIME, "GetRecommendations", "personalize-runtime",
        runtime.GetRecommendationsRequest, runtime.GetRecommendationsResponse,
        idempotent=True, resource_members=("campaignArn", "recommenderArn"),
        rules=(
            exactly_one("campaignArn", "recommenderArn"),
            at_most("numResults", 500),
            at_most("numResults", 50, when="metadataColumns"),
        ),
    ),
    Operation(
        _RUNTIME, "GetPersonalizedRanking", "personalize-runtime",
        runtime.GetPersonalizedRankingRequest, runtime.GetPersonalizedRankingResponse,
        idempotent=True, resource_members=("campaignArn",),
        rules=(at_most("inputList", 500), at_most("inputList", 50, when="metadataColumns")),
    ),
    Operation(
        _RUNTIME, "GetActionRecommendations", "personalize-runtime",
        runtime.GetActionRecommendationsRequest, runtime.GetActionRecommendationsResponse,
        idempotent=True, resource_members=("campaignArn",),
        rules=(at_most("numResults", 100),),
    ),
    # Personalize batch inference jobs (control plane).
    Operation(
        _PERSONALIZE, "CreateBatchInferenceJob", "personalize",
        personalize.CreateBatchInferenceJobRequest, personalize.CreateBatchInferenceJobResponse,
        idempotent=False, resource_members=("solutionVersionArn",), priority=Priority.BATCH,
    ),
    Operation(
        _PERSONALIZE, "DescribeBatchInferenceJob", "personalize",
        personalize.DescribeBatchInferenceJobRequest,
        personalize.DescribeBatchInferenceJobResponse,
        idempotent=True, resource_members=("batchInferenceJobArn",), priority=Priority.BATCH,
    ),
    Operation(
        _PERSONALIZE, "ListBatchInferenceJobs", "personalize",
        personalize.ListBatchInferenceJobsRequest, personalize.ListBatchInferenceJobsResponse,
        idempotent=True, resource_members=("solutionVersionArn",), priority=Priority.BATCH,
    ),
    # Amazon Machine Learning batch predictions.
    Operation(
        _AML, "CreateBatchPrediction", "machinelearning",
        aml.CreateBatchPredictionRequest, aml.CreateBatchPredictionResponse,
        idempotent=False, resource_members=("MLModelId",),
        idempotency_key="BatchPredictionId", priority=Priority.BATCH,
    ),
    Operation(
        _AML, "GetBatchPrediction", "machinelearning",
        aml.GetBatchPredictionRequest, aml.GetBatchPredictionResponse,
        idempotent=True, resource_members=("BatchPredictionId",), priority=Priority.BATCH,
    ),
    Operation(
        _AML, "DescribeBatchPredictions", "machinelearning",
        aml.DescribeBatchPredictionsRequest, aml.DescribeBatchPredictionsResponse,
        idempotent=True, priority=Priority.BATCH,
    ),
    # Bedrock model invocation (batch) jobs.
    Operation(
        _BEDROCK, "CreateModelInvocationJob", "bedrock",
        bedrock.CreateModelInvocationJobRequest, bedrock.CreateModelInvocationJobResponse,
        idempotent=False, resource_members=("modelId",),
        idempotency_key="clientRequestToken", priority=Priority.BATCH,
    ),
    Operation(
        _BEDROCK, "GetModelInvocationJob", "bedrock",
        bedrock.GetModelInvocationJobRequest, bedrock.GetModelInvocationJobResponse,
        idempotent=True, resource_members=("jobIdentifier",), priority=Priority.BATCH,
    ),
    Operation(
        _BEDROCK, "ListModelInvocationJobs", "bedrock",
        bedrock.ListModelInvocationJobsRequest, bedrock.ListModelInvocationJobsResponse,
        idempotent=True, priority=Priority.BATCH,
    ),
    Operation(
        _BEDROCK, "StopModelInvocationJob", "bedrock",
        bedrock.StopModelInvocationJobRequest, bedrock.StopModelInvocationJobResponse,
        # A repeated stop of a job already stopping answers ConflictException: not idempotent.
        idempotent=False, resource_members=("jobIdentifier",), priority=Priority.BATCH,
    ),
)  # fmt: skip

#: The proto modules of the mirrored services, for reflection and descriptor checks.
PROTO_MODULES = (runtime, personalize, aml, bedrock)
