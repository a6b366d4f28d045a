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

class S3InputFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    S3_INPUT_FORMAT_UNSPECIFIED: _ClassVar[S3InputFormat]
    S3_INPUT_FORMAT_JSONL: _ClassVar[S3InputFormat]

class ModelInvocationType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODEL_INVOCATION_TYPE_UNSPECIFIED: _ClassVar[ModelInvocationType]
    MODEL_INVOCATION_TYPE_INVOKE_MODEL: _ClassVar[ModelInvocationType]
    MODEL_INVOCATION_TYPE_CONVERSE: _ClassVar[ModelInvocationType]

class ModelInvocationJobStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODEL_INVOCATION_JOB_STATUS_UNSPECIFIED: _ClassVar[ModelInvocationJobStatus]
    MODEL_INVOCATION_JOB_STATUS_SUBMITTED: _ClassVar[ModelInvocationJobStatus]
    MODEL_INVOCATION_JOB_STATUS_IN_PROGRESS: _ClassVar[ModelInvocationJobStatus]
    MODEL_INVOCATION_JOB_STATUS_COMPLETED: _ClassVar[ModelInvocationJobStatus]
    MODEL_INVOCATION_JOB_STATUS_FAILED: _ClassVar[ModelInvocationJobStatus]
    MODEL_INVOCATION_JOB_STATUS_STOPPING: _ClassVar[ModelInvocationJobStatus]
    MODEL_INVOCATION_JOB_STATUS_STOPPED: _ClassVar[ModelInvocationJobStatus]
    MODEL_INVOCATION_JOB_STATUS_PARTIALLY_COMPLETED: _ClassVar[ModelInvocationJobStatus]
    MODEL_INVOCATION_JOB_STATUS_EXPIRED: _ClassVar[ModelInvocationJobStatus]
    MODEL_INVOCATION_JOB_STATUS_VALIDATING: _ClassVar[ModelInvocationJobStatus]
    MODEL_INVOCATION_JOB_STATUS_SCHEDULED: _ClassVar[ModelInvocationJobStatus]

class SortJobsBy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SORT_JOBS_BY_UNSPECIFIED: _ClassVar[SortJobsBy]
    SORT_JOBS_BY_CREATION_TIME: _ClassVar[SortJobsBy]

class SortOrder(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SORT_ORDER_UNSPECIFIED: _ClassVar[SortOrder]
    SORT_ORDER_ASCENDING: _ClassVar[SortOrder]
    SORT_ORDER_DESCENDING: _ClassVar[SortOrder]
S3_INPUT_FORMAT_UNSPECIFIED: S3InputFormat
S3_INPUT_FORMAT_JSONL: S3InputFormat
MODEL_INVOCATION_TYPE_UNSPECIFIED: ModelInvocationType
MODEL_INVOCATION_TYPE_INVOKE_MODEL: ModelInvocationType
MODEL_INVOCATION_TYPE_CONVERSE: ModelInvocationType
MODEL_INVOCATION_JOB_STATUS_UNSPECIFIED: ModelInvocationJobStatus
MODEL_INVOCATION_JOB_STATUS_SUBMITTED: ModelInvocationJobStatus
MODEL_INVOCATION_JOB_STATUS_IN_PROGRESS: ModelInvocationJobStatus
MODEL_INVOCATION_JOB_STATUS_COMPLETED: ModelInvocationJobStatus
MODEL_INVOCATION_JOB_STATUS_FAILED: ModelInvocationJobStatus
MODEL_INVOCATION_JOB_STATUS_STOPPING: ModelInvocationJobStatus
MODEL_INVOCATION_JOB_STATUS_STOPPED: ModelInvocationJobStatus
MODEL_INVOCATION_JOB_STATUS_PARTIALLY_COMPLETED: ModelInvocationJobStatus
MODEL_INVOCATION_JOB_STATUS_EXPIRED: ModelInvocationJobStatus
MODEL_INVOCATION_JOB_STATUS_VALIDATING: ModelInvocationJobStatus
MODEL_INVOCATION_JOB_STATUS_SCHEDULED: ModelInvocationJobStatus
SORT_JOBS_BY_UNSPECIFIED: SortJobsBy
SORT_JOBS_BY_CREATION_TIME: SortJobsBy
SORT_ORDER_UNSPECIFIED: SortOrder
SORT_ORDER_ASCENDING: SortOrder
SORT_ORDER_DESCENDING: SortOrder

class CreateModelInvocationJobRequest(_message.Message):
    __slots__ = ("job_name", "role_arn", "client_request_token", "model_id", "input_data_config", "output_data_config", "vpc_config", "timeout_duration_in_hours", "tags", "model_invocation_type")
    JOB_NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_ARN_FIELD_NUMBER: _ClassVar[int]
    CLIENT_REQUEST_TOKEN_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    INPUT_DATA_CONFIG_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_DATA_CONFIG_FIELD_NUMBER: _ClassVar[int]
    VPC_CONFIG_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_DURATION_IN_HOURS_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    MODEL_INVOCATION_TYPE_FIELD_NUMBER: _ClassVar[int]
    job_name: str
    role_arn: str
    client_request_token: str
    model_id: str
    input_data_config: ModelInvocationJobInputDataConfig
    output_data_config: ModelInvocationJobOutputDataConfig
    vpc_config: VpcConfig
    timeout_duration_in_hours: int
    tags: _containers.RepeatedCompositeFieldContainer[Tag]
    model_invocation_type: ModelInvocationType
    def __init__(self, job_name: _Optional[str] = ..., role_arn: _Optional[str] = ..., client_request_token: _Optional[str] = ..., model_id: _Optional[str] = ..., input_data_config: _Optional[_Union[ModelInvocationJobInputDataConfig, _Mapping]] = ..., output_data_config: _Optional[_Union[ModelInvocationJobOutputDataConfig, _Mapping]] = ..., vpc_config: _Optional[_Union[VpcConfig, _Mapping]] = ..., timeout_duration_in_hours: _Optional[int] = ..., tags: _Optional[_Iterable[_Union[Tag, _Mapping]]] = ..., model_invocation_type: _Optional[_Union[ModelInvocationType, str]] = ...) -> None: ...

class CreateModelInvocationJobResponse(_message.Message):
    __slots__ = ("job_arn",)
    JOB_ARN_FIELD_NUMBER: _ClassVar[int]
    job_arn: str
    def __init__(self, job_arn: _Optional[str] = ...) -> None: ...

class GetModelInvocationJobRequest(_message.Message):
    __slots__ = ("job_identifier",)
    JOB_IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    job_identifier: str
    def __init__(self, job_identifier: _Optional[str] = ...) -> None: ...

class GetModelInvocationJobResponse(_message.Message):
    __slots__ = ("job_arn", "job_name", "model_id", "client_request_token", "role_arn", "status", "message", "submit_time", "last_modified_time", "end_time", "input_data_config", "output_data_config", "vpc_config", "timeout_duration_in_hours", "job_expiration_time", "model_invocation_type", "total_record_count", "processed_record_count", "success_record_count", "error_record_count")
    JOB_ARN_FIELD_NUMBER: _ClassVar[int]
    JOB_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_REQUEST_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ROLE_ARN_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    SUBMIT_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_MODIFIED_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    INPUT_DATA_CONFIG_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_DATA_CONFIG_FIELD_NUMBER: _ClassVar[int]
    VPC_CONFIG_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_DURATION_IN_HOURS_FIELD_NUMBER: _ClassVar[int]
    JOB_EXPIRATION_TIME_FIELD_NUMBER: _ClassVar[int]
    MODEL_INVOCATION_TYPE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_RECORD_COUNT_FIELD_NUMBER: _ClassVar[int]
    PROCESSED_RECORD_COUNT_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_RECORD_COUNT_FIELD_NUMBER: _ClassVar[int]
    ERROR_RECORD_COUNT_FIELD_NUMBER: _ClassVar[int]
    job_arn: str
    job_name: str
    model_id: str
    client_request_token: str
    role_arn: str
    status: ModelInvocationJobStatus
    message: str
    submit_time: _timestamp_pb2.Timestamp
    last_modified_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    input_data_config: ModelInvocationJobInputDataConfig
    output_data_config: ModelInvocationJobOutputDataConfig
    vpc_config: VpcConfig
    timeout_duration_in_hours: int
    job_expiration_time: _timestamp_pb2.Timestamp
    model_invocation_type: ModelInvocationType
    total_record_count: int
    processed_record_count: int
    success_record_count: int
    error_record_count: int
    def __init__(self, job_arn: _Optional[str] = ..., job_name: _Optional[str] = ..., model_id: _Optional[str] = ..., client_request_token: _Optional[str] = ..., role_arn: _Optional[str] = ..., status: _Optional[_Union[ModelInvocationJobStatus, str]] = ..., message: _Optional[str] = ..., submit_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_modified_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., input_data_config: _Optional[_Union[ModelInvocationJobInputDataConfig, _Mapping]] = ..., output_data_config: _Optional[_Union[ModelInvocationJobOutputDataConfig, _Mapping]] = ..., vpc_config: _Optional[_Union[VpcConfig, _Mapping]] = ..., timeout_duration_in_hours: _Optional[int] = ..., job_expiration_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., model_invocation_type: _Optional[_Union[ModelInvocationType, str]] = ..., total_record_count: _Optional[int] = ..., processed_record_count: _Optional[int] = ..., success_record_count: _Optional[int] = ..., error_record_count: _Optional[int] = ...) -> None: ...

class ListModelInvocationJobsRequest(_message.Message):
    __slots__ = ("submit_time_after", "submit_time_before", "status_equals", "name_contains", "max_results", "next_token", "sort_by", "sort_order")
    SUBMIT_TIME_AFTER_FIELD_NUMBER: _ClassVar[int]
    SUBMIT_TIME_BEFORE_FIELD_NUMBER: _ClassVar[int]
    STATUS_EQUALS_FIELD_NUMBER: _ClassVar[int]
    NAME_CONTAINS_FIELD_NUMBER: _ClassVar[int]
    MAX_RESULTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SORT_BY_FIELD_NUMBER: _ClassVar[int]
    SORT_ORDER_FIELD_NUMBER: _ClassVar[int]
    submit_time_after: _timestamp_pb2.Timestamp
    submit_time_before: _timestamp_pb2.Timestamp
    status_equals: ModelInvocationJobStatus
    name_contains: str
    max_results: int
    next_token: str
    sort_by: SortJobsBy
    sort_order: SortOrder
    def __init__(self, submit_time_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., submit_time_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., status_equals: _Optional[_Union[ModelInvocationJobStatus, str]] = ..., name_contains: _Optional[str] = ..., max_results: _Optional[int] = ..., next_token: _Optional[str] = ..., sort_by: _Optional[_Union[SortJobsBy, str]] = ..., sort_order: _Optional[_Union[SortOrder, str]] = ...) -> None: ...

class ListModelInvocationJobsResponse(_message.Message):
    __slots__ = ("next_token", "invocation_job_summaries")
    NEXT_TOKEN_FIELD_NUMBER: _ClassVar[int]
    INVOCATION_JOB_SUMMARIES_FIELD_NUMBER: _ClassVar[int]
    next_token: str
    invocation_job_summaries: _containers.RepeatedCompositeFieldContainer[ModelInvocationJobSummary]
    def __init__(self, next_token: _Optional[str] = ..., invocation_job_summaries: _Optional[_Iterable[_Union[ModelInvocationJobSummary, _Mapping]]] = ...) -> None: ...

class StopModelInvocationJobRequest(_message.Message):
    __slots__ = ("job_identifier",)
    JOB_IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    job_identifier: str
    def __init__(self, job_identifier: _Optional[str] = ...) -> None: ...

class StopModelInvocationJobResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ModelInvocationJobInputDataConfig(_message.Message):
    __slots__ = ("s3_input_data_config",)
    S3_INPUT_DATA_CONFIG_FIELD_NUMBER: _ClassVar[int]
    s3_input_data_config: ModelInvocationJobS3InputDataConfig
    def __init__(self, s3_input_data_config: _Optional[_Union[ModelInvocationJobS3InputDataConfig, _Mapping]] = ...) -> None: ...

class ModelInvocationJobS3InputDataConfig(_message.Message):
    __slots__ = ("s3_input_format", "s3_uri", "s3_bucket_owner")
    S3_INPUT_FORMAT_FIELD_NUMBER: _ClassVar[int]
    S3_URI_FIELD_NUMBER: _ClassVar[int]
    S3_BUCKET_OWNER_FIELD_NUMBER: _ClassVar[int]
    s3_input_format: S3InputFormat
    s3_uri: str
    s3_bucket_owner: str
    def __init__(self, s3_input_format: _Optional[_Union[S3InputFormat, str]] = ..., s3_uri: _Optional[str] = ..., s3_bucket_owner: _Optional[str] = ...) -> None: ...

class ModelInvocationJobOutputDataConfig(_message.Message):
    __slots__ = ("s3_output_data_config",)
    S3_OUTPUT_DATA_CONFIG_FIELD_NUMBER: _ClassVar[int]
    s3_output_data_config: ModelInvocationJobS3OutputDataConfig
    def __init__(self, s3_output_data_config: _Optional[_Union[ModelInvocationJobS3OutputDataConfig, _Mapping]] = ...) -> None: ...

class ModelInvocationJobS3OutputDataConfig(_message.Message):
    __slots__ = ("s3_uri", "s3_encryption_key_id", "s3_bucket_owner")
    S3_URI_FIELD_NUMBER: _ClassVar[int]
    S3_ENCRYPTION_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    S3_BUCKET_OWNER_FIELD_NUMBER: _ClassVar[int]
    s3_uri: str
    s3_encryption_key_id: str
    s3_bucket_owner: str
    def __init__(self, s3_uri: _Optional[str] = ..., s3_encryption_key_id: _Optional[str] = ..., s3_bucket_owner: _Optional[str] = ...) -> None: ...

class VpcConfig(_message.Message):
    __slots__ = ("subnet_ids", "security_group_ids")
    SUBNET_IDS_FIELD_NUMBER: _ClassVar[int]
    SECURITY_GROUP_IDS_FIELD_NUMBER: _ClassVar[int]
    subnet_ids: _containers.RepeatedScalarFieldContainer[str]
    security_group_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, subnet_ids: _Optional[_Iterable[str]] = ..., security_group_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class Tag(_message.Message):
    __slots__ = ("key", "value")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: str
    def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class ModelInvocationJobSummary(_message.Message):
    __slots__ = ("job_arn", "job_name", "model_id", "client_request_token", "role_arn", "status", "message", "submit_time", "last_modified_time", "end_time", "input_data_config", "output_data_config", "vpc_config", "timeout_duration_in_hours", "job_expiration_time", "model_invocation_type", "total_record_count", "processed_record_count", "success_record_count", "error_record_count")
    JOB_ARN_FIELD_NUMBER: _ClassVar[int]
    JOB_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_REQUEST_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ROLE_ARN_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    SUBMIT_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_MODIFIED_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    INPUT_DATA_CONFIG_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_DATA_CONFIG_FIELD_NUMBER: _ClassVar[int]
    VPC_CONFIG_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_DURATION_IN_HOURS_FIELD_NUMBER: _ClassVar[int]
    JOB_EXPIRATION_TIME_FIELD_NUMBER: _ClassVar[int]
    MODEL_INVOCATION_TYPE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_RECORD_COUNT_FIELD_NUMBER: _ClassVar[int]
    PROCESSED_RECORD_COUNT_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_RECORD_COUNT_FIELD_NUMBER: _ClassVar[int]
    ERROR_RECORD_COUNT_FIELD_NUMBER: _ClassVar[int]
    job_arn: str
    job_name: str
    model_id: str
    client_request_token: str
    role_arn: str
    status: ModelInvocationJobStatus
    message: str
    submit_time: _timestamp_pb2.Timestamp
    last_modified_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    input_data_config: ModelInvocationJobInputDataConfig
    output_data_config: ModelInvocationJobOutputDataConfig
    vpc_config: VpcConfig
    timeout_duration_in_hours: int
    job_expiration_time: _timestamp_pb2.Timestamp
    model_invocation_type: ModelInvocationType
    total_record_count: int
    processed_record_count: int
    success_record_count: int
    error_record_count: int
    def __init__(self, job_arn: _Optional[str] = ..., job_name: _Optional[str] = ..., model_id: _Optional[str] = ..., client_request_token: _Optional[str] = ..., role_arn: _Optional[str] = ..., status: _Optional[_Union[ModelInvocationJobStatus, str]] = ..., message: _Optional[str] = ..., submit_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_modified_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., input_data_config: _Optional[_Union[ModelInvocationJobInputDataConfig, _Mapping]] = ..., output_data_config: _Optional[_Union[ModelInvocationJobOutputDataConfig, _Mapping]] = ..., vpc_config: _Optional[_Union[VpcConfig, _Mapping]] = ..., timeout_duration_in_hours: _Optional[int] = ..., job_expiration_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., model_invocation_type: _Optional[_Union[ModelInvocationType, str]] = ..., total_record_count: _Optional[int] = ..., processed_record_count: _Optional[int] = ..., success_record_count: _Optional[int] = ..., error_record_count: _Optional[int] = ...) -> None: ...
