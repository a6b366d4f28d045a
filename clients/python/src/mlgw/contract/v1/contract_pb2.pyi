from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

DESCRIPTOR: _descriptor.FileDescriptor

class ErrorReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ERROR_REASON_UNSPECIFIED: _ClassVar[ErrorReason]
    ERROR_REASON_INVALID_REQUEST: _ClassVar[ErrorReason]
    ERROR_REASON_MALFORMED_REQUEST: _ClassVar[ErrorReason]
    ERROR_REASON_INTERNAL: _ClassVar[ErrorReason]
    ERROR_REASON_OVERLOADED: _ClassVar[ErrorReason]
    ERROR_REASON_DEADLINE_EXCEEDED: _ClassVar[ErrorReason]
    ERROR_REASON_RATE_LIMITED: _ClassVar[ErrorReason]
    ERROR_REASON_CIRCUIT_OPEN: _ClassVar[ErrorReason]
    ERROR_REASON_UPSTREAM_TIMEOUT: _ClassVar[ErrorReason]
    ERROR_REASON_UPSTREAM_BAD_RESPONSE: _ClassVar[ErrorReason]
    ERROR_REASON_UPSTREAM_INVALID_INPUT: _ClassVar[ErrorReason]
    ERROR_REASON_UPSTREAM_VALIDATION: _ClassVar[ErrorReason]
    ERROR_REASON_INVALID_NEXT_TOKEN: _ClassVar[ErrorReason]
    ERROR_REASON_TOO_MANY_TAGS: _ClassVar[ErrorReason]
    ERROR_REASON_RESOURCE_NOT_FOUND: _ClassVar[ErrorReason]
    ERROR_REASON_RESOURCE_ALREADY_EXISTS: _ClassVar[ErrorReason]
    ERROR_REASON_IDEMPOTENT_PARAMETER_MISMATCH: _ClassVar[ErrorReason]
    ERROR_REASON_CONFLICT: _ClassVar[ErrorReason]
    ERROR_REASON_RESOURCE_IN_USE: _ClassVar[ErrorReason]
    ERROR_REASON_LIMIT_EXCEEDED: _ClassVar[ErrorReason]
    ERROR_REASON_SERVICE_QUOTA_EXCEEDED: _ClassVar[ErrorReason]
    ERROR_REASON_UPSTREAM_ACCESS_DENIED: _ClassVar[ErrorReason]
    ERROR_REASON_UPSTREAM_AUTH_FAILED: _ClassVar[ErrorReason]
    ERROR_REASON_UPSTREAM_INTERNAL: _ClassVar[ErrorReason]
    ERROR_REASON_UPSTREAM_UNAVAILABLE: _ClassVar[ErrorReason]
    ERROR_REASON_UPSTREAM_THROTTLED: _ClassVar[ErrorReason]
    ERROR_REASON_UPSTREAM_UNKNOWN_ERROR: _ClassVar[ErrorReason]
    ERROR_REASON_UPSTREAM_NO_CREDENTIALS: _ClassVar[ErrorReason]
    ERROR_REASON_UPSTREAM_CONNECTION_FAILED: _ClassVar[ErrorReason]
    ERROR_REASON_UPSTREAM_CLIENT_ERROR: _ClassVar[ErrorReason]

class RequestMetadata(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REQUEST_METADATA_UNSPECIFIED: _ClassVar[RequestMetadata]
    REQUEST_METADATA_CACHE_CONTROL: _ClassVar[RequestMetadata]
    REQUEST_METADATA_X_REQUEST_ID: _ClassVar[RequestMetadata]
    REQUEST_METADATA_MLGW_PRIORITY: _ClassVar[RequestMetadata]
    REQUEST_METADATA_AUTHORIZATION: _ClassVar[RequestMetadata]

class ResponseMetadata(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RESPONSE_METADATA_UNSPECIFIED: _ClassVar[ResponseMetadata]
    RESPONSE_METADATA_MLGW_CACHE: _ClassVar[ResponseMetadata]
    RESPONSE_METADATA_MLGW_CACHE_TIER: _ClassVar[ResponseMetadata]
    RESPONSE_METADATA_MLGW_CACHE_AGE: _ClassVar[ResponseMetadata]
    RESPONSE_METADATA_MLGW_CACHE_STALE: _ClassVar[ResponseMetadata]
    RESPONSE_METADATA_MLGW_COALESCED: _ClassVar[ResponseMetadata]
    RESPONSE_METADATA_MLGW_MERGED: _ClassVar[ResponseMetadata]
    RESPONSE_METADATA_GRPC_STATUS_DETAILS_BIN: _ClassVar[ResponseMetadata]

class Priority(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRIORITY_UNSPECIFIED: _ClassVar[Priority]
    PRIORITY_INTERACTIVE: _ClassVar[Priority]
    PRIORITY_BATCH: _ClassVar[Priority]

class CacheStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CACHE_STATUS_UNSPECIFIED: _ClassVar[CacheStatus]
    CACHE_STATUS_HIT: _ClassVar[CacheStatus]
    CACHE_STATUS_MISS: _ClassVar[CacheStatus]
    CACHE_STATUS_STALE: _ClassVar[CacheStatus]
    CACHE_STATUS_BYPASS: _ClassVar[CacheStatus]

class CacheTier(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CACHE_TIER_UNSPECIFIED: _ClassVar[CacheTier]
    CACHE_TIER_LOCAL: _ClassVar[CacheTier]
    CACHE_TIER_SHARED: _ClassVar[CacheTier]

class CacheStale(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CACHE_STALE_UNSPECIFIED: _ClassVar[CacheStale]
    CACHE_STALE_WHILE_REVALIDATE: _ClassVar[CacheStale]
    CACHE_STALE_IF_ERROR: _ClassVar[CacheStale]
ERROR_REASON_UNSPECIFIED: ErrorReason
ERROR_REASON_INVALID_REQUEST: ErrorReason
ERROR_REASON_MALFORMED_REQUEST: ErrorReason
ERROR_REASON_INTERNAL: ErrorReason
ERROR_REASON_OVERLOADED: ErrorReason
ERROR_REASON_DEADLINE_EXCEEDED: ErrorReason
ERROR_REASON_RATE_LIMITED: ErrorReason
ERROR_REASON_CIRCUIT_OPEN: ErrorReason
ERROR_REASON_UPSTREAM_TIMEOUT: ErrorReason
ERROR_REASON_UPSTREAM_BAD_RESPONSE: ErrorReason
ERROR_REASON_UPSTREAM_INVALID_INPUT: ErrorReason
ERROR_REASON_UPSTREAM_VALIDATION: ErrorReason
ERROR_REASON_INVALID_NEXT_TOKEN: ErrorReason
ERROR_REASON_TOO_MANY_TAGS: ErrorReason
ERROR_REASON_RESOURCE_NOT_FOUND: ErrorReason
ERROR_REASON_RESOURCE_ALREADY_EXISTS: ErrorReason
ERROR_REASON_IDEMPOTENT_PARAMETER_MISMATCH: ErrorReason
ERROR_REASON_CONFLICT: ErrorReason
ERROR_REASON_RESOURCE_IN_USE: ErrorReason
ERROR_REASON_LIMIT_EXCEEDED: ErrorReason
ERROR_REASON_SERVICE_QUOTA_EXCEEDED: ErrorReason
ERROR_REASON_UPSTREAM_ACCESS_DENIED: ErrorReason
ERROR_REASON_UPSTREAM_AUTH_FAILED: ErrorReason
ERROR_REASON_UPSTREAM_INTERNAL: ErrorReason
ERROR_REASON_UPSTREAM_UNAVAILABLE: ErrorReason
ERROR_REASON_UPSTREAM_THROTTLED: ErrorReason
ERROR_REASON_UPSTREAM_UNKNOWN_ERROR: ErrorReason
ERROR_REASON_UPSTREAM_NO_CREDENTIALS: ErrorReason
ERROR_REASON_UPSTREAM_CONNECTION_FAILED: ErrorReason
ERROR_REASON_UPSTREAM_CLIENT_ERROR: ErrorReason
REQUEST_METADATA_UNSPECIFIED: RequestMetadata
REQUEST_METADATA_CACHE_CONTROL: RequestMetadata
REQUEST_METADATA_X_REQUEST_ID: RequestMetadata
REQUEST_METADATA_MLGW_PRIORITY: RequestMetadata
REQUEST_METADATA_AUTHORIZATION: RequestMetadata
RESPONSE_METADATA_UNSPECIFIED: ResponseMetadata
RESPONSE_METADATA_MLGW_CACHE: ResponseMetadata
RESPONSE_METADATA_MLGW_CACHE_TIER: ResponseMetadata
RESPONSE_METADATA_MLGW_CACHE_AGE: ResponseMetadata
RESPONSE_METADATA_MLGW_CACHE_STALE: ResponseMetadata
RESPONSE_METADATA_MLGW_COALESCED: ResponseMetadata
RESPONSE_METADATA_MLGW_MERGED: ResponseMetadata
RESPONSE_METADATA_GRPC_STATUS_DETAILS_BIN: ResponseMetadata
PRIORITY_UNSPECIFIED: Priority
PRIORITY_INTERACTIVE: Priority
PRIORITY_BATCH: Priority
CACHE_STATUS_UNSPECIFIED: CacheStatus
CACHE_STATUS_HIT: CacheStatus
CACHE_STATUS_MISS: CacheStatus
CACHE_STATUS_STALE: CacheStatus
CACHE_STATUS_BYPASS: CacheStatus
CACHE_TIER_UNSPECIFIED: CacheTier
CACHE_TIER_LOCAL: CacheTier
CACHE_TIER_SHARED: CacheTier
CACHE_STALE_UNSPECIFIED: CacheStale
CACHE_STALE_WHILE_REVALIDATE: CacheStale
CACHE_STALE_IF_ERROR: CacheStale
