"""Real Redis deployments started for a test on loopback ports: a 3-master Redis Cluster
(`redis-server --cluster-enabled yes`, joined by `redis-cli --cluster create`), a master
watched by one Sentinel (`redis-server --sentinel`), a plain node to stop and restart, and
a TCP proxy the test can cut."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.supervisor import free_port
from tests.certs import write_server_certificates
from tests.support import eventually


class Node:
    """One redis-server process of this test (stopped with the test)."""

    def __init__(self, directory: Path, port: int, *args: str, port_option: str = "--port") -> None:
        self.port = port
        self.directory = directory
        self.args = args
        #: "--tls-port" for a TLS-only node (its args then carry "--port 0").
        self.port_option = port_option
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        command = ["redis-server", *self.args, self.port_option, str(self.port)]
        command += ["--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.directory)]
        log = (self.directory / "redis.log").open("ab")
        self.process = subprocess.Popen(command, stdout=log, stderr=log)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    async def answers(self) -> bool:
        client = Redis(host="127.0.0.1", port=self.port, socket_timeout=0.5)
        try:
            return bool(await client.ping())
        except Exception:
            return False
        finally:
            await client.aclose()


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free and valid too."""
    while True:
        port = free_port()
        if port + 10000 < 65536 and _bindable(port + 10000):
            return port


@contextmanager
def nodes(directory: Path, count: int, *args: str) -> Iterator[list[Node]]:
    pick = cluster_port if "--cluster-enabled" in args else free_port
    started = [Node(directory / f"n{i}", pick(), *args) for i in range(count)]
    try:
        for node in started:
            node.start()
        yield started
    finally:
        for node in started:
            node.stop()


@asynccontextmanager
async def cluster(directory: Path) -> AsyncIterator[list[Node]]:
    """Three masters, no replicas, every slot assigned; yields when the cluster is ok."""
    with nodes(directory, 3, "--cluster-enabled", "yes", "--cluster-node-timeout", "2000") as ns:
        for node in ns:
            await eventually(node.answers, within=10)
        addresses = [f"127.0.0.1:{n.port}" for n in ns]
        create = await asyncio.create_subprocess_exec(
            "redis-cli", "--cluster", "create", *addresses, "--cluster-replicas", "0",
            "--cluster-yes", stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        output, _ = await create.communicate()
        assert create.returncode == 0, output.decode()

        async def ok() -> bool:
            client = Redis(host="127.0.0.1", port=ns[0].port)
            try:
                info = await client.cluster("INFO")
            except (OSError, RedisError):
                return False
            else:
                state = info.get("cluster_state") if isinstance(info, dict) else None
                return state == "ok" or "cluster_state:ok" in str(info)
            finally:
                await client.aclose()

        await eventually(ok, within=20)
        yield ns


@asynccontextmanager
async def sentinel(directory: Path) -> AsyncIterator[tuple[Node, Node]]:
    """(master, sentinel): one Sentinel watching `mymaster` on the master's port."""
    with nodes(directory / "master", 1) as (master,):
        await eventually(master.answers, within=10)
        conf = _sentinel_conf(directory, master.port)
        watcher = Node(directory / "sentinel", free_port(), str(conf), "--sentinel")
        watcher.start()
        try:
            await eventually(watcher.answers, within=10)
            yield master, watcher
        finally:
            watcher.stop()


def _sentinel_conf(directory: Path, master_port: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    conf = directory / "sentinel.conf"  # Sentinel rewrites its file: one per test
    conf.write_text(
        f"sentinel monitor mymaster 127.0.0.1 {master_port} 1\n"
        "sentinel down-after-milliseconds mymaster 2000\n"
    )
    return conf


def tls_node(directory: Path, password: str) -> Node:
    """A TLS-only node (certificates from a fresh CA in `directory`: ca.crt) whose only
    user is the ACL user `mlgw` with `password`."""
    directory.mkdir(parents=True, exist_ok=True)

    write_server_certificates(directory)
    conf = directory / "redis.conf"
    conf.write_text(
        f"user default off\nuser mlgw on >{password} ~* &* +@all\n"
        f"tls-cert-file {directory / 'server.crt'}\ntls-key-file {directory / 'server.key'}\n"
        f"tls-ca-cert-file {directory / 'ca.crt'}\ntls-auth-clients no\n"
    )
    return Node(directory / "data", free_port(), str(conf), "--port", "0", port_option="--tls-port")


class Proxy:
    """A TCP proxy in this process: `cut()` closes every connection and refuses new ones
    (the link to Redis is gone), `restore()` accepts again."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.open = True
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.open:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._links |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(1 << 16):
                writer.write(data)
                await writer.drain()
        writer.close()
        self._links.discard(writer)

    def cut(self) -> None:
        self.open = False
        for writer in list(self._links):
            writer.transport.abort()
        self._links.clear()

    def restore(self) -> None:
        self.open = True

    async def aclose(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
