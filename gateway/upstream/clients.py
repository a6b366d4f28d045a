"""One long-lived aiobotocore client per AWS service.

Clients own connection pools and resolved credentials, so they are created once per
process at start-up (after any fork) and closed at shutdown; creating one per request costs
~200 ms and hammers the credential providers (aiobotocore #970, #1494).
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AsyncExitStack
from functools import cache
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession

from gateway.config import UpstreamConfig

#: Used when neither the config nor the environment/profile names a region.
DEFAULT_REGION = "us-east-1"


def client_config(cfg: UpstreamConfig) -> AioConfig:
    return AioConfig(
        max_pool_connections=cfg.max_pool_connections,
        connect_timeout=cfg.connect_timeout_seconds,
        read_timeout=cfg.read_timeout_seconds,
        # The gateway owns retries so that its limiter and retry budget see every attempt.
        retries={"total_max_attempts": 1, "mode": "standard"},
        # Requests are validated against the same model before they get here.
        parameter_validation=False,
        tcp_keepalive=True,
        warm_up_loader_caches=True,
    )


@cache
def _session() -> AioSession:
    # One per process: it holds the loaded service models and the credential resolver, so a
    # restart of the gateway within a process (tests, reloads) reuses both.
    return AioSession()


async def open_clients(
    cfg: UpstreamConfig,
    services: Iterable[str],
    stack: AsyncExitStack,
    credentials: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """Create the clients inside `stack`; `credentials` overrides the chain (emulator only)."""
    session = _session()
    region = cfg.region or session.get_config_variable("region") or DEFAULT_REGION
    config = client_config(cfg)
    clients: dict[str, Any] = {}
    for service in sorted(set(services)):
        kwargs: dict[str, Any] = {"region_name": region, "config": config}
        endpoint = cfg.endpoints.get(service) or cfg.endpoint_url
        if endpoint:  # otherwise botocore resolves AWS_ENDPOINT_URL(_<SERVICE>) itself
            kwargs["endpoint_url"] = endpoint
        if credentials is not None:
            kwargs["aws_access_key_id"], kwargs["aws_secret_access_key"] = credentials
        clients[service] = await stack.enter_async_context(session.create_client(service, **kwargs))
    return clients
