"""The emulator: one aiohttp server answering four AWS services on one port.

A request goes: admin prefix? -> SigV4 presence check (-> SigV4 verification, only if
``[auth] credentials`` are configured; see ``signing.py``) -> route (X-Amz-Target for
JSON 1.1, method + path for rest-json) -> count -> decode -> faults (TPS limit, latency,
injected error) -> model-driven validation -> operation -> response in AWS's wire shape.

aiohttp's low-level ``web.Server`` is used instead of an ``Application``: routing is
ours anyway (it must match raw, still-percent-encoded paths, since botocore encodes "/"
in an ARN label as %2F), and skipping the router and middlewares is measurably faster.
``handler_cancellation=True`` makes a client disconnect cancel the handler, which is
how abandoned requests are counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import json
import logging
import os
import socket
import struct
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

import botocore.session
from aiohttp import web
from aiohttp.web_request import BaseRequest

from gateway.emulator.admin import PREFIX, Admin
from gateway.emulator.aml_jobs import AmlJobs
from gateway.emulator.bedrock_jobs import BedrockJobs
from gateway.emulator.catalog import Catalog
from gateway.emulator.config import EmulatorConfig
from gateway.emulator.faults import FaultConfig, FaultInjector
from gateway.emulator.jobs import Clock, wall_clock
from gateway.emulator.personalize_jobs import PersonalizeJobs
from gateway.emulator.protocol import (
    AwsError,
    decode_http_members,
    encode_output,
    error_body,
    error_status,
)
from gateway.emulator.routing import SCOPE, OpSpec, Router, load_operations
from gateway.emulator.runtime import PersonalizeRuntime
from gateway.emulator.signing import SigV4Verifier
from gateway.emulator.stats import Stats
from gateway.emulator.validation import Validator

__all__ = ["Emulator"]

_log = logging.getLogger("gateway.emulator")

Handler = Callable[[dict[str, Any]], "bytes | dict[str, Any]"]
_LINGER_RST = struct.pack("ii", 1, 0)
# Request ids are UUID-shaped like AWS's, but a random per-process prefix plus a counter
# instead of uuid4(), which costs several microseconds per response on the hot path.
_ID_PREFIX = os.urandom(10).hex()
_ID_PREFIX = f"{_ID_PREFIX[:8]}-{_ID_PREFIX[8:12]}-{_ID_PREFIX[12:16]}-{_ID_PREFIX[16:20]}-"
_id_counter = itertools.count(1)


def _request_id() -> str:
    return f"{_ID_PREFIX}{next(_id_counter):012x}"


@functools.cache
def _compiled() -> tuple[Router, Mapping[str, Validator]]:
    """Model loading and validator compilation, once per process (immutable results)."""
    specs = load_operations(botocore.session.get_session())
    return Router(specs), {s.name: Validator(s.input_shape, s.validation_code) for s in specs}


def _reset_connection(request: BaseRequest) -> None:
    """Drop the connection unanswered; SO_LINGER 0 makes the close an RST, like a reset."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):  # best effort: a FIN also drops the request
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
    transport.abort()


class Emulator:
    """An AWS look-alike for Personalize (runtime + batch), Amazon ML and Bedrock batch.

    Args:
        config: the whole configuration (defaults: built-in catalog, no faults).
        clock: epoch-seconds clock for job timestamps and state (inject a
            ``ManualClock`` to drive lifecycles in tests).
        job_step_seconds: overrides ``config.jobs.step_seconds``.
        monotonic: the clock the TPS token buckets use.
    """

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        clock: Clock | None = None,
        job_step_seconds: float | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        cfg = config or EmulatorConfig()
        if job_step_seconds is not None:
            cfg = cfg.with_job_step(job_step_seconds)
        self.config = cfg
        self.clock: Clock = clock or wall_clock
        self.catalog = Catalog(cfg.catalog, cfg.server)
        self.runtime = PersonalizeRuntime(self.catalog, cfg.catalog)
        self.personalize_jobs = PersonalizeJobs(self.catalog, cfg.jobs, self.clock)
        self.aml_jobs = AmlJobs(cfg.jobs, self.clock, cfg.server.account_id)
        self.bedrock_jobs = BedrockJobs(
            cfg.jobs, self.clock, cfg.server.region, cfg.server.account_id
        )
        self._stats = Stats()
        self._monotonic = monotonic
        self._faults = FaultInjector(cfg.faults, monotonic)
        self._router, self._validators = _compiled()
        # None unless credentials are configured: the default path pays one None check.
        self._verifier = SigV4Verifier(cfg.auth.credentials) if cfg.auth.credentials else None
        # The SigV4 service name of each botocore service (personalize-runtime signs as
        # "personalize"); a credential scope naming another service is rejected, as AWS does.
        self._signing_names = {
            s.service: s.model.service_model.signing_name for s in self._router.by_name.values()
        }
        self._handlers: dict[str, Handler] = {
            "GetRecommendations": self.runtime.get_recommendations,
            "GetPersonalizedRanking": self.runtime.get_personalized_ranking,
            "GetActionRecommendations": self.runtime.get_action_recommendations,
            "CreateBatchInferenceJob": self.personalize_jobs.create,
            "DescribeBatchInferenceJob": self.personalize_jobs.describe,
            "ListBatchInferenceJobs": self.personalize_jobs.list,
            "CreateBatchPrediction": self.aml_jobs.create,
            "GetBatchPrediction": self.aml_jobs.get,
            "DescribeBatchPredictions": self.aml_jobs.describe,
            "CreateModelInvocationJob": self.bedrock_jobs.create,
            "GetModelInvocationJob": self.bedrock_jobs.get,
            "ListModelInvocationJobs": self.bedrock_jobs.list,
            "StopModelInvocationJob": self.bedrock_jobs.stop,
        }
        missing = {op for ops in SCOPE.values() for op in ops} - set(self._handlers)
        assert not missing, f"no handler for {missing}"
        self._admin = Admin(
            stats=self.stats,
            reset_stats=self.reset_stats,
            get_faults=lambda: self._faults.config,
            set_faults=self.set_faults,
            catalog=self.catalog.describe,
            reset_jobs=self.reset_jobs,
        )
        self._runner: web.ServerRunner | None = None
        self.host = ""
        self.port = 0
        self.endpoint_url = ""

    # -- lifecycle -----------------------------------------------------------------

    async def start(
        self, host: str = "127.0.0.1", port: int = 0, *, reuse_port: bool = False
    ) -> None:
        server = web.Server(
            self._handle,
            handler_cancellation=True,
            access_log=None,  # no per-request logging on the hot path
        )
        runner = web.ServerRunner(server, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, host, port, reuse_port=reuse_port or None, backlog=1024)
        await site.start()
        self._runner = runner
        self.host = host
        self.port = int(runner.addresses[0][1])
        self.endpoint_url = f"http://{host}:{self.port}"
        _log.info("emulator listening on %s", self.endpoint_url)

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> Emulator:
        if self._runner is None:
            await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- in-process control (the admin API calls the same methods) ------------------

    def stats(self) -> dict[str, Any]:
        return self._stats.snapshot()

    def reset_stats(self) -> None:
        self._stats.reset()

    @property
    def faults(self) -> FaultConfig:
        return self._faults.config

    def set_faults(self, faults: FaultConfig | Mapping[str, Any]) -> None:
        """Replace the fault config; token buckets and the fault RNG start afresh."""
        if not isinstance(faults, FaultConfig):
            faults = FaultConfig.from_mapping(faults)
        self._faults = FaultInjector(faults, self._monotonic)

    def patch_faults(self, patch: Mapping[str, Any]) -> None:
        self.set_faults(self._faults.config.patched(patch))

    def reset_jobs(self) -> None:
        self.personalize_jobs.reset()
        self.aml_jobs.reset()
        self.bedrock_jobs.reset()

    # -- the request path ----------------------------------------------------------

    @staticmethod
    def _respond(
        spec: OpSpec | None, protocol: str, err: AwsError, content_type: str | None = None
    ) -> web.Response:
        body, extra = error_body(protocol, err.code, err.message)
        headers = {
            "x-amzn-RequestId": _request_id(),
            "Content-Type": content_type
            or ("application/x-amz-json-1.1" if protocol == "json" else "application/json"),
            **extra,
        }
        return web.Response(body=body, status=error_status(spec, err), headers=headers)

    async def _handle(self, request: BaseRequest) -> web.StreamResponse:
        raw_path = request.raw_path
        if raw_path.startswith(PREFIX):
            return await self._admin.handle(request)
        headers = request.headers
        target = headers.get("X-Amz-Target")
        protocol = "json" if target is not None else "rest-json"
        # SigV4 is always required; it is verified only if credentials are configured.
        auth = headers.get("Authorization")
        if auth is None:
            return self._respond(
                None,
                protocol,
                AwsError("MissingAuthenticationTokenException", "Missing Authentication Token"),
            )
        if not auth.startswith("AWS4-HMAC-SHA256 ") or "X-Amz-Date" not in headers:
            return self._respond(
                None,
                protocol,
                AwsError(
                    "IncompleteSignatureException",
                    "Authorization header requires a AWS4-HMAC-SHA256 signature and X-Amz-Date.",
                ),
            )
        verifier = self._verifier
        scope_service = None
        if verifier is not None:
            # Before routing, like the presence check: a rejected request is not counted
            # as a call of any operation (stats.py counts routed requests only).
            try:
                scope_service = verifier.verify(
                    request.method, raw_path, headers, await request.read()
                ).service
            except AwsError as err:
                return self._respond(None, protocol, err)
        path_params: Mapping[str, str] = {}
        query = ""
        if target is not None:
            spec = self._router.by_target(target)
            if spec is None:
                return self._respond(
                    None,
                    protocol,
                    AwsError("UnknownOperationException", f"Unknown target {target}"),
                )
        else:
            path, _, query = raw_path.partition("?")
            found = self._router.by_path(request.method, path)
            if found is None:
                return self._respond(
                    None,
                    protocol,
                    AwsError(
                        "UnknownOperationException",
                        f"No operation for {request.method} {path}",
                        status=404,
                    ),
                )
            spec, path_params = found
        if scope_service is not None and scope_service != self._signing_names[spec.service]:
            return self._respond(
                spec,
                spec.protocol,
                AwsError(
                    "InvalidSignatureException",
                    "Credential should be scoped to correct service: "
                    f"'{self._signing_names[spec.service]}'. ",
                    403,
                ),
                spec.content_type,
            )
        return await self._call(request, spec, path_params, query)

    async def _call(
        self, request: BaseRequest, spec: OpSpec, path_params: Mapping[str, str], query: str
    ) -> web.StreamResponse:
        name = spec.name
        stats = self._stats
        stats.calls[name] += 1
        stats.in_flight += 1
        resetting = False
        try:
            body = await request.read()
            try:
                params = json.loads(body) if body else {}
            except ValueError:
                raise AwsError(
                    "SerializationException", "The request body is not valid JSON."
                ) from None
            if not isinstance(params, dict):
                raise AwsError("SerializationException", "The request body must be a JSON object.")
            if spec.http_members:
                decode_http_members(spec, params, path_params, query, request.headers)
            arn = None
            for member in spec.resource_members:
                value = params.get(member)
                if isinstance(value, str):
                    arn = value
                    stats.calls_by_arn[arn][name] += 1
                    break
            decision = self._faults.decide(name, arn)
            if decision.throttled:
                stats.throttled[name] += 1
                if arn is not None:
                    stats.throttled_by_arn[arn][name] += 1
                raise AwsError("ThrottlingException", "Rate exceeded")
            if decision.delay_s:
                await asyncio.sleep(decision.delay_s)
            if decision.error is not None:
                stats.injected[name][decision.error] += 1
                if decision.error == "connection_reset":
                    resetting = True
                    _reset_connection(request)
                    # The reset cancels this handler (handler_cancellation); wait for it.
                    await asyncio.sleep(60)
                    raise AwsError("InternalServerException", "connection reset")
                if decision.error == "ServiceUnavailable":
                    raise AwsError("ServiceUnavailableException", "Service Unavailable", 503)
                if decision.error == "InternalServerException":
                    raise AwsError("InternalServerException", "Internal Server Error", 500)
                if decision.error == "ThrottlingException":
                    raise AwsError("ThrottlingException", "Rate exceeded")
                raise AwsError(decision.error, f"{decision.error} injected by the emulator")
            self._validators[name](params)
            result = self._handlers[name](params)
            out = result if isinstance(result, bytes) else encode_output(spec, result)
            return web.Response(
                body=out,
                headers={
                    "x-amzn-RequestId": _request_id(),
                    "Content-Type": spec.content_type,
                },
            )
        except AwsError as err:
            stats.errors[name][err.code] += 1
            return self._respond(spec, spec.protocol, err, spec.content_type)
        except asyncio.CancelledError:
            # The client went away before we answered (not counted when we hung up).
            if not resetting:
                stats.abandoned[name] += 1
            raise
        except Exception:
            _log.exception("%s failed", name)
            stats.errors[name]["InternalServerException"] += 1
            return self._respond(
                spec,
                spec.protocol,
                AwsError("InternalServerException", "Internal Server Error", 500),
                spec.content_type,
            )
        finally:
            stats.in_flight -= 1
