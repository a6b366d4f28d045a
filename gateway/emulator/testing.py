"""Helpers for tests that drive the emulator with real aiobotocore clients."""

from __future__ import annotations

import functools
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession

__all__ = ["client_for"]


@functools.cache
def _session() -> Any:
    # One session per process: it caches the loaded service models, which makes every
    # client after the first much cheaper to create.
    return AioSession()


def client_for(endpoint_url: str, service: str, *, validate: bool = True, **config: Any) -> Any:
    """An aiobotocore client context manager pointed at ``endpoint_url``.

    Retries are off, as in the gateway, so every error surfaces. Note the key: in
    botocore's default ("legacy") retry mode ``{"max_attempts": 1}`` means one *retry*
    (two attempts); ``total_max_attempts`` counts the first attempt too.
    ``validate=False`` turns off botocore's client-side parameter validation, to show
    what the emulator itself rejects. Extra keyword arguments go to ``AioConfig``.
    """
    cfg = AioConfig(retries={"total_max_attempts": 1}, parameter_validation=validate, **config)
    return _session().create_client(
        service,
        region_name="us-east-1",
        endpoint_url=endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=cfg,
    )
