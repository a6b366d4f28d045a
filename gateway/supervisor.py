"""Process layout: one gateway process, or a supervisor with workers and an emulator.

gRPC Python is GIL-bound, so throughput scales with processes: `workers` processes bind the
same port with SO_REUSEPORT and the kernel spreads connections across them. Workers are
started with `spawn`, before any gRPC object exists in them (grpc/grpc#16001). SIGTERM or
SIGINT to the supervisor is passed on to every worker, each drains within the grace, and
the supervisor exits 0 when they all did.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import multiprocessing
import multiprocessing.connection
import signal
import socket
import sys
from collections.abc import Coroutine
from multiprocessing.process import BaseProcess
from typing import Any

import uvloop

from gateway import logs
from gateway.config import Config
from gateway.server import Gateway

log = logging.getLogger("gateway.supervisor")

#: Credentials handed to the clients when the upstream is the built-in emulator, so that a
#: demo never picks up (or needs) real AWS credentials.
EMULATOR_CREDENTIALS = ("emulator-access-key", "emulator-secret-key")
_STARTUP_TIMEOUT = 60.0


def run(
    config: Config,
    *,
    emulator: bool = False,
    emulator_config: str | None = None,
    demo: bool = False,
) -> int:
    if not (emulator or demo) and config.server.workers <= 1:
        return run_loop(_serve_one(config, 0, None))
    return run_loop(_supervise(config, emulator, emulator_config, demo))


def run_loop(main: Coroutine[Any, Any, int]) -> int:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


async def _serve_one(config: Config, index: int, credentials: tuple[str, str] | None) -> int:
    await Gateway(config, worker_index=index, credentials=credentials).serve_until_signalled()
    return 0


def _worker_main(config: Config, index: int, credentials: tuple[str, str] | None) -> None:
    logs.configure(config.logging.level)
    sys.exit(run_loop(_serve_one(config, index, credentials)))


async def _supervise(
    config: Config, emulator: bool, emulator_config: str | None, demo: bool
) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if config.server.port == 0:  # workers must agree on one port
        config = _with_server(config, port=free_port())
    async with contextlib.AsyncExitStack() as stack:
        credentials = None
        if emulator:
            url = await stack.enter_async_context(_emulator_process(emulator_config))
            upstream = dataclasses.replace(config.upstream, endpoint_url=url)
            config = dataclasses.replace(config, upstream=upstream)
            credentials = EMULATOR_CREDENTIALS
        workers = _start_workers(config, credentials)
        stack.callback(_stop_workers, workers, config.server.grace_seconds + 5)
        target = f"{_connect_host(config.server.host)}:{config.server.port}"
        await _wait_serving(target, workers)
        log.info("serving", extra={"target": target, "workers": len(workers)})
        if demo:
            from gateway.demo import run_demo

            await run_demo(target)
        await _until_stopped_or_dead(stop, workers)
    codes = [w.exitcode for w in workers]
    log.info("workers exited", extra={"exit_codes": codes})
    return 0 if all(code == 0 for code in codes) else 1


def _start_workers(config: Config, credentials: tuple[str, str] | None) -> list[BaseProcess]:
    context = multiprocessing.get_context("spawn")
    workers: list[BaseProcess] = [
        context.Process(target=_worker_main, args=(config, i, credentials), name=f"worker-{i}")
        for i in range(max(1, config.server.workers))
    ]
    for worker in workers:
        worker.start()
    return workers


def _stop_workers(workers: list[BaseProcess], timeout: float) -> None:
    for worker in workers:
        if worker.is_alive():
            worker.terminate()  # SIGTERM: each worker drains within its grace
    for worker in workers:
        worker.join(timeout)
        if worker.is_alive():
            worker.kill()
            worker.join()


async def _until_stopped_or_dead(stop: asyncio.Event, workers: list[BaseProcess]) -> None:
    sentinels = [w.sentinel for w in workers]
    died = asyncio.ensure_future(_first_exit(sentinels))
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait({died, stopped}, return_when=asyncio.FIRST_COMPLETED)
    if died.done() and not stop.is_set():
        log.warning("a worker exited unexpectedly; stopping the others")
    stopped.cancel()


async def _first_exit(sentinels: list[int]) -> None:
    await asyncio.to_thread(multiprocessing.connection.wait, sentinels)


async def _wait_serving(target: str, workers: list[BaseProcess]) -> None:
    from gateway.demo import wait_until_serving

    async with asyncio.timeout(_STARTUP_TIMEOUT):
        await wait_until_serving(target, alive=lambda: all(w.is_alive() for w in workers))


@contextlib.asynccontextmanager
async def _emulator_process(config_path: str | None):  # type: ignore[no-untyped-def]
    port = free_port()
    argv = [sys.executable, "-m", "gateway.emulator", "--port", str(port)]
    if config_path:
        argv += ["--config", config_path]
    process = await asyncio.create_subprocess_exec(*argv)
    url = f"http://127.0.0.1:{port}"
    try:
        from gateway.demo import wait_until_http_ok

        async with asyncio.timeout(_STARTUP_TIMEOUT):
            await wait_until_http_ok(f"{url}/_emulator/health", process)
        log.info("emulator serving", extra={"endpoint_url": url})
        yield url
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _connect_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "[::]", "") else host


def _with_server(config: Config, **changes: Any) -> Config:
    return dataclasses.replace(config, server=dataclasses.replace(config.server, **changes))
