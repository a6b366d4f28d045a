"""Small helpers shared by the test suites."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
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


ROOT = Path(__file__).resolve().parents[1]
#: The AWS credentials of gateway processes started by tests (through the standard chain).
PROCESS_CREDENTIALS = ("AKIAPROCESSTESTKEY01", "process-test-secret")
#: A session token gateway processes sign with (planted: the secrets scan looks for it).
PROCESS_SESSION_TOKEN = "planted-session-token-0123456789abcdefFwoGZXIvYXdzE"


@dataclass
class GatewayProcess:
    """A real `gateway serve` process on a loopback port."""

    process: asyncio.subprocess.Process
    port: int
    log: Path

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


@asynccontextmanager
async def gateway_process(
    config_toml: str | None,
    tmp_path: Path,
    *args: str,
    name: str = "gateway",
    env: dict[str, str] | None = None,
) -> AsyncIterator[GatewayProcess]:
    """Run `python -m gateway serve` (with `config_toml` as its config file, if given) until
    it reports SERVING; stop it on exit. Its output goes to `<tmp_path>/<name>.log`, which a
    start-up failure shows. AWS settings come only from `env` (plus dummy credentials)."""
    from gateway.demo import wait_until_serving
    from gateway.supervisor import free_port

    port = free_port()
    command = [sys.executable, "-m", "gateway", "serve", "--port", str(port), *args]
    if config_toml is not None:
        path = tmp_path / f"{name}.toml"
        path.write_text(config_toml)
        command += ["--config", str(path)]
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        "AWS_ACCESS_KEY_ID": PROCESS_CREDENTIALS[0],
        "AWS_SECRET_ACCESS_KEY": PROCESS_CREDENTIALS[1],
        "AWS_SESSION_TOKEN": PROCESS_SESSION_TOKEN,
        **(env or {}),
    }
    log = tmp_path / f"{name}.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            *command, cwd=ROOT, env=environment, stdout=out, stderr=out
        )
    handle = GatewayProcess(process, port, log)
    try:
        try:
            async with asyncio.timeout(60):
                await wait_until_serving(handle.target, alive=lambda: process.returncode is None)
        except (TimeoutError, RuntimeError):
            raise AssertionError(f"{name} did not start:\n{log.read_text()}") from None
        yield handle
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                async with asyncio.timeout(15):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()


def process_config(
    endpoint_url: str, extra: str = "", *, grace: float = 1.0, upstream: str = ""
) -> str:
    """The config of a test gateway process on loopback in front of `endpoint_url`, plus
    `extra` TOML tables (e.g. `[redis]`, `[limits]`) and `upstream` lines of `[upstream]`."""
    return (
        f'[server]\nhost = "127.0.0.1"\ngrace_seconds = {grace}\n'
        f'[upstream]\nendpoint_url = "{endpoint_url}"\nregion = "us-east-1"\n{upstream}'
        '[logging]\nlevel = "WARNING"\n' + extra
    )


@asynccontextmanager
async def runtime_stub_of_process(
    config_toml: str, tmp_path: Path, name: str
) -> AsyncIterator[Any]:
    """A PersonalizeRuntimeService stub on a real `gateway serve` process with this config."""
    from mlgw.personalize_runtime.v1 import personalize_runtime_pb2_grpc

    async with (
        gateway_process(config_toml, tmp_path, "--metrics-port", "0", name=name) as gateway,
        grpc.aio.insecure_channel(gateway.target) as channel,
    ):
        yield personalize_runtime_pb2_grpc.PersonalizeRuntimeServiceStub(channel)
