"""Small helpers shared by the test suites."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc_status import rpc_status

M = TypeVar("M", bound=Message)


async def eventually(predicate: Callable[[], bool | Awaitable[bool]], within: float = 5.0) -> None:
    """Wait for a condition another process or task reaches (bounded, never a fixed sleep).

    The emulator and the gateway expose state (counters, health) but no event to wait on, so
    this polls; it fails the test with TimeoutError if the condition never holds.
    """
    async with asyncio.timeout(within):
        while True:
            outcome = predicate()
            if await outcome if isinstance(outcome, Awaitable) else outcome:
                return
            await asyncio.sleep(0.01)


def details(error: grpc.aio.AioRpcError, kind: type[M]) -> list[M]:
    """The google.rpc detail messages of one type carried by a failed call."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None, "no google.rpc.Status in the trailers"
    found = []
    for box in status.details:
        message = kind()
        if box.Unpack(message):
            found.append(message)
    return found


def error_info(error: grpc.aio.AioRpcError) -> Any:
    (info,) = details(error, error_details_pb2.ErrorInfo)
    return info
