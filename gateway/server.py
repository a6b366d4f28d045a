"""One gateway process: the grpc.aio server, its pipeline, health, reflection and metrics."""

from __future__ import annotations

import asyncio
import logging
import signal
from contextlib import AsyncExitStack
from typing import Any

import grpc
from aiohttp import web
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from gateway import metrics
from gateway.config import Config, ServerConfig
from gateway.jobs import SERVICE_NAMES as JOB_SERVICES
from gateway.jobs import JobService, open_job_service
from gateway.operations import OPERATIONS, Operation
from gateway.pipeline import Handler, Stage, compose
from gateway.pipeline.budget import Budget
from gateway.pipeline.cache import Cache
from gateway.pipeline.coalesce import Coalesce
from gateway.pipeline.global_limits import SharedBuckets, open_shared_buckets
from gateway.pipeline.lease import Lease
from gateway.pipeline.merge import Merge
from gateway.pipeline.overload import Overload
from gateway.pipeline.shared import SharedTier
from gateway.pipeline.validate import Precheck, Validate
from gateway.redis import RedisClient, open_redis
from gateway.security.guard import open_guard
from gateway.security.tls import ReloadingCredentials
from gateway.services import (
    BATCH_SERVICE,
    Capacity,
    Deadlines,
    fanout_handlers,
    method_handlers,
)
from gateway.upstream.clients import open_clients
from gateway.upstream.invoke import Upstream

log = logging.getLogger("gateway.server")


def grpc_options(cfg: ServerConfig) -> list[tuple[str, Any]]:
    """Transport limits; each is documented in README.md ("Transport limits")."""
    ms = 1000
    return [
        # A second process on the same port is an error unless we asked for workers.
        ("grpc.so_reuseport", 1 if cfg.workers > 1 else 0),
        ("grpc.max_receive_message_length", cfg.max_receive_message_bytes),
        ("grpc.max_send_message_length", cfg.max_send_message_bytes),
        ("grpc.max_concurrent_streams", cfg.max_concurrent_streams),
        # C-core's "overload protection" refuses (REFUSED_STREAM -> UNAVAILABLE) a new
        # stream while more stream objects than max_concurrent_streams are allocated, and
        # grpc.aio frees them only after the Python call ends: a client that keeps within
        # the advertised limit still gets refused. Rapid reset stays bounded without it
        # (README "Transport limits").
        ("grpc.http.overload_protection", 0),
        ("grpc.keepalive_time_ms", int(cfg.keepalive_time_seconds * ms)),
        ("grpc.keepalive_timeout_ms", int(cfg.keepalive_timeout_seconds * ms)),
        ("grpc.http2.min_ping_interval_without_data_ms", int(cfg.min_ping_interval_seconds * ms)),
        ("grpc.http2.max_ping_strikes", 2),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.max_connection_idle_ms", int(cfg.max_connection_idle_seconds * ms)),
        ("grpc.max_connection_age_ms", int(cfg.max_connection_age_seconds * ms)),
        ("grpc.max_connection_age_grace_ms", int(cfg.max_connection_age_grace_seconds * ms)),
    ]


class Gateway:
    """Start, serve and drain one gateway process."""

    def __init__(
        self,
        config: Config,
        *,
        worker_index: int = 0,
        credentials: tuple[str, str] | None = None,
        operations: tuple[Operation, ...] = OPERATIONS,
    ) -> None:
        self.config = config
        self.operations = operations
        self.port = 0
        self.metrics_port = 0
        self._worker_index = worker_index
        self._credentials = credentials
        self._stack = AsyncExitStack()
        self._server: grpc.aio.Server | None = None
        self._health = health.aio.HealthServicer()
        # -- caching: the Redis client of the shared cache tier (when [redis] url is set) --
        self._redis: RedisClient | None = None
        # -- rate limits and overload: the shared buckets' Redis (own pool), the stages --
        self._shared_limits: SharedBuckets | None = None
        self.overload: Overload | None = None
        # -- batch jobs as long-running operations (gateway/jobs/) --
        self.jobs: JobService | None = None
        # -- security (gateway/security/): the credentials that follow their files --
        self.tls: ReloadingCredentials | None = None

    def stages(self) -> list[Stage]:
        """The pipeline, first stage first."""
        cfg = self.config
        # -- caching stages: answer from cache, else share identical / merge compatible calls.
        # The cache goes before validation: an entry exists only for a key that a validated
        # request produced, and a key is the whole canonical request, so a hit is a request
        # that already passed; hits skip the validator's work (see gateway/pipeline/cache.py).
        # The precheck (sizes, enum numbers) goes first: a hostile size never gets a key.
        shared = None
        if self._redis is not None:
            shared = SharedTier(self._redis, cfg.redis, cfg.cache.key_prefix)
        cache = Cache(cfg.cache, shared)
        self._stack.push_async_callback(cache.aclose)
        # -- rate limits and overload (gateway/pipeline/overload.py): retry -> breaker ->
        # admission, under the caching stages, so every upstream attempt takes a token; and
        # a peek before the merge window that sheds at once what admission would shed.
        self.overload = Overload(cfg, self._shared_limits)
        self._stack.push_async_callback(self.overload.aclose)
        # -- the budget: below here a call becomes upstream work, which needs time to fit.
        budget = Budget(cfg.upstream.min_upstream_budget_seconds)
        return [
            Precheck(), cache, Validate(), budget, Coalesce(cfg.coalesce),
            # One replica calls the upstream for a key; the others wait for it in Redis.
            Lease(shared, cfg.cache, cfg.coalesce), self.overload.early,
            Merge(cfg.merge),
            *self.overload.stages,
        ]  # fmt: skip

    async def start(self) -> int:
        cfg = self.config
        clients = await open_clients(
            cfg.upstream, {op.upstream for op in self.operations}, self._stack, self._credentials
        )
        self._redis = await open_redis(cfg.redis, self._stack)
        self._shared_limits = await open_shared_buckets(cfg.redis, cfg.limits, self._stack)
        upstream = Upstream(clients, fast_path=cfg.upstream.fast_path)
        stages = self.stages()
        if self.overload is not None:  # create checks list jobs through their own attempt path
            self.overload.bind(upstream.handler)

        pipelines: dict[str, Handler] = {}

        def pipeline(op: Operation) -> Handler:
            # One pipeline per operation, shared by its unary, batch and stream RPCs.
            found = pipelines.get(op.name)
            if found is None:
                found = pipelines[op.name] = compose(op, stages, upstream.handler(op))
            return found

        # No grpc-level maximum_concurrent_rpcs: the edge enforces it, with ErrorInfo.
        server = grpc.aio.server(options=grpc_options(cfg.server))
        deadlines = Deadlines.from_config(cfg.upstream)
        capacity = Capacity(cfg.server.max_concurrent_rpcs)
        guard = open_guard(cfg, self._shared_limits)
        handlers = method_handlers(self.operations, pipeline, deadlines, capacity, guard)
        fanout = fanout_handlers(self.operations, pipeline, deadlines, capacity, cfg.batch, guard)
        if fanout:
            handlers[BATCH_SERVICE] = fanout
        for service, methods in handlers.items():
            server.add_registered_method_handlers(service, methods)
        self.jobs = await open_job_service(
            cfg.jobs, cfg.redis, pipeline, server, self._stack, guard
        )
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        names = [*handlers, *JOB_SERVICES, health.SERVICE_NAME, reflection.SERVICE_NAME]
        reflection.enable_server_reflection(names, server)
        self.port = self._listen(server)
        await server.start()
        self._server = server
        for name in ("", *handlers, *JOB_SERVICES):
            await self._health.set(name, health_pb2.HealthCheckResponse.SERVING)
        await self._start_metrics()
        # Measured from here on: start-up work would read as loop lag and widen the margin.
        deadlines.lag.start()
        self._stack.callback(deadlines.lag.stop)
        log.info("gateway serving", extra={"port": self.port, "worker": self._worker_index})
        return self.port

    def _listen(self, server: grpc.aio.Server) -> int:
        address = f"{self.config.server.host}:{self.config.server.port}"
        tls = self.config.tls
        if tls is None:
            log.warning("no [tls] section: the gRPC port serves plaintext")
            return server.add_insecure_port(address)
        self.tls = ReloadingCredentials(tls)
        return server.add_secure_port(address, self.tls.server_credentials())

    async def _start_metrics(self) -> None:
        cfg = self.config.metrics
        if cfg.port <= 0:
            return

        async def serve_metrics(_: web.Request) -> web.Response:
            return web.Response(body=metrics.exposition(), content_type="text/plain")

        app = web.Application()
        app.router.add_get("/metrics", serve_metrics)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, cfg.host, cfg.port + self._worker_index)
        await site.start()
        self._stack.push_async_callback(runner.cleanup)
        self.metrics_port = cfg.port + self._worker_index

    async def stop(self, grace: float | None = None) -> None:
        """Refuse new calls, let in-flight calls finish within `grace`, release clients."""
        if self._server is not None:
            await self._health.enter_graceful_shutdown()
            grace = self.config.server.grace_seconds if grace is None else grace
            await self._server.stop(grace)
            self._server = None
        await self._stack.aclose()

    async def serve_until_signalled(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await self.start()
        await stop.wait()
        log.info("draining", extra={"grace_seconds": self.config.server.grace_seconds})
        await self.stop()
        log.info("stopped")
