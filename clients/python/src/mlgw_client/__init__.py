"""The thin Python client of the ML inference gateway (see clients/python/README.md)."""

from mlgw_client.client import (
    DEFAULT_TIMEOUT,
    AsyncClient,
    Client,
    Polling,
    Tls,
    service_config,
    target,
)
from mlgw_client.contract import (
    ErrorReason,
    Priority,
    RequestMetadata,
    ResponseMetadata,
    parse_reason,
    reason_string,
)
from mlgw_client.errors import (
    FieldViolation,
    GatewayError,
    QuotaViolation,
    from_rpc_error,
    from_status,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "AsyncClient",
    "Client",
    "ErrorReason",
    "FieldViolation",
    "GatewayError",
    "Polling",
    "Priority",
    "QuotaViolation",
    "RequestMetadata",
    "ResponseMetadata",
    "Tls",
    "from_rpc_error",
    "from_status",
    "parse_reason",
    "reason_string",
    "service_config",
    "target",
]
