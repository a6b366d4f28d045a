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


# ---- caching, coalescing and merging policy (read by gateway/pipeline/cache*.py, merge.py) --


class CacheClass(Enum):
    """Which TTL family an operation's answers get (values in `[cache]`)."""

    #: Inference results: `user_ttl_seconds` when a `personal` member is set, else
    #: `shared_ttl_seconds`.
    RESULTS = "results"
    #: Job descriptions: `job_ttl_seconds`.
    JOB = "job"


class MergeKind(Enum):
    #: The member is a list: one call over the union, each caller gets its own items back
    #: in upstream order with scores renormalised over its subset (a softmax is exact).
    UNION = "union"
    #: The member is a count: one call with the largest, each caller gets its prefix.
    LARGEST = "largest"


@dataclass(frozen=True)
class MergeRule:
    """Requests equal but for `member` may share one upstream call."""

    member: str
    kind: MergeKind
    #: The response member holding the list that is split back per caller.
    result_list: str
    #: UNION: the most items one merged call may carry...
    max_items: int = 0
    #: ...or fewer when this member is set: (member, limit).
    max_items_when: tuple[str, int] | None = None
    #: Members that, when set, make a request unmergeable (their effect depends on `member`).
    unless: tuple[str, ...] = ()


@dataclass(frozen=True)
class CachePolicy:
    """How the cache, coalescing and merging stages treat one (idempotent) operation."""

    kind: CacheClass = CacheClass.RESULTS
    #: Members naming a user: when one is set the answer is user-specific (shorter TTL).
    personal: tuple[str, ...] = ()
    #: Member -> the value AWS assumes when it is absent, so both spellings share one key.
    defaults: tuple[tuple[str, Any], ...] = ()
    merge: MergeRule | None = None


# ---- rate limits and retries policy (read by gateway/pipeline/admission.py, retry.py) -----


@dataclass(frozen=True)
class Quota:
    """The upstream's rate for one (operation, resource ARN) pair: the admission bucket's
    default ceiling (`[limits]` overrides it). AWS's documented quota where there is one."""

    rate: float
    burst: float
    #: The account-wide group (QUOTA_GROUPS) every call also takes a token from.
    group: str | None = None


#: Account-wide (per region) quotas shared by several operations: name -> (rate, burst).
QUOTA_GROUPS: dict[str, tuple[float, float]] = {
    # AWS: "Maximum transaction rate (GetRecommendations plus GetPersonalizedRanking): 2500/s".
    "personalize-runtime": (2500.0, 250.0),
}

# AWS documents 500 TPS per campaign for GetRecommendations and for GetPersonalizedRanking;
# GetActionRecommendations is given the same. The control planes document no per-API rate:
# reads get 20/s and writes 5/s, conservative; adaptive rates lower them further on throttles.
_RUNTIME_QUOTA = Quota(500.0, 50.0, group="personalize-runtime")
_ACTIONS_QUOTA = Quota(500.0, 50.0)
_CONTROL_READ = Quota(20.0, 20.0)
_CONTROL_WRITE = Quota(5.0, 5.0)


@dataclass(frozen=True)
class CreateCheck:
    """How to tell, after an ambiguous failure, whether a create without an idempotency key
    took effect: list the jobs filtered like the request and look for its name."""

    #: The listing operation (another row of the table) and its filter members, copied from
    #: the create request.
    list_operation: str
    filters: tuple[str, ...]
    #: The request member naming the job, and the listing's member of the same value.
    name_member: str
    #: The listing's member holding the list, and each entry's member with the job's id.
    list_member: str
    id_member: str
    #: The create response's member that receives that id.
    response_member: str


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
    #: Cacheable (and how); None: never cached. Coalescing follows `idempotent`.
    cache: CachePolicy | None = None
    #: The default admission bucket per resource (None: not rate limited).
    quota: Quota | None = None
    #: For a create without an idempotency key: how a retry first checks the job exists.
    create_check: CreateCheck | None = None

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
            text = f"set exactly one of {' or '.join(members)}"
            yield from (Violation((m,), text) for m in members)  # the rule is about each

    return rule


def at_most(member: str, limit: int, *, when: str | None = None) -> Rule:
    """`member` (a number, or a list's length) is at most `limit` [when `when` is set]."""
    return AtMost(member, limit, when)


@dataclass(frozen=True)
class AtMost:
    """The `at_most` rule; a dataclass so the validation precheck can read its limit."""

    member: str
    limit: int
    when: str | None = None

    def __call__(self, params: Mapping[str, Any]) -> Iterable[Violation]:
        member, limit, when = self.member, self.limit, self.when
        value = params.get(member)
        if value is None or (when is not None and not params.get(when)):
            return
        suffix = f" when {when} is set" if when else ""
        if isinstance(value, list) and len(value) > limit:
            yield Violation((member,), f"must have at most {limit} entries{suffix}")
        elif not isinstance(value, list) and value > limit:
            yield Violation((member,), f"must be at most {limit}{suffix}")


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
        quota=_RUNTIME_QUOTA,
        rules=(
            exactly_one("campaignArn", "recommenderArn"),
            at_most("numResults", 500),
            at_most("numResults", 50, when="metadataColumns"),
        ),
        cache=CachePolicy(
            personal=("userId",), defaults=(("numResults", 25),),
            # A promotion's share of slots depends on numResults, so no prefix is exact.
            merge=MergeRule("numResults", MergeKind.LARGEST, "itemList", unless=("promotions",)),
        ),
    ),
    Operation(
        _RUNTIME, "GetPersonalizedRanking", "personalize-runtime",
        runtime.GetPersonalizedRankingRequest, runtime.GetPersonalizedRankingResponse,
        idempotent=True, resource_members=("campaignArn",), quota=_RUNTIME_QUOTA,
        rules=(at_most("inputList", 500), at_most("inputList", 50, when="metadataColumns")),
        cache=CachePolicy(
            personal=("userId",),
            merge=MergeRule(
                "inputList", MergeKind.UNION, "personalizedRanking",
                max_items=500, max_items_when=("metadataColumns", 50),
            ),
        ),
    ),
    Operation(
        _RUNTIME, "GetActionRecommendations", "personalize-runtime",
        runtime.GetActionRecommendationsRequest, runtime.GetActionRecommendationsResponse,
        idempotent=True, resource_members=("campaignArn",), quota=_ACTIONS_QUOTA,
        rules=(at_most("numResults", 100),),
        cache=CachePolicy(personal=("userId",), defaults=(("numResults", 5),)),
    ),
    # Personalize batch inference jobs (control plane).
    Operation(
        _PERSONALIZE, "CreateBatchInferenceJob", "personalize",
        personalize.CreateBatchInferenceJobRequest, personalize.CreateBatchInferenceJobResponse,
        idempotent=False, resource_members=("solutionVersionArn",), priority=Priority.BATCH,
        quota=_CONTROL_WRITE,
        # No idempotency key: after an ambiguous failure a retry first looks for the job.
        create_check=CreateCheck(
            "ListBatchInferenceJobs", ("solutionVersionArn",), "jobName",
            "batchInferenceJobs", "batchInferenceJobArn", "batchInferenceJobArn",
        ),
    ),
    Operation(
        _PERSONALIZE, "DescribeBatchInferenceJob", "personalize",
        personalize.DescribeBatchInferenceJobRequest,
        personalize.DescribeBatchInferenceJobResponse,
        idempotent=True, resource_members=("batchInferenceJobArn",), priority=Priority.BATCH,
        quota=_CONTROL_READ,
        cache=CachePolicy(CacheClass.JOB),
    ),
    Operation(
        _PERSONALIZE, "ListBatchInferenceJobs", "personalize",
        personalize.ListBatchInferenceJobsRequest, personalize.ListBatchInferenceJobsResponse,
        idempotent=True, resource_members=("solutionVersionArn",), priority=Priority.BATCH,
        quota=_CONTROL_READ,
    ),
    # Amazon Machine Learning batch predictions.
    Operation(
        _AML, "CreateBatchPrediction", "machinelearning",
        aml.CreateBatchPredictionRequest, aml.CreateBatchPredictionResponse,
        idempotent=False, resource_members=("MLModelId",), quota=_CONTROL_WRITE,
        idempotency_key="BatchPredictionId", priority=Priority.BATCH,
    ),
    Operation(
        _AML, "GetBatchPrediction", "machinelearning",
        aml.GetBatchPredictionRequest, aml.GetBatchPredictionResponse,
        idempotent=True, resource_members=("BatchPredictionId",), priority=Priority.BATCH,
        quota=_CONTROL_READ,
        cache=CachePolicy(CacheClass.JOB),
    ),
    Operation(
        _AML, "DescribeBatchPredictions", "machinelearning",
        aml.DescribeBatchPredictionsRequest, aml.DescribeBatchPredictionsResponse,
        idempotent=True, priority=Priority.BATCH, quota=_CONTROL_READ,
    ),
    # Bedrock model invocation (batch) jobs.
    Operation(
        _BEDROCK, "CreateModelInvocationJob", "bedrock",
        bedrock.CreateModelInvocationJobRequest, bedrock.CreateModelInvocationJobResponse,
        idempotent=False, resource_members=("modelId",), quota=_CONTROL_WRITE,
        idempotency_key="clientRequestToken", priority=Priority.BATCH,
    ),
    Operation(
        _BEDROCK, "GetModelInvocationJob", "bedrock",
        bedrock.GetModelInvocationJobRequest, bedrock.GetModelInvocationJobResponse,
        idempotent=True, resource_members=("jobIdentifier",), priority=Priority.BATCH,
        quota=_CONTROL_READ,
        cache=CachePolicy(CacheClass.JOB),
    ),
    Operation(
        _BEDROCK, "ListModelInvocationJobs", "bedrock",
        bedrock.ListModelInvocationJobsRequest, bedrock.ListModelInvocationJobsResponse,
        idempotent=True, priority=Priority.BATCH, quota=_CONTROL_READ,
    ),
    Operation(
        _BEDROCK, "StopModelInvocationJob", "bedrock",
        bedrock.StopModelInvocationJobRequest, bedrock.StopModelInvocationJobResponse,
        # A repeated stop of a job already stopping answers ConflictException: not idempotent.
        idempotent=False, resource_members=("jobIdentifier",), priority=Priority.BATCH,
        quota=_CONTROL_WRITE,
    ),
)  # fmt: skip

#: The proto modules of the mirrored services, for reflection and descriptor checks.
PROTO_MODULES = (runtime, personalize, aml, bedrock)
