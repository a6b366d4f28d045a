"""Batch jobs as long-running operations (README "Batch jobs as long-running operations").

`open_job_service` builds the store (SQLite in `[jobs] state_dir`, or Redis when `[redis] url`
is set), the service and its gRPC servicers; gateway/server.py registers them.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Any

import grpc
from google.longrunning import operations_pb2_grpc
from mlgw.jobs.v1 import jobs_pb2, jobs_pb2_grpc

from gateway.cache_config import RedisConfig
from gateway.jobs.calls import JobCalls
from gateway.jobs.service import JobService
from gateway.jobs.servicers import JobsServicer, OperationsServicer, TolerantServer
from gateway.jobs.store import JobStore, SqliteStore
from gateway.jobs_config import JobsConfig
from gateway.operations import Operation
from gateway.pipeline import Handler
from gateway.security.guard import Guard

__all__ = ["SERVICE_NAMES", "JobService", "open_job_service"]

#: The services `register` adds (for health and reflection).
SERVICE_NAMES = (
    "google.longrunning.Operations",
    jobs_pb2.DESCRIPTOR.services_by_name["JobsService"].full_name,
)


async def open_store(cfg: JobsConfig, redis: RedisConfig) -> JobStore:
    if redis.url:
        from gateway.jobs.redis_store import RedisStore

        return await RedisStore.open(redis, cfg.store_timeout_seconds, cfg.key_prefix)
    return SqliteStore(cfg.state_dir)


async def open_job_service(
    cfg: JobsConfig,
    redis: RedisConfig,
    pipeline: Callable[[Operation], Handler],
    server: grpc.aio.Server,
    stack: AsyncExitStack,
    guard: Guard | None = None,
) -> JobService:
    """Start the job service (closed with `stack`) and add its servicers to `server`."""
    store = await open_store(cfg, redis)
    service = JobService(cfg, store, JobCalls(pipeline, cfg.upstream_timeout_seconds))
    service.start()
    stack.push_async_callback(service.aclose)
    # Through TolerantServer: a corrupt body gets MALFORMED_REQUEST, not grpc's UNKNOWN.
    tolerant: Any = TolerantServer(server)
    operations_pb2_grpc.add_OperationsServicer_to_server(
        OperationsServicer(service, guard), tolerant
    )
    jobs_pb2_grpc.add_JobsServiceServicer_to_server(JobsServicer(service, guard), tolerant)
    return service
