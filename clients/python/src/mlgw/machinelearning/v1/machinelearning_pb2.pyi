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

class EntityStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ENTITY_STATUS_UNSPECIFIED: _ClassVar[EntityStatus]
    ENTITY_STATUS_PENDING: _ClassVar[EntityStatus]
    ENTITY_STATUS_INPROGRESS: _ClassVar[EntityStatus]
    ENTITY_STATUS_FAILED: _ClassVar[EntityStatus]
    ENTITY_STATUS_COMPLETED: _ClassVar[EntityStatus]
    ENTITY_STATUS_DELETED: _ClassVar[EntityStatus]

class BatchPredictionFilterVariable(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BATCH_PREDICTION_FILTER_VARIABLE_UNSPECIFIED: _ClassVar[BatchPredictionFilterVariable]
    BATCH_PREDICTION_FILTER_VARIABLE_CREATED_AT: _ClassVar[BatchPredictionFilterVariable]
    BATCH_PREDICTION_FILTER_VARIABLE_LAST_UPDATED_AT: _ClassVar[BatchPredictionFilterVariable]
    BATCH_PREDICTION_FILTER_VARIABLE_STATUS: _ClassVar[BatchPredictionFilterVariable]
    BATCH_PREDICTION_FILTER_VARIABLE_NAME: _ClassVar[BatchPredictionFilterVariable]
    BATCH_PREDICTION_FILTER_VARIABLE_IAM_USER: _ClassVar[BatchPredictionFilterVariable]
    BATCH_PREDICTION_FILTER_VARIABLE_ML_MODEL_ID: _ClassVar[BatchPredictionFilterVariable]
    BATCH_PREDICTION_FILTER_VARIABLE_DATA_SOURCE_ID: _ClassVar[BatchPredictionFilterVariable]
    BATCH_PREDICTION_FILTER_VARIABLE_DATA_URI: _ClassVar[BatchPredictionFilterVariable]

class SortOrder(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SORT_ORDER_UNSPECIFIED: _ClassVar[SortOrder]
    SORT_ORDER_ASC: _ClassVar[SortOrder]
    SORT_ORDER_DSC: _ClassVar[SortOrder]
ENTITY_STATUS_UNSPECIFIED: EntityStatus
ENTITY_STATUS_PENDING: EntityStatus
ENTITY_STATUS_INPROGRESS: EntityStatus
ENTITY_STATUS_FAILED: EntityStatus
ENTITY_STATUS_COMPLETED: EntityStatus
ENTITY_STATUS_DELETED: EntityStatus
BATCH_PREDICTION_FILTER_VARIABLE_UNSPECIFIED: BatchPredictionFilterVariable
BATCH_PREDICTION_FILTER_VARIABLE_CREATED_AT: BatchPredictionFilterVariable
BATCH_PREDICTION_FILTER_VARIABLE_LAST_UPDATED_AT: BatchPredictionFilterVariable
BATCH_PREDICTION_FILTER_VARIABLE_STATUS: BatchPredictionFilterVariable
BATCH_PREDICTION_FILTER_VARIABLE_NAME: BatchPredictionFilterVariable
BATCH_PREDICTION_FILTER_VARIABLE_IAM_USER: BatchPredictionFilterVariable
BATCH_PREDICTION_FILTER_VARIABLE_ML_MODEL_ID: BatchPredictionFilterVariable
BATCH_PREDICTION_FILTER_VARIABLE_DATA_SOURCE_ID: BatchPredictionFilterVariable
BATCH_PREDICTION_FILTER_VARIABLE_DATA_URI: BatchPredictionFilterVariable
SORT_ORDER_UNSPECIFIED: SortOrder
SORT_ORDER_ASC: SortOrder
SORT_ORDER_DSC: SortOrder

class CreateBatchPredictionRequest(_message.Message):
    __slots__ = ("batch_prediction_id", "batch_prediction_name", "ml_model_id", "batch_prediction_data_source_id", "output_uri")
    BATCH_PREDICTION_ID_FIELD_NUMBER: _ClassVar[int]
    BATCH_PREDICTION_NAME_FIELD_NUMBER: _ClassVar[int]
    ML_MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    BATCH_PREDICTION_DATA_SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_URI_FIELD_NUMBER: _ClassVar[int]
    batch_prediction_id: str
    batch_prediction_name: str
    ml_model_id: str
    batch_prediction_data_source_id: str
    output_uri: str
    def __init__(self, batch_prediction_id: _Optional[str] = ..., batch_prediction_name: _Optional[str] = ..., ml_model_id: _Optional[str] = ..., batch_prediction_data_source_id: _Optional[str] = ..., output_uri: _Optional[str] = ...) -> None: ...

class CreateBatchPredictionResponse(_message.Message):
    __slots__ = ("batch_prediction_id",)
    BATCH_PREDICTION_ID_FIELD_NUMBER: _ClassVar[int]
    batch_prediction_id: str
    def __init__(self, batch_prediction_id: _Optional[str] = ...) -> None: ...

class GetBatchPredictionRequest(_message.Message):
    __slots__ = ("batch_prediction_id",)
    BATCH_PREDICTION_ID_FIELD_NUMBER: _ClassVar[int]
    batch_prediction_id: str
    def __init__(self, batch_prediction_id: _Optional[str] = ...) -> None: ...

class GetBatchPredictionResponse(_message.Message):
    __slots__ = ("batch_prediction_id", "ml_model_id", "batch_prediction_data_source_id", "input_data_location_s3", "created_by_iam_user", "created_at", "last_updated_at", "name", "status", "output_uri", "log_uri", "message", "compute_time", "finished_at", "started_at", "total_record_count", "invalid_record_count")
    BATCH_PREDICTION_ID_FIELD_NUMBER: _ClassVar[int]
    ML_MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    BATCH_PREDICTION_DATA_SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    INPUT_DATA_LOCATION_S3_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_IAM_USER_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_URI_FIELD_NUMBER: _ClassVar[int]
    LOG_URI_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_TIME_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    TOTAL_RECORD_COUNT_FIELD_NUMBER: _ClassVar[int]
    INVALID_RECORD_COUNT_FIELD_NUMBER: _ClassVar[int]
    batch_prediction_id: str
    ml_model_id: str
    batch_prediction_data_source_id: str
    input_data_location_s3: str
    created_by_iam_user: str
    created_at: _timestamp_pb2.Timestamp
    last_updated_at: _timestamp_pb2.Timestamp
    name: str
    status: EntityStatus
    output_uri: str
    log_uri: str
    message: str
    compute_time: int
    finished_at: _timestamp_pb2.Timestamp
    started_at: _timestamp_pb2.Timestamp
    total_record_count: int
    invalid_record_count: int
    def __init__(self, batch_prediction_id: _Optional[str] = ..., ml_model_id: _Optional[str] = ..., batch_prediction_data_source_id: _Optional[str] = ..., input_data_location_s3: _Optional[str] = ..., created_by_iam_user: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., name: _Optional[str] = ..., status: _Optional[_Union[EntityStatus, str]] = ..., output_uri: _Optional[str] = ..., log_uri: _Optional[str] = ..., message: _Optional[str] = ..., compute_time: _Optional[int] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., total_record_count: _Optional[int] = ..., invalid_record_count: _Optional[int] = ...) -> None: ...

class DescribeBatchPredictionsRequest(_message.Message):
    __slots__ = ("filter_variable", "eq", "gt", "lt", "ge", "le", "ne", "prefix", "sort_order", "next_token", "limit")
    FILTER_VARIABLE_FIELD_NUMBER: _ClassVar[int]
    EQ_FIELD_NUMBER: _ClassVar[int]
    GT_FIELD_NUMBER: _ClassVar[int]
    LT_FIELD_NUMBER: _ClassVar[int]
    GE_FIELD_NUMBER: _ClassVar[int]
    LE_FIELD_NUMBER: _ClassVar[int]
    NE_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    SORT_ORDER_FIELD_NUMBER: _ClassVar[int]
    NEXT_TOKEN_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    filter_variable: BatchPredictionFilterVariable
    eq: str
    gt: str
    lt: str
    ge: str
    le: str
    ne: str
    prefix: str
    sort_order: SortOrder
    next_token: str
    limit: int
    def __init__(self, filter_variable: _Optional[_Union[BatchPredictionFilterVariable, str]] = ..., eq: _Optional[str] = ..., gt: _Optional[str] = ..., lt: _Optional[str] = ..., ge: _Optional[str] = ..., le: _Optional[str] = ..., ne: _Optional[str] = ..., prefix: _Optional[str] = ..., sort_order: _Optional[_Union[SortOrder, str]] = ..., next_token: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class DescribeBatchPredictionsResponse(_message.Message):
    __slots__ = ("results", "next_token")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_TOKEN_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[BatchPrediction]
    next_token: str
    def __init__(self, results: _Optional[_Iterable[_Union[BatchPrediction, _Mapping]]] = ..., next_token: _Optional[str] = ...) -> None: ...

class BatchPrediction(_message.Message):
    __slots__ = ("batch_prediction_id", "ml_model_id", "batch_prediction_data_source_id", "input_data_location_s3", "created_by_iam_user", "created_at", "last_updated_at", "name", "status", "output_uri", "message", "compute_time", "finished_at", "started_at", "total_record_count", "invalid_record_count")
    BATCH_PREDICTION_ID_FIELD_NUMBER: _ClassVar[int]
    ML_MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    BATCH_PREDICTION_DATA_SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    INPUT_DATA_LOCATION_S3_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_IAM_USER_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_URI_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_TIME_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    TOTAL_RECORD_COUNT_FIELD_NUMBER: _ClassVar[int]
    INVALID_RECORD_COUNT_FIELD_NUMBER: _ClassVar[int]
    batch_prediction_id: str
    ml_model_id: str
    batch_prediction_data_source_id: str
    input_data_location_s3: str
    created_by_iam_user: str
    created_at: _timestamp_pb2.Timestamp
    last_updated_at: _timestamp_pb2.Timestamp
    name: str
    status: EntityStatus
    output_uri: str
    message: str
    compute_time: int
    finished_at: _timestamp_pb2.Timestamp
    started_at: _timestamp_pb2.Timestamp
    total_record_count: int
    invalid_record_count: int
    def __init__(self, batch_prediction_id: _Optional[str] = ..., ml_model_id: _Optional[str] = ..., batch_prediction_data_source_id: _Optional[str] = ..., input_data_location_s3: _Optional[str] = ..., created_by_iam_user: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., name: _Optional[str] = ..., status: _Optional[_Union[EntityStatus, str]] = ..., output_uri: _Optional[str] = ..., message: _Optional[str] = ..., compute_time: _Optional[int] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., total_record_count: _Optional[int] = ..., invalid_record_count: _Optional[int] = ...) -> None: ...
