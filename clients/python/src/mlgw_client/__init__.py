"""The thin Python client of the ML inference gateway (see clients/python/README.md)."""

from mlgw_client.client import DEFAULT_TIMEOUT, AsyncClient, Client, Tls, service_config, target
from mlgw_client.contract import (
    ErrorReason,
    Priority,
    RequestMetadata,
    ResponseMetadata,
    parse_reason,
    reason_string,
)
from mlgw_client.errors import FieldViolation, GatewayError, QuotaViolation, from_rpc_error

__all__ = [
    "DEFAULT_TIMEOUT",
    "AsyncClient",
    "Client",
    "ErrorReason",
    "FieldViolation",
    "GatewayError",
    "Priority",
    "QuotaViolation",
    "RequestMetadata",
    "ResponseMetadata",
    "Tls",
    "from_rpc_error",
    "parse_reason",
    "reason_string",
    "service_config",
    "target",
]
