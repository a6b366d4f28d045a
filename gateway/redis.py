"""The one Redis module: clients as the operator runs Redis, and the one failure policy.

Everything replicas share lives in Redis (the cache tier, the global buckets, the leases of
hot keys, the shared job store); every user of it connects through `open_redis` and judges
Redis through a `Link`, so all of them agree on what "Redis is down" means.

Deployments (`[redis]`, README "Scale-out"):

- one node: `redis://host:6379/0`, `unix:///run/redis.sock`;
- TLS: `rediss://user@host:6380/0` (an ACL user; the password from `password_file`, a
  mounted Secret, or from the URL), with `tls_ca_file` and, for mutual TLS, a client
  certificate and key;
- Sentinel: `sentinels = ["10.0.0.1:26379", ...]` and `sentinel_master`: the client asks
  the sentinels for the master and follows a failover;
- Cluster: `cluster = true`, the URL names any node. Every key one command or script
  touches shares a hash slot (the callers put a `{hash tag}` in their keys).

The failure policy (Redis is an optimisation, never a dependency):

- a caller waits at most its own short bound (`timeout_seconds`: 10 ms for a cache lookup)
  and then carries on without Redis, but that late reply is *not* a verdict on Redis: the
  command keeps running in the background. A burst keeps the process's own event loop busy
  for longer than 10 ms (the reply sits in the socket until the loop reads it); switching
  the tier off then would turn one busy moment into seconds of misses;
- Redis is judged down when a command fails (connection refused or reset: at once) or
  has not answered within `unresponsive_seconds`, unless the loop itself was that late
  (the timer fired long after it was due: the process was busy, not Redis);
- while down, nobody asks Redis for `failure_cooldown_seconds`; the first command after it
  is the probe. Each transition is logged once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from prometheus_client import Counter, Gauge
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from gateway.cache_config import RedisConfig

__all__ = ["FAILURES", "Link", "RedisClient", "connect", "open_redis"]

log = logging.getLogger("gateway.redis")

T = TypeVar("T")
#: A single node (also a Sentinel-managed master) or a cluster: the commands used are common.
RedisClient = Redis | RedisCluster
FAILURES = (RedisError, OSError, TimeoutError)
#: Returned by `Link.run` when the command failed or was not sent.
_FAILED: Any = object()


def _password(cfg: RedisConfig) -> str | None:
    if not cfg.password_file:
        return None
    return Path(cfg.password_file).read_text().strip()


def _options(cfg: RedisConfig, max_connections: int) -> dict[str, Any]:
    """Connection keyword arguments every deployment shape shares."""
    options: dict[str, Any] = {
        # A backstop only: `Link` bounds every command by `unresponsive_seconds` itself.
        "socket_timeout": cfg.unresponsive_seconds * 2,
        "socket_connect_timeout": cfg.connect_timeout_seconds,
        # No retries inside redis-py (its default retries 3 times with back-off): the
        # caller has already moved on, and the failure policy decides when to ask again.
        "retry": Retry(NoBackoff(), 0),
        "max_connections": max_connections,
        "health_check_interval": 0,
    }
    password = _password(cfg)
    if password is not None:
        options["password"] = password
    if cfg.username:
        options["username"] = cfg.username
    if urlsplit(cfg.url).scheme == "rediss":
        options["ssl_ca_certs"] = cfg.tls_ca_file or None
        options["ssl_certfile"] = cfg.tls_cert_file or None
        options["ssl_keyfile"] = cfg.tls_key_file or None
    return options


def connect(cfg: RedisConfig, *, max_connections: int | None = None) -> RedisClient:
    """A client for `[redis]` (not connected yet: it connects on first use)."""
    options = _options(cfg, max_connections or cfg.max_connections + 8)
    if cfg.cluster:
        options.pop("retry")  # the cluster client keeps its own (redirections, not retries)
        options.pop("health_check_interval")
        return RedisCluster.from_url(cfg.url, retry=Retry(NoBackoff(), 0), **options)
    if cfg.sentinels:
        parts = urlsplit(cfg.url)
        db = int(parts.path.strip("/") or 0)
        if parts.password and "password" not in options:
            options["password"] = parts.password
        if parts.username and "username" not in options:
            options["username"] = parts.username
        if parts.scheme == "rediss":
            options["ssl"] = True
        nodes = [(host, int(port)) for host, port in (s.rsplit(":", 1) for s in cfg.sentinels)]
        sentinel_kwargs = {k: options[k] for k in ("socket_timeout", "socket_connect_timeout")}
        sentinel = Sentinel(nodes, sentinel_kwargs=sentinel_kwargs)  # type: ignore[no-untyped-call]
        master: Redis = sentinel.master_for(cfg.sentinel_master, db=db, **options)
        return master
    return Redis.from_url(cfg.url, **options)


async def open_redis(
    cfg: RedisConfig, stack: AsyncExitStack, *, max_connections: int | None = None
) -> RedisClient | None:
    """The process's Redis client for `[redis]` (closed with `stack`), or None when no URL
    is configured. A Redis that is down at start is not an error: the client connects when
    Redis answers (callers judge it through a `Link`)."""
    if not cfg.url:
        return None
    client = connect(cfg, max_connections=max_connections)
    stack.push_async_callback(client.aclose)
    try:
        async with asyncio.timeout(cfg.connect_timeout_seconds + cfg.unresponsive_seconds):
            await client.ping()
    except FAILURES as exc:
        log.warning("redis is not answering at start", extra={"error": type(exc).__name__})
    return client


class Link:
    """One Redis user's view of Redis: up, or down until a cooldown passes.

    `run` sends a command and waits for its verdict; `call` also bounds the caller's wait,
    leaving the command to finish (and to judge Redis) in the background.
    """

    def __init__(
        self,
        what: str,
        *,
        messages: tuple[str, str] = ("redis unavailable", "redis answers again"),
        unresponsive_seconds: float,
        cooldown_seconds: float,
        max_in_flight: int,
        logger: logging.Logger = log,
        failures: tuple[Counter, Counter] | None = None,
        down_gauge: Gauge | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what = what
        #: Logged once on each transition: (down, up again).
        self._messages = messages
        self._unresponsive = unresponsive_seconds
        self._cooldown = cooldown_seconds
        self._capacity = max_in_flight
        self._log = logger
        self._failures = failures
        self._gauge = down_gauge
        self._clock = clock
        self._down_until = 0.0
        self.down = False
        self.in_flight = 0
        #: When Redis last answered a command (this link's clock).
        self.answered_at = float("-inf")
        self._tasks: set[asyncio.Task[Any]] = set()
        if down_gauge is not None:
            down_gauge.set(0)

    def usable(self) -> bool:
        """Not cooling down after a failure."""
        return not self.down or self._clock() >= self._down_until

    def has_capacity(self) -> bool:
        return self.in_flight < self._capacity

    def answering(self, within: float = 1.0) -> bool:
        """Redis answered a command in the last `within` seconds: a slow reply now is more
        likely this process being busy than Redis being gone."""
        return self._clock() - self.answered_at < within

    async def run(self, command: Callable[[], Awaitable[T]]) -> T | None:
        """The command's result, or None when it failed (Redis is then judged) or was not
        sent (cooling down, or at the in-flight cap)."""
        if not self._admit():
            return None
        result = await self._judged(command)
        return None if result is _FAILED else result

    async def call(self, command: Callable[[], Awaitable[T]], wait: float) -> T | None:
        """`run`, but the caller waits at most `wait`; a later reply still counts as Redis
        answering (see the module's docstring)."""
        if not self._admit():
            return None
        task = self._start(command)
        try:
            async with asyncio.timeout(wait):
                result = await asyncio.shield(task)
        except TimeoutError:
            self.count("timeout")
            return None
        return None if result is _FAILED else result

    def spawn(self, command: Callable[[], Awaitable[object]]) -> bool:
        """Run a command nobody waits for (a write); False if not sent (cooling down, or
        at the in-flight cap)."""
        if not self._admit():
            return False
        self._start(command)
        return True

    def _admit(self) -> bool:
        """Counts the command in flight from now on (`_judged` counts it out)."""
        if not self.usable() or self.in_flight >= self._capacity:
            return False
        self.in_flight += 1
        return True

    def _start(self, command: Callable[[], Awaitable[T]]) -> asyncio.Task[T]:
        task = asyncio.get_running_loop().create_task(self._judged(command))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _judged(self, command: Callable[[], Awaitable[T]]) -> T:
        loop = asyncio.get_running_loop()
        bound = asyncio.timeout(self._unresponsive)
        try:
            async with bound:
                result = await command()
        except TimeoutError as exc:
            due = bound.when()
            late = due is not None and loop.time() - due > self._unresponsive / 2
            if late:  # the loop ran the timer long after it was due: we were busy, not Redis
                self.count("timeout")
            else:
                self.failed(exc)
            return _FAILED  # type: ignore[no-any-return]
        except FAILURES as exc:
            self.failed(exc)
            return _FAILED  # type: ignore[no-any-return]
        finally:
            self.in_flight -= 1
        self.answered_at = self._clock()
        if self.down:
            self.down = False
            if self._gauge is not None:
                self._gauge.set(0)
            self._log.warning(self._messages[1], extra={"redis_user": self.what})
        return result

    def count(self, kind: str) -> None:
        if self._failures is not None:
            (self._failures[0] if kind == "timeout" else self._failures[1]).inc()

    def failed(self, exc: BaseException) -> None:
        """Redis failed (or stayed silent): not asked again until the cooldown passes."""
        timeout = isinstance(exc, TimeoutError) or "Timeout" in type(exc).__name__
        self.count("timeout" if timeout else "error")
        self._down_until = self._clock() + self._cooldown
        if not self.down:
            self.down = True
            if self._gauge is not None:
                self._gauge.set(1)
            self._log.warning(
                self._messages[0],
                extra={
                    "redis_user": self.what,
                    "error": type(exc).__name__,
                    "cooldown_seconds": self._cooldown,
                },
            )

    async def aclose(self) -> None:
        """Drop commands still running (shutdown must not wait for a slow Redis)."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
