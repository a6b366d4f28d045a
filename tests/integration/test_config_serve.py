"""`gateway serve` with a bad configuration exits before serving, saying why in one line."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from gateway.supervisor import free_port
from tests.support import ROOT


@pytest.mark.parametrize(
    ("toml", "line"),
    [
        ("[server]\nport = -5\n", "gateway: server.port = -5: must be an integer from 0 to 65535"),
        ("[server]\nworkers = 0\n", "gateway: server.workers = 0: must be an integer >= 1"),
        ('[logging]\nlevel = "LOUD"\n', 'gateway: logging.level = "LOUD": must be one of'),
        (
            "[upstream]\nendpoints = {bedrock = 5}\n",
            "gateway: upstream.endpoints.bedrock = 5: must be an http:// or https:// URL",
        ),
        (
            "[upstream]\ndefault_deadline_seconds = 300\n",
            "gateway: upstream.default_deadline_seconds = 300.0: must be <= max_deadline_seconds",
        ),
    ],
)
async def test_serve_with_a_bad_value_exits_before_serving(
    tmp_path: Path, toml: str, line: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(f"[metrics]\nport = 0\n{toml}")
    command = [sys.executable, "-m", "gateway", "serve", "--config", str(path)]
    if "port" not in toml:
        command += ["--port", str(free_port())]
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=ROOT,
        env=dict(os.environ),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        # A gateway that accepted the value would serve until stopped: that is the failure.
        async with asyncio.timeout(30):
            out, err = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 2
    assert out == b""
    lines = err.decode().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(line)
