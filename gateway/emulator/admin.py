"""The admin HTTP API, served on the emulator's own port under ``/_emulator/``.

No AWS path starts with that prefix, so it cannot shadow an operation. Endpoints (JSON):

* ``GET  /_emulator/health``       -> ``{"status": "ok", "pid": ..., "uptime_s": ...}``
* ``GET  /_emulator/stats``        -> calls, calls_by_arn, abandoned, in_flight, throttled,
  throttled_by_arn, injected (faults by op and kind), errors (answers by op and code)
* ``POST /_emulator/reset-stats``  -> zero the counters (``in_flight`` is live, not reset)
* ``GET  /_emulator/faults``       -> the fault config, in the ``[faults]`` TOML layout
* ``PUT  /_emulator/faults``       -> replace it (body: the whole config)
* ``PATCH /_emulator/faults``      -> deep-merge a partial config (``null`` deletes a key)
* ``GET  /_emulator/catalog``      -> the ARNs that exist (campaigns, filters, ...)
* ``POST /_emulator/reset-jobs``   -> forget every batch job of the three services
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web
from aiohttp.web_request import BaseRequest

from gateway.emulator.faults import FaultConfig, FaultConfigError

__all__ = ["PREFIX", "Admin"]

PREFIX = "/_emulator/"


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(data, sort_keys=True).encode(),
        status=status,
        content_type="application/json",
    )


class Admin:
    def __init__(
        self,
        *,
        stats: Callable[[], dict[str, Any]],
        reset_stats: Callable[[], None],
        get_faults: Callable[[], FaultConfig],
        set_faults: Callable[[FaultConfig], None],
        catalog: Callable[[], dict[str, Any]],
        reset_jobs: Callable[[], None],
    ) -> None:
        self._stats = stats
        self._reset_stats = reset_stats
        self._get_faults = get_faults
        self._set_faults = set_faults
        self._catalog = catalog
        self._reset_jobs = reset_jobs
        self._started = time.monotonic()

    async def handle(self, request: BaseRequest) -> web.Response:
        name = request.path[len(PREFIX) :].rstrip("/")
        method = request.method
        if name == "health" and method == "GET":
            uptime = round(time.monotonic() - self._started, 3)
            return _json({"status": "ok", "pid": os.getpid(), "uptime_s": uptime})
        if name == "stats" and method == "GET":
            return _json(self._stats())
        if name == "reset-stats" and method == "POST":
            self._reset_stats()
            return _json({"ok": True})
        if name == "catalog" and method == "GET":
            return _json(self._catalog())
        if name == "reset-jobs" and method == "POST":
            self._reset_jobs()
            return _json({"ok": True})
        if name == "faults":
            if method == "GET":
                return _json(self._get_faults().to_mapping())
            if method in ("PUT", "PATCH"):
                return await self._update_faults(request, replace=method == "PUT")
        known = {"health", "stats", "reset-stats", "catalog", "reset-jobs", "faults"}
        if name in known:
            return _json({"error": f"method {method} not allowed on {request.path}"}, 405)
        return _json({"error": f"no admin endpoint {request.path}"}, 404)

    async def _update_faults(self, request: BaseRequest, *, replace: bool) -> web.Response:
        try:
            body = json.loads(await request.read() or b"{}")
            if not isinstance(body, Mapping):
                raise FaultConfigError("the body must be a JSON object")
            config = FaultConfig.from_mapping(body) if replace else self._get_faults().patched(body)
        except (ValueError, FaultConfigError) as exc:
            return _json({"error": str(exc)}, 400)
        self._set_faults(config)
        return _json(config.to_mapping())
