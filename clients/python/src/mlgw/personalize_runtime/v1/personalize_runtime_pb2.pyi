from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetRecommendationsRequest(_message.Message):
    __slots__ = ("campaign_arn", "item_id", "user_id", "num_results", "context", "filter_arn", "filter_values", "recommender_arn", "promotions", "metadata_columns")
    class ContextEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class FilterValuesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class MetadataColumnsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: ColumnNamesList
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[ColumnNamesList, _Mapping]] = ...) -> None: ...
    CAMPAIGN_ARN_FIELD_NUMBER: _ClassVar[int]
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    NUM_RESULTS_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    FILTER_ARN_FIELD_NUMBER: _ClassVar[int]
    FILTER_VALUES_FIELD_NUMBER: _ClassVar[int]
    RECOMMENDER_ARN_FIELD_NUMBER: _ClassVar[int]
    PROMOTIONS_FIELD_NUMBER: _ClassVar[int]
    METADATA_COLUMNS_FIELD_NUMBER: _ClassVar[int]
    campaign_arn: str
    item_id: str
    user_id: str
    num_results: int
    context: _containers.ScalarMap[str, str]
    filter_arn: str
    filter_values: _containers.ScalarMap[str, str]
    recommender_arn: str
    promotions: _containers.RepeatedCompositeFieldContainer[Promotion]
    metadata_columns: _containers.MessageMap[str, ColumnNamesList]
    def __init__(self, campaign_arn: _Optional[str] = ..., item_id: _Optional[str] = ..., user_id: _Optional[str] = ..., num_results: _Optional[int] = ..., context: _Optional[_Mapping[str, str]] = ..., filter_arn: _Optional[str] = ..., filter_values: _Optional[_Mapping[str, str]] = ..., recommender_arn: _Optional[str] = ..., promotions: _Optional[_Iterable[_Union[Promotion, _Mapping]]] = ..., metadata_columns: _Optional[_Mapping[str, ColumnNamesList]] = ...) -> None: ...

class GetRecommendationsResponse(_message.Message):
    __slots__ = ("item_list", "recommendation_id")
    ITEM_LIST_FIELD_NUMBER: _ClassVar[int]
    RECOMMENDATION_ID_FIELD_NUMBER: _ClassVar[int]
    item_list: _containers.RepeatedCompositeFieldContainer[PredictedItem]
    recommendation_id: str
    def __init__(self, item_list: _Optional[_Iterable[_Union[PredictedItem, _Mapping]]] = ..., recommendation_id: _Optional[str] = ...) -> None: ...

class GetPersonalizedRankingRequest(_message.Message):
    __slots__ = ("campaign_arn", "input_list", "user_id", "context", "filter_arn", "filter_values", "metadata_columns")
    class ContextEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class FilterValuesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class MetadataColumnsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: ColumnNamesList
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[ColumnNamesList, _Mapping]] = ...) -> None: ...
    CAMPAIGN_ARN_FIELD_NUMBER: _ClassVar[int]
    INPUT_LIST_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    FILTER_ARN_FIELD_NUMBER: _ClassVar[int]
    FILTER_VALUES_FIELD_NUMBER: _ClassVar[int]
    METADATA_COLUMNS_FIELD_NUMBER: _ClassVar[int]
    campaign_arn: str
    input_list: _containers.RepeatedScalarFieldContainer[str]
    user_id: str
    context: _containers.ScalarMap[str, str]
    filter_arn: str
    filter_values: _containers.ScalarMap[str, str]
    metadata_columns: _containers.MessageMap[str, ColumnNamesList]
    def __init__(self, campaign_arn: _Optional[str] = ..., input_list: _Optional[_Iterable[str]] = ..., user_id: _Optional[str] = ..., context: _Optional[_Mapping[str, str]] = ..., filter_arn: _Optional[str] = ..., filter_values: _Optional[_Mapping[str, str]] = ..., metadata_columns: _Optional[_Mapping[str, ColumnNamesList]] = ...) -> None: ...

class GetPersonalizedRankingResponse(_message.Message):
    __slots__ = ("personalized_ranking", "recommendation_id")
    PERSONALIZED_RANKING_FIELD_NUMBER: _ClassVar[int]
    RECOMMENDATION_ID_FIELD_NUMBER: _ClassVar[int]
    personalized_ranking: _containers.RepeatedCompositeFieldContainer[PredictedItem]
    recommendation_id: str
    def __init__(self, personalized_ranking: _Optional[_Iterable[_Union[PredictedItem, _Mapping]]] = ..., recommendation_id: _Optional[str] = ...) -> None: ...

class GetActionRecommendationsRequest(_message.Message):
    __slots__ = ("campaign_arn", "user_id", "num_results", "filter_arn", "filter_values")
    class FilterValuesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CAMPAIGN_ARN_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    NUM_RESULTS_FIELD_NUMBER: _ClassVar[int]
    FILTER_ARN_FIELD_NUMBER: _ClassVar[int]
    FILTER_VALUES_FIELD_NUMBER: _ClassVar[int]
    campaign_arn: str
    user_id: str
    num_results: int
    filter_arn: str
    filter_values: _containers.ScalarMap[str, str]
    def __init__(self, campaign_arn: _Optional[str] = ..., user_id: _Optional[str] = ..., num_results: _Optional[int] = ..., filter_arn: _Optional[str] = ..., filter_values: _Optional[_Mapping[str, str]] = ...) -> None: ...

class GetActionRecommendationsResponse(_message.Message):
    __slots__ = ("action_list", "recommendation_id")
    ACTION_LIST_FIELD_NUMBER: _ClassVar[int]
    RECOMMENDATION_ID_FIELD_NUMBER: _ClassVar[int]
    action_list: _containers.RepeatedCompositeFieldContainer[PredictedAction]
    recommendation_id: str
    def __init__(self, action_list: _Optional[_Iterable[_Union[PredictedAction, _Mapping]]] = ..., recommendation_id: _Optional[str] = ...) -> None: ...

class Promotion(_message.Message):
    __slots__ = ("name", "percent_promoted_items", "filter_arn", "filter_values")
    class FilterValuesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    PERCENT_PROMOTED_ITEMS_FIELD_NUMBER: _ClassVar[int]
    FILTER_ARN_FIELD_NUMBER: _ClassVar[int]
    FILTER_VALUES_FIELD_NUMBER: _ClassVar[int]
    name: str
    percent_promoted_items: int
    filter_arn: str
    filter_values: _containers.ScalarMap[str, str]
    def __init__(self, name: _Optional[str] = ..., percent_promoted_items: _Optional[int] = ..., filter_arn: _Optional[str] = ..., filter_values: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ColumnNamesList(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, values: _Optional[_Iterable[str]] = ...) -> None: ...

class PredictedItem(_message.Message):
    __slots__ = ("item_id", "score", "promotion_name", "metadata", "reason")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    PROMOTION_NAME_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    score: float
    promotion_name: str
    metadata: _containers.ScalarMap[str, str]
    reason: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, item_id: _Optional[str] = ..., score: _Optional[float] = ..., promotion_name: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ..., reason: _Optional[_Iterable[str]] = ...) -> None: ...

class PredictedAction(_message.Message):
    __slots__ = ("action_id", "score")
    ACTION_ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    action_id: str
    score: float
    def __init__(self, action_id: _Optional[str] = ..., score: _Optional[float] = ...) -> None: ...
