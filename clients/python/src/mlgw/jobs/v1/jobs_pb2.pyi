import datetime

from google.longrunning import operations_pb2 as _operations_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from mlgw.bedrock.v1 import bedrock_pb2 as _bedrock_pb2
from mlgw.machinelearning.v1 import machinelearning_pb2 as _machinelearning_pb2
from mlgw.personalize.v1 import personalize_pb2 as _personalize_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Backend(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BACKEND_UNSPECIFIED: _ClassVar[Backend]
    BACKEND_PERSONALIZE: _ClassVar[Backend]
    BACKEND_MACHINE_LEARNING: _ClassVar[Backend]
    BACKEND_BEDROCK: _ClassVar[Backend]

class JobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATE_UNSPECIFIED: _ClassVar[JobState]
    JOB_STATE_QUEUED: _ClassVar[JobState]
    JOB_STATE_VALIDATING: _ClassVar[JobState]
    JOB_STATE_SCHEDULED: _ClassVar[JobState]
    JOB_STATE_RUNNING: _ClassVar[JobState]
    JOB_STATE_SUCCEEDED: _ClassVar[JobState]
    JOB_STATE_PARTIALLY_SUCCEEDED: _ClassVar[JobState]
    JOB_STATE_FAILED: _ClassVar[JobState]
    JOB_STATE_STOPPING: _ClassVar[JobState]
    JOB_STATE_CANCELLED: _ClassVar[JobState]
    JOB_STATE_EXPIRED: _ClassVar[JobState]
BACKEND_UNSPECIFIED: Backend
BACKEND_PERSONALIZE: Backend
BACKEND_MACHINE_LEARNING: Backend
BACKEND_BEDROCK: Backend
JOB_STATE_UNSPECIFIED: JobState
JOB_STATE_QUEUED: JobState
JOB_STATE_VALIDATING: JobState
JOB_STATE_SCHEDULED: JobState
JOB_STATE_RUNNING: JobState
JOB_STATE_SUCCEEDED: JobState
JOB_STATE_PARTIALLY_SUCCEEDED: JobState
JOB_STATE_FAILED: JobState
JOB_STATE_STOPPING: JobState
JOB_STATE_CANCELLED: JobState
JOB_STATE_EXPIRED: JobState

class SubmitBatchInferenceJobRequest(_message.Message):
    __slots__ = ("request", "request_id")
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    request: _personalize_pb2.CreateBatchInferenceJobRequest
    request_id: str
    def __init__(self, request: _Optional[_Union[_personalize_pb2.CreateBatchInferenceJobRequest, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class SubmitBatchPredictionRequest(_message.Message):
    __slots__ = ("request", "request_id")
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    request: _machinelearning_pb2.CreateBatchPredictionRequest
    request_id: str
    def __init__(self, request: _Optional[_Union[_machinelearning_pb2.CreateBatchPredictionRequest, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class SubmitModelInvocationJobRequest(_message.Message):
    __slots__ = ("request", "request_id")
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    request: _bedrock_pb2.CreateModelInvocationJobRequest
    request_id: str
    def __init__(self, request: _Optional[_Union[_bedrock_pb2.CreateModelInvocationJobRequest, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class WatchOperationRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class WatchOperationResponse(_message.Message):
    __slots__ = ("operation",)
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    operation: _operations_pb2.Operation
    def __init__(self, operation: _Optional[_Union[_operations_pb2.Operation, _Mapping]] = ...) -> None: ...

class JobMetadata(_message.Message):
    __slots__ = ("backend", "state", "backend_status", "job_id", "request_id", "queue_position", "submit_time", "start_time", "end_time", "last_change_time", "total_record_count", "processed_record_count", "success_record_count", "error_record_count", "message")
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    BACKEND_STATUS_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    QUEUE_POSITION_FIELD_NUMBER: _ClassVar[int]
    SUBMIT_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_CHANGE_TIME_FIELD_NUMBER: _ClassVar[int]
    TOTAL_RECORD_COUNT_FIELD_NUMBER: _ClassVar[int]
    PROCESSED_RECORD_COUNT_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_RECORD_COUNT_FIELD_NUMBER: _ClassVar[int]
    ERROR_RECORD_COUNT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    backend: Backend
    state: JobState
    backend_status: str
    job_id: str
    request_id: str
    queue_position: int
    submit_time: _timestamp_pb2.Timestamp
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    last_change_time: _timestamp_pb2.Timestamp
    total_record_count: int
    processed_record_count: int
    success_record_count: int
    error_record_count: int
    message: str
    def __init__(self, backend: _Optional[_Union[Backend, str]] = ..., state: _Optional[_Union[JobState, str]] = ..., backend_status: _Optional[str] = ..., job_id: _Optional[str] = ..., request_id: _Optional[str] = ..., queue_position: _Optional[int] = ..., submit_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_change_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., total_record_count: _Optional[int] = ..., processed_record_count: _Optional[int] = ..., success_record_count: _Optional[int] = ..., error_record_count: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...
