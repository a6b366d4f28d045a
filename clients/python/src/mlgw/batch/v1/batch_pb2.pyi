from google.rpc import status_pb2 as _status_pb2
from mlgw.personalize_runtime.v1 import personalize_runtime_pb2 as _personalize_runtime_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BatchGetRecommendationsRequest(_message.Message):
    __slots__ = ("requests",)
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[_personalize_runtime_pb2.GetRecommendationsRequest]
    def __init__(self, requests: _Optional[_Iterable[_Union[_personalize_runtime_pb2.GetRecommendationsRequest, _Mapping]]] = ...) -> None: ...

class BatchGetRecommendationsResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[GetRecommendationsResult]
    def __init__(self, results: _Optional[_Iterable[_Union[GetRecommendationsResult, _Mapping]]] = ...) -> None: ...

class GetRecommendationsResult(_message.Message):
    __slots__ = ("response", "error", "metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    response: _personalize_runtime_pb2.GetRecommendationsResponse
    error: _status_pb2.Status
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, response: _Optional[_Union[_personalize_runtime_pb2.GetRecommendationsResponse, _Mapping]] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class BatchGetPersonalizedRankingRequest(_message.Message):
    __slots__ = ("requests",)
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[_personalize_runtime_pb2.GetPersonalizedRankingRequest]
    def __init__(self, requests: _Optional[_Iterable[_Union[_personalize_runtime_pb2.GetPersonalizedRankingRequest, _Mapping]]] = ...) -> None: ...

class BatchGetPersonalizedRankingResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[GetPersonalizedRankingResult]
    def __init__(self, results: _Optional[_Iterable[_Union[GetPersonalizedRankingResult, _Mapping]]] = ...) -> None: ...

class GetPersonalizedRankingResult(_message.Message):
    __slots__ = ("response", "error", "metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    response: _personalize_runtime_pb2.GetPersonalizedRankingResponse
    error: _status_pb2.Status
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, response: _Optional[_Union[_personalize_runtime_pb2.GetPersonalizedRankingResponse, _Mapping]] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class BatchGetActionRecommendationsRequest(_message.Message):
    __slots__ = ("requests",)
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[_personalize_runtime_pb2.GetActionRecommendationsRequest]
    def __init__(self, requests: _Optional[_Iterable[_Union[_personalize_runtime_pb2.GetActionRecommendationsRequest, _Mapping]]] = ...) -> None: ...

class BatchGetActionRecommendationsResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[GetActionRecommendationsResult]
    def __init__(self, results: _Optional[_Iterable[_Union[GetActionRecommendationsResult, _Mapping]]] = ...) -> None: ...

class GetActionRecommendationsResult(_message.Message):
    __slots__ = ("response", "error", "metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    response: _personalize_runtime_pb2.GetActionRecommendationsResponse
    error: _status_pb2.Status
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, response: _Optional[_Union[_personalize_runtime_pb2.GetActionRecommendationsResponse, _Mapping]] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class StreamRecommendationsRequest(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[StreamRecommendationsEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[StreamRecommendationsEntry, _Mapping]]] = ...) -> None: ...

class StreamRecommendationsEntry(_message.Message):
    __slots__ = ("id", "get_recommendations", "get_personalized_ranking", "get_action_recommendations")
    ID_FIELD_NUMBER: _ClassVar[int]
    GET_RECOMMENDATIONS_FIELD_NUMBER: _ClassVar[int]
    GET_PERSONALIZED_RANKING_FIELD_NUMBER: _ClassVar[int]
    GET_ACTION_RECOMMENDATIONS_FIELD_NUMBER: _ClassVar[int]
    id: str
    get_recommendations: _personalize_runtime_pb2.GetRecommendationsRequest
    get_personalized_ranking: _personalize_runtime_pb2.GetPersonalizedRankingRequest
    get_action_recommendations: _personalize_runtime_pb2.GetActionRecommendationsRequest
    def __init__(self, id: _Optional[str] = ..., get_recommendations: _Optional[_Union[_personalize_runtime_pb2.GetRecommendationsRequest, _Mapping]] = ..., get_personalized_ranking: _Optional[_Union[_personalize_runtime_pb2.GetPersonalizedRankingRequest, _Mapping]] = ..., get_action_recommendations: _Optional[_Union[_personalize_runtime_pb2.GetActionRecommendationsRequest, _Mapping]] = ...) -> None: ...

class StreamRecommendationsResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[StreamRecommendationsResult]
    def __init__(self, results: _Optional[_Iterable[_Union[StreamRecommendationsResult, _Mapping]]] = ...) -> None: ...

class StreamRecommendationsResult(_message.Message):
    __slots__ = ("id", "get_recommendations", "get_personalized_ranking", "get_action_recommendations", "error", "metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    GET_RECOMMENDATIONS_FIELD_NUMBER: _ClassVar[int]
    GET_PERSONALIZED_RANKING_FIELD_NUMBER: _ClassVar[int]
    GET_ACTION_RECOMMENDATIONS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    id: str
    get_recommendations: _personalize_runtime_pb2.GetRecommendationsResponse
    get_personalized_ranking: _personalize_runtime_pb2.GetPersonalizedRankingResponse
    get_action_recommendations: _personalize_runtime_pb2.GetActionRecommendationsResponse
    error: _status_pb2.Status
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, id: _Optional[str] = ..., get_recommendations: _Optional[_Union[_personalize_runtime_pb2.GetRecommendationsResponse, _Mapping]] = ..., get_personalized_ranking: _Optional[_Union[_personalize_runtime_pb2.GetPersonalizedRankingResponse, _Mapping]] = ..., get_action_recommendations: _Optional[_Union[_personalize_runtime_pb2.GetActionRecommendationsResponse, _Mapping]] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...
