"""The planted-secrets scan: every test run is also a leak test (issue 13, point 7).

Secret values are planted (the AWS secret keys the tests sign with, every API key and
client private key the security tests make, `plant` adds more), and everything a caller or
an operator could see is scanned for them:

- every log record, formatted as the gateway's JSON log line (in-process gateways);
- every error a test client received: status message, debug string, trailers (including
  `grpc-status-details-bin` decoded as bytes);
- the Prometheus exposition of this process at the end of the session;
- every `*.log` file under the session's temporary directory (gateway processes).

A leak fails the session with the places it was found (`leaks` lists them for a test)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import grpc
import pytest

from gateway import metrics
from gateway.logs import JsonFormatter

#: Values the tests sign with (tests/integration/conftest.py, tests/support.py).
_PLANTED: set[str] = {
    "testing-secret-key",
    "process-test-secret",
    "planted-session-token-0123456789abcdefFwoGZXIvYXdzE",  # tests/support.py
}
#: Where each planted value was found: "<place>: <secret's first 6 characters>...".
leaks: list[str] = []


def plant(secret: str) -> None:
    """Scan for `secret` from now on (and in what is scanned at the end of the session)."""
    _PLANTED.add(secret)
    # A PEM is also scanned line by line: a log may hold one line of it.
    for line in secret.splitlines():
        if len(line) >= 40 and not line.startswith("-----"):
            _PLANTED.add(line)


def scan(place: str, text: str | bytes) -> list[str]:
    """The planted values in `text`, recorded as leaks of `place`."""
    data = text.decode(errors="replace") if isinstance(text, bytes) else text
    found = [f"{place}: {s[:6]}..." for s in tuple(_PLANTED) if s in data]
    leaks.extend(found)
    return found


class _Scanner(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:  # a record the formatter cannot render is not a leak
            return
        scan(f"log {record.name}", text)


_HANDLER = _Scanner()
_original_init = grpc.aio.AioRpcError.__init__


def _scanning_init(self: grpc.aio.AioRpcError, *args: Any, **kwargs: Any) -> None:
    _original_init(self, *args, **kwargs)
    scan("error message", self.details() or "")
    scan("error debug string", self.debug_error_string() or "")
    for key, value in self.trailing_metadata() or ():
        scan(f"trailer {key}", value)


def pytest_configure(config: pytest.Config) -> None:
    grpc.aio.AioRpcError.__init__ = _scanning_init  # type: ignore[method-assign]
    # What a gateway emits at its default level ([logging] level = "INFO"), not only what
    # the root logger's WARNING would let through.
    gateway = logging.getLogger("gateway")
    if gateway.level == logging.NOTSET or gateway.level > logging.INFO:
        gateway.setLevel(logging.INFO)
    # The emulator (AWS's stand-in) keeps the root level: its per-request lines would slow
    # the timing tests, and its logs are not the gateway's.
    emulator = logging.getLogger("gateway.emulator")
    if emulator.level == logging.NOTSET:
        emulator.setLevel(logging.WARNING)


def pytest_runtest_setup(item: pytest.Item) -> None:
    root = logging.getLogger()
    if _HANDLER not in root.handlers:  # a test may have reconfigured logging
        root.addHandler(_HANDLER)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    scan("metrics", metrics.exposition())
    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is not None:
        base = Path(factory.getbasetemp())
        for path in base.rglob("*.log"):
            scan(f"file {path.name}", path.read_bytes())
    if leaks:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line("planted secrets leaked:", red=True)
            for leak in sorted(set(leaks)):
                reporter.write_line(f"  {leak}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
