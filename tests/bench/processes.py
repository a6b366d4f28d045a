"""The benchmarks' subprocesses: the emulator, gateways and helpers on free 127.0.0.1 ports.

`ProcessStack` owns a temporary folder, the CPU `Layout`, the ports and the `Service`s of
one benchmark run: it starts the emulator (`python -m gateway.emulator`), writes a
gateway's TOML config and builds its `python -m gateway serve` service, builds the trivial
gRPC server's, waits for each to answer, and stops them all. Each benchmark subclasses it
with the services and emulator settings of its own rows. `run_json` runs a benchmark's
load-generator process (pinned like the services) and returns the JSON it prints last.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import signal
import socket
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import aiohttp

from gateway.demo import wait_until_serving

ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 60.0
#: This checkout's code and generated stubs first (the installed stubs may be another
#: checkout's, without protos added here).
PYTHONPATH = os.pathsep.join([str(ROOT), str(ROOT / "clients" / "python" / "src")])
_STOP_TIMEOUT = 10.0
#: The gateway resolves credentials through the standard chain, like in production.
_GATEWAY_ENV = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}


@dataclass(frozen=True)
class Layout:
    """CPUs for the process under measurement and for its support (emulator, h2load)."""

    sut: int | None
    support: int | None

    @classmethod
    def choose(cls, name: str) -> Layout:
        if name == "split" and (os.cpu_count() or 1) >= 2:
            return cls(sut=0, support=1)
        return cls(sut=None, support=None)

    def describe(self) -> str:
        if self.sut is None:
            return "none (scheduler places every process)"
        return f"split: measured process on CPU {self.sut}; emulator + h2load on CPU {self.support}"


def _pinned(argv: list[str], cpu: int | None) -> list[str]:
    return (["taskset", "-c", str(cpu)] if cpu is not None else []) + argv


def _die_with_parent() -> None:
    """Child-side: SIGTERM when the bench dies, even by SIGKILL (Linux PR_SET_PDEATHSIG)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


@dataclass
class Service:
    """A subprocess in its own process group, output to a log file, killed on exit."""

    name: str
    argv: list[str]
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    #: Talks JSON lines over stdin/stdout (the direct client); stderr still goes to `log`.
    piped: bool = False
    proc: asyncio.subprocess.Process | None = None

    async def start(self, cpu: int | None) -> None:
        pipe = asyncio.subprocess.PIPE
        with self.log.open("wb") as out:
            self.proc = await asyncio.create_subprocess_exec(
                *_pinned(self.argv, cpu),
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": PYTHONPATH, **self.env},
                stdin=pipe if self.piped else asyncio.subprocess.DEVNULL,
                stdout=pipe if self.piped else out,
                stderr=out if self.piped else asyncio.subprocess.STDOUT,
                start_new_session=True,  # its own group: stop() reaches every descendant
                preexec_fn=_die_with_parent,
            )

    async def ask(self, request: dict[str, Any] | None, budget: float) -> dict[str, Any]:
        """Send one JSON line (if any) and read one JSON line back within `budget` s."""
        if self.proc is None or self.proc.stdin is None or self.proc.stdout is None:
            raise RuntimeError(f"{self.name} was not started with pipes")
        if request is not None:
            self.proc.stdin.write(json.dumps(request).encode() + b"\n")
            await self.proc.stdin.drain()
        line = await asyncio.wait_for(self.proc.stdout.readline(), budget)
        if not line:
            raise RuntimeError(f"{self.name} exited:\n{self.tail()}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def stop(self) -> None:
        if not self.alive():
            return
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), _STOP_TIMEOUT)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            await self.proc.wait()

    def failures(self) -> dict[str, int]:
        """Failed RPCs the gateway logged ("rpc failed"), counted by code and reason."""
        counts: dict[str, int] = {}
        if not self.log.exists():
            return counts
        for line in self.log.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict) and entry.get("msg") == "rpc failed":
                    key = f"{entry.get('code')}/{entry.get('reason')}"
                    counts[key] = counts.get(key, 0) + 1
        return counts

    def tail(self, lines: int = 20) -> str:
        text = self.log.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def bounded(awaitable: Awaitable[Any]) -> None:
    """A start-up wait that gives up rather than hanging the whole benchmark."""
    async with asyncio.timeout(STARTUP_TIMEOUT):
        await awaitable


async def wait_http_ok(url: str, service: Service) -> None:
    async with aiohttp.ClientSession() as session:
        while True:
            if not service.alive():
                raise RuntimeError(f"{service.name} exited:\n{service.tail()}")
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.05)


@dataclass
class ProcessStack:
    """The services of one run, by name, each on its own free port; stopped in reverse."""

    tmp: Path
    layout: Layout
    ports: dict[str, int] = field(default_factory=dict)
    services: dict[str, Service] = field(default_factory=dict)

    @property
    def emulator_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['emulator']}"

    def address(self, name: str) -> str:
        return f"127.0.0.1:{self.ports[name]}"

    def python(self, name: str, args: list[str], env: dict[str, str] | None = None) -> Service:
        service = Service(name, [sys.executable, *args], self.tmp / f"{name}.log", env or {})
        self.services[name] = service
        self.ports.setdefault(name, free_port())
        return service

    async def start_emulator(self) -> Service:
        emulator = self.python("emulator", ["-m", "gateway.emulator"])
        emulator.argv += ["--port", str(self.ports["emulator"]), "--log-level", "WARNING"]
        await emulator.start(self.layout.support)
        await bounded(wait_http_ok(f"{self.emulator_url}/_emulator/health", emulator))
        return emulator

    def trivial_service(self) -> Service:
        trivial = self.python("trivial", ["-m", "tests.bench.trivial_server"])
        trivial.argv += ["--port", str(self.ports["trivial"])]
        return trivial

    def gateway_service(
        self,
        name: str,
        extra_toml: str,
        upstream_extra: str = "",
        *,
        metrics_port: int = 0,
        log_level: str = "WARNING",
    ) -> Service:
        """A gateway in front of this stack's emulator; `upstream_extra` lands inside the
        `[upstream]` table, `extra_toml` after every other table."""
        config = self.tmp / f"{name}.toml"
        config.write_text(
            f'[upstream]\nendpoint_url = "{self.emulator_url}"\nregion = "us-east-1"\n'
            + upstream_extra
            + f'[server]\nhost = "127.0.0.1"\n[logging]\nlevel = "{log_level}"\n'
            + extra_toml
        )
        gateway = self.python(name, ["-m", "gateway", "serve", "--config", str(config)])
        gateway.argv += ["--port", str(self.ports[name]), "--metrics-port", str(metrics_port)]
        gateway.env.update(_GATEWAY_ENV)
        return gateway

    async def serving(self, name: str) -> None:
        """Until the gRPC service `name` reports SERVING; the caller bounds the wait."""
        await wait_until_serving(self.address(name), self.services[name].alive)

    async def stop(self) -> None:
        for service in reversed(list(self.services.values())):
            await service.stop()

    def check_alive(self) -> None:
        for service in self.services.values():
            if not service.alive():
                raise RuntimeError(f"{service.name} exited:\n{service.tail()}")


class EmulatorStats:
    """The emulator's call counters: proof that requests reached the upstream."""

    def __init__(self, url: str) -> None:
        self._url = url

    async def reset(self) -> None:
        async with aiohttp.ClientSession() as session:
            await session.post(f"{self._url}/_emulator/reset-stats")

    async def snapshot(self) -> dict[str, Any]:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{self._url}/_emulator/stats") as response,
        ):
            stats: dict[str, Any] = await response.json()
        return stats

    async def calls_and_errors(self) -> tuple[int, int]:
        """GetRecommendations calls and errors since the last reset, over every resource."""
        stats = await self.snapshot()
        calls = int(stats.get("calls", {}).get("GetRecommendations", 0))
        errors = sum(stats.get("errors", {}).get("GetRecommendations", {}).values())
        return calls, int(errors)


async def run_json(argv: list[str], cpu: int | None, budget: float) -> dict[str, Any]:
    """Run a load generator to completion within `budget` s; its last stdout line is JSON.

    Killed if the budget runs out or the benchmark is interrupted, so no load outlives it.
    """
    proc = await asyncio.create_subprocess_exec(
        *_pinned(argv, cpu),
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": PYTHONPATH},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), budget)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    if proc.returncode != 0:
        raise RuntimeError(
            f"driver failed ({proc.returncode}):\n{err.decode(errors='replace')[-2000:]}"
        )
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


class _Startable(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


StackT = TypeVar("StackT", bound=_Startable)


@contextlib.asynccontextmanager
async def running(
    stack_type: Callable[[Path, Layout], StackT], layout: str, prefix: str
) -> AsyncIterator[StackT]:
    """A benchmark's stack in a temporary folder of its own: started, then stopped (with every
    service it started) however the run ends."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        stack = stack_type(Path(tmp), Layout.choose(layout))
        try:
            await stack.start()
            yield stack
        finally:
            await stack.stop()
