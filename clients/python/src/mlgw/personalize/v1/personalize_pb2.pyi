import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from mlgw.options.v1 import options_pb2 as _options_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RankingInfluenceType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RANKING_INFLUENCE_TYPE_UNSPECIFIED: _ClassVar[RankingInfluenceType]
    RANKING_INFLUENCE_TYPE_POPULARITY: _ClassVar[RankingInfluenceType]
    RANKING_INFLUENCE_TYPE_FRESHNESS: _ClassVar[RankingInfluenceType]

class BatchInferenceJobMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BATCH_INFERENCE_JOB_MODE_UNSPECIFIED: _ClassVar[BatchInferenceJobMode]
    BATCH_INFERENCE_JOB_MODE_BATCH_INFERENCE: _ClassVar[BatchInferenceJobMode]
    BATCH_INFERENCE_JOB_MODE_THEME_GENERATION: _ClassVar[BatchInferenceJobMode]
RANKING_INFLUENCE_TYPE_UNSPECIFIED: RankingInfluenceType
RANKING_INFLUENCE_TYPE_POPULARITY: RankingInfluenceType
RANKING_INFLUENCE_TYPE_FRESHNESS: RankingInfluenceType
BATCH_INFERENCE_JOB_MODE_UNSPECIFIED: BatchInferenceJobMode
BATCH_INFERENCE_JOB_MODE_BATCH_INFERENCE: BatchInferenceJobMode
BATCH_INFERENCE_JOB_MODE_THEME_GENERATION: BatchInferenceJobMode

class CreateBatchInferenceJobRequest(_message.Message):
    __slots__ = ("job_name", "solution_version_arn", "filter_arn", "num_results", "job_input", "job_output", "role_arn", "batch_inference_job_config", "tags", "batch_inference_job_mode", "theme_generation_config")
    JOB_NAME_FIELD_NUMBER: _ClassVar[int]
    SOLUTION_VERSION_ARN_FIELD_NUMBER: _ClassVar[int]
    FILTER_ARN_FIELD_NUMBER: _ClassVar[int]
    NUM_RESULTS_FIELD_NUMBER: _ClassVar[int]
    JOB_INPUT_FIELD_NUMBER: _ClassVar[int]
    JOB_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    ROLE_ARN_FIELD_NUMBER: _ClassVar[int]
    BATCH_INFERENCE_JOB_CONFIG_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    BATCH_INFERENCE_JOB_MODE_FIELD_NUMBER: _ClassVar[int]
    THEME_GENERATION_CONFIG_FIELD_NUMBER: _ClassVar[int]
    job_name: str
    solution_version_arn: str
    filter_arn: str
    num_results: int
    job_input: BatchInferenceJobInput
    job_output: BatchInferenceJobOutput
    role_arn: str
    batch_inference_job_config: BatchInferenceJobConfig
    tags: _containers.RepeatedCompositeFieldContainer[Tag]
    batch_inference_job_mode: BatchInferenceJobMode
    theme_generation_config: ThemeGenerationConfig
    def __init__(self, job_name: _Optional[str] = ..., solution_version_arn: _Optional[str] = ..., filter_arn: _Optional[str] = ..., num_results: _Optional[int] = ..., job_input: _Optional[_Union[BatchInferenceJobInput, _Mapping]] = ..., job_output: _Optional[_Union[BatchInferenceJobOutput, _Mapping]] = ..., role_arn: _Optional[str] = ..., batch_inference_job_config: _Optional[_Union[BatchInferenceJobConfig, _Mapping]] = ..., tags: _Optional[_Iterable[_Union[Tag, _Mapping]]] = ..., batch_inference_job_mode: _Optional[_Union[BatchInferenceJobMode, str]] = ..., theme_generation_config: _Optional[_Union[ThemeGenerationConfig, _Mapping]] = ...) -> None: ...

class CreateBatchInferenceJobResponse(_message.Message):
    __slots__ = ("batch_inference_job_arn",)
    BATCH_INFERENCE_JOB_ARN_FIELD_NUMBER: _ClassVar[int]
    batch_inference_job_arn: str
    def __init__(self, batch_inference_job_arn: _Optional[str] = ...) -> None: ...

class DescribeBatchInferenceJobRequest(_message.Message):
    __slots__ = ("batch_inference_job_arn",)
    BATCH_INFERENCE_JOB_ARN_FIELD_NUMBER: _ClassVar[int]
    batch_inference_job_arn: str
    def __init__(self, batch_inference_job_arn: _Optional[str] = ...) -> None: ...

class DescribeBatchInferenceJobResponse(_message.Message):
    __slots__ = ("batch_inference_job",)
    BATCH_INFERENCE_JOB_FIELD_NUMBER: _ClassVar[int]
    batch_inference_job: BatchInferenceJob
    def __init__(self, batch_inference_job: _Optional[_Union[BatchInferenceJob, _Mapping]] = ...) -> None: ...

class ListBatchInferenceJobsRequest(_message.Message):
    __slots__ = ("solution_version_arn", "next_token", "max_results")
    SOLUTION_VERSION_ARN_FIELD_NUMBER: _ClassVar[int]
    NEXT_TOKEN_FIELD_NUMBER: _ClassVar[int]
    MAX_RESULTS_FIELD_NUMBER: _ClassVar[int]
    solution_version_arn: str
    next_token: str
    max_results: int
    def __init__(self, solution_version_arn: _Optional[str] = ..., next_token: _Optional[str] = ..., max_results: _Optional[int] = ...) -> None: ...

class ListBatchInferenceJobsResponse(_message.Message):
    __slots__ = ("batch_inference_jobs", "next_token")
    BATCH_INFERENCE_JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_TOKEN_FIELD_NUMBER: _ClassVar[int]
    batch_inference_jobs: _containers.RepeatedCompositeFieldContainer[BatchInferenceJobSummary]
    next_token: str
    def __init__(self, batch_inference_jobs: _Optional[_Iterable[_Union[BatchInferenceJobSummary, _Mapping]]] = ..., next_token: _Optional[str] = ...) -> None: ...

class BatchInferenceJobInput(_message.Message):
    __slots__ = ("s3_data_source",)
    S3_DATA_SOURCE_FIELD_NUMBER: _ClassVar[int]
    s3_data_source: S3DataConfig
    def __init__(self, s3_data_source: _Optional[_Union[S3DataConfig, _Mapping]] = ...) -> None: ...

class S3DataConfig(_message.Message):
    __slots__ = ("path", "kms_key_arn")
    PATH_FIELD_NUMBER: _ClassVar[int]
    KMS_KEY_ARN_FIELD_NUMBER: _ClassVar[int]
    path: str
    kms_key_arn: str
    def __init__(self, path: _Optional[str] = ..., kms_key_arn: _Optional[str] = ...) -> None: ...

class BatchInferenceJobOutput(_message.Message):
    __slots__ = ("s3_data_destination",)
    S3_DATA_DESTINATION_FIELD_NUMBER: _ClassVar[int]
    s3_data_destination: S3DataConfig
    def __init__(self, s3_data_destination: _Optional[_Union[S3DataConfig, _Mapping]] = ...) -> None: ...

class BatchInferenceJobConfig(_message.Message):
    __slots__ = ("item_exploration_config", "ranking_influence")
    class ItemExplorationConfigEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class RankingInfluenceEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    ITEM_EXPLORATION_CONFIG_FIELD_NUMBER: _ClassVar[int]
    RANKING_INFLUENCE_FIELD_NUMBER: _ClassVar[int]
    item_exploration_config: _containers.ScalarMap[str, str]
    ranking_influence: _containers.ScalarMap[str, float]
    def __init__(self, item_exploration_config: _Optional[_Mapping[str, str]] = ..., ranking_influence: _Optional[_Mapping[str, float]] = ...) -> None: ...

class Tag(_message.Message):
    __slots__ = ("tag_key", "tag_value")
    TAG_KEY_FIELD_NUMBER: _ClassVar[int]
    TAG_VALUE_FIELD_NUMBER: _ClassVar[int]
    tag_key: str
    tag_value: str
    def __init__(self, tag_key: _Optional[str] = ..., tag_value: _Optional[str] = ...) -> None: ...

class ThemeGenerationConfig(_message.Message):
    __slots__ = ("fields_for_theme_generation",)
    FIELDS_FOR_THEME_GENERATION_FIELD_NUMBER: _ClassVar[int]
    fields_for_theme_generation: FieldsForThemeGeneration
    def __init__(self, fields_for_theme_generation: _Optional[_Union[FieldsForThemeGeneration, _Mapping]] = ...) -> None: ...

class FieldsForThemeGeneration(_message.Message):
    __slots__ = ("item_name",)
    ITEM_NAME_FIELD_NUMBER: _ClassVar[int]
    item_name: str
    def __init__(self, item_name: _Optional[str] = ...) -> None: ...

class BatchInferenceJob(_message.Message):
    __slots__ = ("job_name", "batch_inference_job_arn", "filter_arn", "failure_reason", "solution_version_arn", "num_results", "job_input", "job_output", "batch_inference_job_config", "role_arn", "batch_inference_job_mode", "theme_generation_config", "status", "creation_date_time", "last_updated_date_time")
    JOB_NAME_FIELD_NUMBER: _ClassVar[int]
    BATCH_INFERENCE_JOB_ARN_FIELD_NUMBER: _ClassVar[int]
    FILTER_ARN_FIELD_NUMBER: _ClassVar[int]
    FAILURE_REASON_FIELD_NUMBER: _ClassVar[int]
    SOLUTION_VERSION_ARN_FIELD_NUMBER: _ClassVar[int]
    NUM_RESULTS_FIELD_NUMBER: _ClassVar[int]
    JOB_INPUT_FIELD_NUMBER: _ClassVar[int]
    JOB_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    BATCH_INFERENCE_JOB_CONFIG_FIELD_NUMBER: _ClassVar[int]
    ROLE_ARN_FIELD_NUMBER: _ClassVar[int]
    BATCH_INFERENCE_JOB_MODE_FIELD_NUMBER: _ClassVar[int]
    THEME_GENERATION_CONFIG_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CREATION_DATE_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_UPDATED_DATE_TIME_FIELD_NUMBER: _ClassVar[int]
    job_name: str
    batch_inference_job_arn: str
    filter_arn: str
    failure_reason: str
    solution_version_arn: str
    num_results: int
    job_input: BatchInferenceJobInput
    job_output: BatchInferenceJobOutput
    batch_inference_job_config: BatchInferenceJobConfig
    role_arn: str
    batch_inference_job_mode: BatchInferenceJobMode
    theme_generation_config: ThemeGenerationConfig
    status: str
    creation_date_time: _timestamp_pb2.Timestamp
    last_updated_date_time: _timestamp_pb2.Timestamp
    def __init__(self, job_name: _Optional[str] = ..., batch_inference_job_arn: _Optional[str] = ..., filter_arn: _Optional[str] = ..., failure_reason: _Optional[str] = ..., solution_version_arn: _Optional[str] = ..., num_results: _Optional[int] = ..., job_input: _Optional[_Union[BatchInferenceJobInput, _Mapping]] = ..., job_output: _Optional[_Union[BatchInferenceJobOutput, _Mapping]] = ..., batch_inference_job_config: _Optional[_Union[BatchInferenceJobConfig, _Mapping]] = ..., role_arn: _Optional[str] = ..., batch_inference_job_mode: _Optional[_Union[BatchInferenceJobMode, str]] = ..., theme_generation_config: _Optional[_Union[ThemeGenerationConfig, _Mapping]] = ..., status: _Optional[str] = ..., creation_date_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_updated_date_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class BatchInferenceJobSummary(_message.Message):
    __slots__ = ("batch_inference_job_arn", "job_name", "status", "creation_date_time", "last_updated_date_time", "failure_reason", "solution_version_arn", "batch_inference_job_mode")
    BATCH_INFERENCE_JOB_ARN_FIELD_NUMBER: _ClassVar[int]
    JOB_NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CREATION_DATE_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_UPDATED_DATE_TIME_FIELD_NUMBER: _ClassVar[int]
    FAILURE_REASON_FIELD_NUMBER: _ClassVar[int]
    SOLUTION_VERSION_ARN_FIELD_NUMBER: _ClassVar[int]
    BATCH_INFERENCE_JOB_MODE_FIELD_NUMBER: _ClassVar[int]
    batch_inference_job_arn: str
    job_name: str
    status: str
    creation_date_time: _timestamp_pb2.Timestamp
    last_updated_date_time: _timestamp_pb2.Timestamp
    failure_reason: str
    solution_version_arn: str
    batch_inference_job_mode: BatchInferenceJobMode
    def __init__(self, batch_inference_job_arn: _Optional[str] = ..., job_name: _Optional[str] = ..., status: _Optional[str] = ..., creation_date_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_updated_date_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., failure_reason: _Optional[str] = ..., solution_version_arn: _Optional[str] = ..., batch_inference_job_mode: _Optional[_Union[BatchInferenceJobMode, str]] = ...) -> None: ...
