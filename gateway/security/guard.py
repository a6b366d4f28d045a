"""The edge's security checks in the order they run: identify, authorize, charge.

`Guard` is what gateway/services.py and the job servicers call; without `[auth]` the edge
has no guard at all (`open_guard` returns None) and pays nothing."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from google.protobuf.message import Message

from gateway import metrics
from gateway.config import Config
from gateway.errors import GatewayError, PermissionDenied, Unauthenticated
from gateway.pipeline.global_limits import SharedBuckets
from gateway.security import audit
from gateway.security.authz import resources_of
from gateway.security.identity import Authenticator, Caller
from gateway.security.quotas import Quotas

log = logging.getLogger("gateway.security")


class Guard:
    def __init__(self, cfg: Config, shared: SharedBuckets | None) -> None:
        self._auth = Authenticator(cfg.auth)
        self.open_services = frozenset(cfg.auth.open_services)
        processes = cfg.limits.replicas * cfg.server.workers
        prefix, lease = cfg.limits.redis_key_prefix, cfg.auth.stream_lease_seconds
        self.quotas = Quotas(shared, prefix, processes, lease)

    def identify(self, metadata: Mapping[str, str], context: Any, rpc: str) -> Caller:
        try:
            return self._auth.identify(metadata, context)
        except Unauthenticated:
            self.rejected(None, rpc, "", Unauthenticated.code.name, "UNAUTHENTICATED")
            raise

    def check_rpc(self, caller: Caller, rpc: str) -> None:
        if not caller.rights.rpc(rpc):
            raise self.denied(caller, rpc, "")

    def check_request(self, caller: Caller, rpc: str, request: Message) -> None:
        """PERMISSION_DENIED for the first resource of `request` the caller may not use."""
        denied = caller.rights.request(request)
        if denied is not None:
            raise self.denied(caller, rpc, denied)

    def entry_error(self, caller: Caller, rpc: str, request: Message) -> GatewayError | None:
        """A batch or stream entry's refusal, as the value its status is made from."""
        if not caller.rights.rpc(rpc):
            return self.denied(caller, rpc, "")
        denied = caller.rights.request(request)
        return None if denied is None else self.denied(caller, rpc, denied)

    def denied(self, caller: Caller, rpc: str, resource: str) -> PermissionDenied:
        self.rejected(caller, rpc, resource, PermissionDenied.code.name, "PERMISSION_DENIED")
        return PermissionDenied(caller.name, rpc)

    async def charge(self, caller: Caller, rpc: str, cost: int = 1) -> int:
        """Tokens taken (see `Quotas.charge`). A refusal is counted, not audited: a caller
        over its quota sends many, and the audit log must not be the cost of a flood."""
        try:
            return await self.quotas.charge(caller, cost)
        except GatewayError as exc:
            metrics.auth_rejections(exc.reason, caller.name).inc()
            raise

    async def open_stream(self, caller: Caller) -> str | None:
        """The stream's lease (see `Quotas.open_stream`); close it with
        `quotas.close_stream` on every path."""
        try:
            return await self.quotas.open_stream(caller)
        except GatewayError as exc:
            metrics.auth_rejections(exc.reason, caller.name).inc()
            raise

    @staticmethod
    def rejected(caller: Caller | None, rpc: str, resource: str, outcome: str, reason: str) -> None:
        name = caller.name if caller is not None else ""
        metrics.auth_rejections(reason, name).inc()
        audit.record(name or None, rpc, resource, outcome)


def open_guard(cfg: Config, shared: SharedBuckets | None) -> Guard | None:
    """The guard, or None (anonymous callers) without `[auth]`; says which at start."""
    if not cfg.auth.enabled:
        log.warning("no [auth] callers configured: every caller is anonymous and unlimited")
        return None
    return Guard(cfg, shared)


def first_resource(request: Message) -> str:
    found = resources_of(request)
    return found[0] if found else ""


async def admit(
    guard: Guard | None, context: Any, rpc: str, request: Message | None = None
) -> Caller | None:
    """Identify, authorize and charge one RPC served outside the edge's generic handlers
    (the job service's); None for anonymous callers."""
    if guard is None:
        return None
    metadata: dict[str, str] = {}
    for key, value in context.invocation_metadata() or ():
        if isinstance(value, str) and key not in metadata:
            metadata[key] = value
    caller = guard.identify(metadata, context, rpc)
    guard.check_rpc(caller, rpc)
    if request is not None:
        guard.check_request(caller, rpc, request)
    await guard.charge(caller, rpc)
    return caller
