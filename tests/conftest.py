"""Shared fixtures: a started emulator and aiobotocore clients pointed at it."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from typing import Any

import pytest

from gateway.emulator import Emulator
from gateway.emulator.testing import client_for

#: Every run also scans logs, errors, trailers and metrics for planted secrets.
pytest_plugins = ["tests.secrets_scan"]


@pytest.fixture(autouse=True, scope="session")
def _job_state_outside_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Gateways started without a `[jobs] state_dir` (in-process or as processes, which
    inherit the environment) keep their job store in a temporary directory, not in ~."""
    saved = os.environ.get("XDG_STATE_HOME")
    os.environ["XDG_STATE_HOME"] = str(tmp_path_factory.mktemp("xdg-state"))
    yield
    if saved is None:
        os.environ.pop("XDG_STATE_HOME", None)
    else:
        os.environ["XDG_STATE_HOME"] = saved


# Fast job lifecycle for tests that poll real time; lifecycle tests inject a ManualClock.
TEST_JOB_STEP_SECONDS = 0.05

ClientFactory = Callable[..., Awaitable[Any]]


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    """A started emulator on a free 127.0.0.1 port, default catalog, fast jobs."""
    async with Emulator(job_step_seconds=TEST_JOB_STEP_SECONDS) as emu:
        yield emu


@pytest.fixture
async def emulator_client(emulator: Emulator) -> AsyncIterator[ClientFactory]:
    """``await emulator_client("bedrock", validate=True, emu=None)`` -> an open client.

    Clients are closed at teardown. ``emu`` points a client at another Emulator.
    """
    async with AsyncExitStack() as stack:

        async def make(service: str, *, validate: bool = True, emu: Emulator | None = None) -> Any:
            target = emu or emulator
            return await stack.enter_async_context(
                client_for(target.endpoint_url, service, validate=validate)
            )

        yield make
