"""Connections to the gateway, sync (`Client`) and asyncio (`AsyncClient`).

Every service of the generated `mlgw` package is an attribute named after its proto package
(`client.personalize_runtime`, `client.bedrock`, ...) whose RPCs are snake_case methods taking
the request's fields as keyword arguments:

    with Client("127.0.0.1:50051", api_key=key) as client:
        answer = client.personalize_runtime.get_recommendations(
            campaign_arn=arn, user_id="u-1", num_results=5, cache_control="no-cache"
        )

Services and methods come from the proto descriptors, so RPCs added to the protos (batch,
stream, jobs) appear without code here: a server-streaming RPC returns an iterator (an async
iterator on `AsyncClient`), a client- or bidi-streaming one takes an iterable (async iterable)
of request messages instead of keyword fields. The typed generated stubs stay available
through `client.stub(StubClass)`.
"""

from __future__ import annotations

import asyncio
import importlib
import ipaddress
import pkgutil
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from types import TracebackType
from typing import Any, Self, TypeVar

import grpc
import grpc.aio
import mlgw
from google.longrunning import operations_pb2
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from mlgw.contract.v1 import contract_pb2

from mlgw_client.contract import request_key, wire
from mlgw_client.errors import from_rpc_error, from_status

Metadata = Sequence[tuple[str, str | bytes]]
StubT = TypeVar("StubT")

_AUTHORIZATION = request_key(contract_pb2.REQUEST_METADATA_AUTHORIZATION)
_CACHE_CONTROL = request_key(contract_pb2.REQUEST_METADATA_CACHE_CONTROL)
_PRIORITY = request_key(contract_pb2.REQUEST_METADATA_MLGW_PRIORITY)
_REQUEST_ID = request_key(contract_pb2.REQUEST_METADATA_X_REQUEST_ID)
#: Calls without a timeout of their own get this deadline (seconds).
DEFAULT_TIMEOUT = 10.0


@dataclass(frozen=True)
class Tls:
    """TLS settings: server verification by `root_certificates` (PEM; None: the system's),
    mTLS when `certificate_chain` and `private_key` are given, `server_name` to verify when
    dialling IP addresses."""

    root_certificates: bytes | None = None
    certificate_chain: bytes | None = None
    private_key: bytes | None = None
    server_name: str | None = None


def service_config() -> str:
    """The generated service config: round robin, retries of UNAVAILABLE for idempotent RPCs."""
    return (resources.files(mlgw) / "service_config.json").read_text()


def target(addresses: str | Sequence[str]) -> str:
    """A gRPC target for one address (resolved by DNS: every A record is balanced) or a
    fixed list of IP addresses."""
    if isinstance(addresses, str):
        addresses = [addresses]
    if not addresses:
        raise ValueError("no gateway address")
    if len(addresses) == 1:
        return addresses[0]
    hosts = [_ip_version(address) for address in addresses]
    if len(set(hosts)) != 1 or hosts[0] is None:
        raise ValueError("several addresses must all be IPv4 or all IPv6 literals (host:port)")
    return f"ipv{hosts[0]}:" + ",".join(addresses)


def _ip_version(address: str) -> int | None:
    host = address.rpartition(":")[0].strip("[]")
    try:
        return ipaddress.ip_address(host).version
    except ValueError:
        return None


def _channel_options(tls: Tls | None) -> list[tuple[str, Any]]:
    options: list[tuple[str, Any]] = [
        ("grpc.service_config", service_config()),
        ("grpc.enable_retries", 1),
    ]
    if tls is not None and tls.server_name:
        options.append(("grpc.ssl_target_name_override", tls.server_name))
    return options


def _credentials(tls: Tls) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        root_certificates=tls.root_certificates,
        private_key=tls.private_key,
        certificate_chain=tls.certificate_chain,
    )


@cache
def services() -> dict[str, ServiceDescriptor]:
    """Every service of the generated package, by attribute name (its proto package's), and
    google.longrunning's `operations`, which the gateway serves for jobs."""
    found: dict[str, ServiceDescriptor] = {
        "operations": operations_pb2.DESCRIPTOR.services_by_name["Operations"]
    }
    for module in pkgutil.walk_packages(mlgw.__path__, "mlgw."):
        if module.name.endswith("_pb2"):
            descriptor = importlib.import_module(module.name).DESCRIPTOR
            for service in descriptor.services_by_name.values():
                found[descriptor.package.split(".")[1]] = service
    return found


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class _Base:
    def __init__(self, api_key: str | None, timeout: float | None) -> None:
        self._api_key = api_key
        self._timeout = timeout
        for name, descriptor in services().items():
            setattr(self, name, _Service(self, descriptor))

    def metadata(
        self,
        metadata: Metadata = (),
        *,
        cache_control: str | None = None,
        priority: int | None = None,
        request_id: str | None = None,
    ) -> list[tuple[str, str | bytes]]:
        """A call's metadata: the API key and the contract's per-call keys, then `metadata`."""
        out: list[tuple[str, str | bytes]] = []
        if self._api_key:
            out.append((_AUTHORIZATION, f"Bearer {self._api_key}"))
        if cache_control is not None:
            out.append((_CACHE_CONTROL, cache_control))
        if priority is not None:
            out.append((_PRIORITY, wire(contract_pb2.Priority.DESCRIPTOR, priority)))
        if request_id is not None:
            out.append((_REQUEST_ID, request_id))
        out.extend(metadata)
        return out

    def _multicallable(self, method: MethodDescriptor) -> Any:
        raise NotImplementedError

    def _invoke(self, method: MethodDescriptor, request: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def __getattr__(self, name: str) -> Any:
        # Services are set in __init__; this only makes mypy accept `client.bedrock`.
        raise AttributeError(name)


class _Service:
    """One gateway service: its RPCs as snake_case methods."""

    def __init__(self, client: _Base, descriptor: ServiceDescriptor) -> None:
        self._client = client
        self._methods = {_snake(m.name): m for m in descriptor.methods}
        self.descriptor = descriptor

    def __dir__(self) -> list[str]:
        return sorted(self._methods)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        try:
            method = self._methods[name]
        except KeyError:
            raise AttributeError(f"{self.descriptor.full_name} has no RPC {name!r}") from None
        client = self._client
        # A stream lives as long as its caller wants: the default deadline is for unary calls.
        streaming = method.client_streaming or method.server_streaming
        default_timeout = None if streaming else client._timeout

        def call(
            request: Any = None,
            /,
            *,
            timeout: float | None = None,
            metadata: Metadata = (),
            cache_control: str | None = None,
            priority: int | None = None,
            request_id: str | None = None,
            **fields: Any,
        ) -> Any:
            if request is None and not method.client_streaming:
                request = GetMessageClass(method.input_type)(**fields)
            elif fields:
                raise TypeError("pass either a request message or its fields, not both")
            return client._invoke(
                method,
                request,
                timeout=timeout if timeout is not None else default_timeout,
                metadata=client.metadata(
                    metadata,
                    cache_control=cache_control,
                    priority=priority,
                    request_id=request_id,
                ),
            )

        call.__name__ = name
        call.__doc__ = f"/{self.descriptor.full_name}/{method.name}"
        return call


def _path(method: MethodDescriptor) -> str:
    return f"/{method.containing_service.full_name}/{method.name}"


def _kind(method: MethodDescriptor) -> str:
    client = "stream" if method.client_streaming else "unary"
    server = "stream" if method.server_streaming else "unary"
    return f"{client}_{server}"


def _serializer(method: MethodDescriptor) -> Callable[[Message], bytes]:
    # From the method, not the request: a client-streaming call's request is an iterator.
    return GetMessageClass(method.input_type).SerializeToString


def _deserializer(method: MethodDescriptor) -> Callable[[bytes], Message]:
    return GetMessageClass(method.output_type).FromString


@dataclass(frozen=True)
class Polling:
    """How `wait_operation` polls: python-api-core's defaults (1 s, x1.5, at most 20 s, give
    up after 900 s)."""

    initial: float = 1.0
    multiplier: float = 1.5
    maximum: float = 20.0
    timeout: float = 900.0

    def delays(self) -> Iterator[float]:
        delay = self.initial
        while True:
            yield delay
            delay = min(delay * self.multiplier, self.maximum)


def _finished(operation: operations_pb2.Operation) -> operations_pb2.Operation:
    if operation.HasField("error"):
        raise from_status(operation.error)
    return operation


def _name(operation: str | operations_pb2.Operation) -> str:
    return operation if isinstance(operation, str) else operation.name


class Client(_Base):
    """A blocking connection. RPCs return the response message (a streaming RPC an
    iterator of them) and raise `GatewayError`."""

    def __init__(
        self,
        addresses: str | Sequence[str],
        *,
        tls: Tls | None = None,
        api_key: str | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        super().__init__(api_key, timeout)
        all_options = [*_channel_options(tls), *options]
        self.channel = (
            grpc.secure_channel(target(addresses), _credentials(tls), all_options)
            if tls is not None
            else grpc.insecure_channel(target(addresses), all_options)
        )

    def stub(self, stub_class: Callable[[grpc.Channel], StubT]) -> StubT:
        """A typed generated stub on this connection (no default timeout or API key added:
        pass `metadata=client.metadata()`)."""
        return stub_class(self.channel)

    def _invoke(self, method: MethodDescriptor, request: Any, **kwargs: Any) -> Any:
        factory = getattr(self.channel, _kind(method))
        callable_ = factory(
            _path(method),
            request_serializer=_serializer(method),
            response_deserializer=_deserializer(method),
        )
        try:
            answer = callable_(request, **kwargs)
            return _raising(answer) if method.server_streaming else answer
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None

    def wait_operation(
        self, operation: str | operations_pb2.Operation, polling: Polling = Polling()
    ) -> operations_pb2.Operation:
        """Poll a job's `google.longrunning.Operation` until it is done: its result (unpack
        `response` into the RPC's response type), or `GatewayError` for its `error`;
        TimeoutError after `polling.timeout` seconds."""
        if isinstance(operation, operations_pb2.Operation) and operation.done:
            return _finished(operation)
        deadline = time.monotonic() + polling.timeout
        for delay in polling.delays():
            answer: operations_pb2.Operation = self.operations.get_operation(name=_name(operation))
            if answer.done:
                return _finished(answer)
            left = deadline - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(delay, left))
        raise TimeoutError(f"operation {_name(operation)} not done after {polling.timeout} s")

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _raising(responses: Any) -> Any:
    try:
        yield from responses
    except grpc.RpcError as error:
        raise from_rpc_error(error) from None


class AsyncClient(_Base):
    """An asyncio connection (`grpc.aio`). RPCs are coroutines returning the response
    message (a server-streaming RPC an async iterator) and raise `GatewayError`."""

    def __init__(
        self,
        addresses: str | Sequence[str],
        *,
        tls: Tls | None = None,
        api_key: str | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        super().__init__(api_key, timeout)
        all_options = [*_channel_options(tls), *options]
        self.channel = (
            grpc.aio.secure_channel(target(addresses), _credentials(tls), all_options)
            if tls is not None
            else grpc.aio.insecure_channel(target(addresses), all_options)
        )

    def stub(self, stub_class: Callable[[grpc.aio.Channel], StubT]) -> StubT:
        """A typed generated stub on this connection."""
        return stub_class(self.channel)

    def _invoke(self, method: MethodDescriptor, request: Any, **kwargs: Any) -> Any:
        factory = getattr(self.channel, _kind(method))
        callable_ = factory(
            _path(method),
            request_serializer=_serializer(method),
            response_deserializer=_deserializer(method),
        )
        if method.server_streaming:
            return _araising(callable_(request, **kwargs))
        return _await(callable_(request, **kwargs))

    async def wait_operation(
        self, operation: str | operations_pb2.Operation, polling: Polling = Polling()
    ) -> operations_pb2.Operation:
        """`Client.wait_operation`, without blocking the event loop."""
        if isinstance(operation, operations_pb2.Operation) and operation.done:
            return _finished(operation)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + polling.timeout
        for delay in polling.delays():
            answer: operations_pb2.Operation = await self.operations.get_operation(
                name=_name(operation)
            )
            if answer.done:
                return _finished(answer)
            left = deadline - loop.time()
            if left <= 0:
                break
            await asyncio.sleep(min(delay, left))
        raise TimeoutError(f"operation {_name(operation)} not done after {polling.timeout} s")

    async def close(self) -> None:
        await self.channel.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


async def _await(call: Any) -> Any:
    try:
        return await call
    except grpc.aio.AioRpcError as error:
        raise from_rpc_error(error) from None


async def _araising(call: Any) -> Any:
    try:
        async for response in call:
            yield response
    except grpc.aio.AioRpcError as error:
        raise from_rpc_error(error) from None
