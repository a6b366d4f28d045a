"""Configuration files, a configured catalog, and the ``python -m gateway.emulator`` command."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

import gateway.emulator
from gateway.emulator import ConfigError, Emulator, load_config, parse_config
from gateway.emulator.__main__ import main

EXAMPLE = Path(gateway.emulator.__file__).with_name("example.toml")
REPO = Path(__file__).resolve().parents[2]


def test_example_config_is_valid_and_documents_the_defaults() -> None:
    config = load_config(EXAMPLE)
    assert config.server.port == 0
    assert config.jobs.step_seconds == 5.0
    assert [c.name for c in config.catalog.campaigns] == ["demo", "ranking", "actions"]
    assert config.faults.tps[0].rate == 500.0
    assert config.faults.latency["*"].max_ms == 60000.0
    emulator = Emulator(config)
    assert "sku-42" in emulator.catalog.items.index
    assert emulator.catalog.items.attributes[emulator.catalog.items.index["sku-42"]]["GENRE"] == (
        "comedy"
    )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"sever": {}}, "sever"),
        ({"server": {"prot": 1}}, "server.prot"),
        ({"server": {"port": "80"}}, 'server.port = "80": must be an integer'),
        ({"catalog": {"embedding_dim": 64}}, "embedding_dim"),
        ({"catalog": {"campaigns": [{"name": "x"}]}}, "recipe"),
        ({"catalog": {"items": [{"id": "x", "attributes": {"A": 1}}]}}, "attributes"),
        ({"jobs": {"step_seconds": 0}}, "step_seconds"),
        ({"faults": {"tps": [{"arn": "x"}]}}, "rate"),
    ],
)
def test_bad_configs_name_the_key(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(raw)


#: One refused value per section (issue 10 item 11): the one line names key, value, allowed.
REFUSED = [
    ({"server": {"port": 70000}}, "server.port = 70000: must be an integer from 0 to 65535"),
    ({"server": {"workers": 0}}, "server.workers = 0: must be an integer >= 1"),
    ({"server": {"account_id": "12"}}, 'server.account_id = "12": must be 12 digits'),
    ({"catalog": {"num_items": -1}}, "catalog.num_items = -1: must be an integer >= 0"),
    ({"catalog": {"temperature": 0}}, "catalog.temperature = 0: must be a number > 0"),
    (
        {"catalog": {"items": [{"id": "x", "attributes": {"A": 1}}]}},
        "catalog.items[0].attributes.A = 1: must be a string",
    ),
    ({"jobs": {"in_progress_steps": 0}}, "jobs.in_progress_steps = 0: must be an integer >= 1"),
    ({"jobs": {"fail_marker": ""}}, 'jobs.fail_marker = "": must be a non-empty string'),
    (
        {"faults": {"latency": {"*": {"fixed_ms": -1}}}},
        'faults.latency."*".fixed_ms = -1: must be a number >= 0',
    ),
    (
        {"faults": {"errors": {"GetRecommendations": {"ThrottlingException": 2}}}},
        "faults.errors.GetRecommendations.ThrottlingException = 2: must be a number from 0 to 1",
    ),
    ({"faults": {"tps": [{"arn": "*", "rate": 0}]}}, "faults.tps[0].rate = 0: must be a number"),
    ({"faults": {"seed": "1"}}, 'faults.seed = "1": must be an integer'),
    (
        {"auth": {"credentials": {"AKID": 5}}},
        "auth.credentials.AKID = (hidden): must be a non-empty string",
    ),
]


@pytest.mark.parametrize(("raw", "message"), REFUSED)
def test_a_refused_value_is_one_line_naming_key_value_and_what_is_allowed(
    raw: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw)
    text = str(caught.value)
    assert text.startswith(message)
    assert "\n" not in text
    assert "<class" not in text
    assert "Input should" not in text


def test_bad_recipe_and_filter_are_rejected_at_start() -> None:
    with pytest.raises(ValueError, match="unknown recipe"):
        Emulator(parse_config({"catalog": {"campaigns": [{"name": "x", "recipe": "magic"}]}}))
    with pytest.raises(ValueError, match="unsupported filter"):
        Emulator(parse_config({"catalog": {"filters": [{"name": "f", "expression": "ALL"}]}}))


async def test_a_configured_catalog(tmp_path: Path, emulator_client: Any) -> None:
    path = tmp_path / "emulator.toml"
    path.write_text(
        """
[server]
region = "eu-west-1"
account_id = "123456789012"
[catalog]
num_items = 0
items = [
  { id = "red", attributes = { COLOR = "red" } },
  { id = "blue", attributes = { COLOR = "blue" } },
  { id = "green", attributes = { COLOR = "green" } },
]
campaigns = [{ name = "shop", recipe = "user-personalization", salt = "v2" }]
filters = [{ name = "no-red", expression = 'EXCLUDE ItemID WHERE Items.COLOR = "red"' }]
"""
    )
    async with Emulator(load_config(path)) as emu:
        rt = await emulator_client("personalize-runtime", emu=emu)
        prefix = "arn:aws:personalize:eu-west-1:123456789012"
        resp = await rt.get_recommendations(campaignArn=f"{prefix}:campaign/shop", userId="u1")
        assert sorted(i["itemId"] for i in resp["itemList"]) == ["blue", "green", "red"]
        assert abs(sum(i["score"] for i in resp["itemList"]) - 1.0) < 1e-9
        filtered = await rt.get_recommendations(
            campaignArn=f"{prefix}:campaign/shop",
            userId="u1",
            filterArn=f"{prefix}:filter/no-red",
            metadataColumns={"ITEMS": ["COLOR"]},
        )
        assert sorted(i["metadata"]["COLOR"] for i in filtered["itemList"]) == ["blue", "green"]
        with pytest.raises(rt.exceptions.ResourceNotFoundException):
            await rt.get_recommendations(
                campaignArn="arn:aws:personalize:us-east-1:000000000000:campaign/demo",
                userId="u1",
            )


def test_cli_rejects_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[server]\nport = 'x'\n")
    assert main(["--config", str(bad)]) == 2
    assert main(["--config", str(tmp_path / "missing.toml")]) == 2
    assert main(["--workers", "2"]) == 2  # several workers need a fixed port
    assert "error:" in capsys.readouterr().err


def test_cli_refuses_a_bad_override_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--port", "-5"]) == 2
    line = "error: server.port = -5: must be an integer from 0 to 65535\n"
    assert capsys.readouterr().err == line


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_command_serves_until_sigterm() -> None:
    """``python -m gateway.emulator`` with two SO_REUSEPORT workers and a config file."""
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.emulator",
        "--port",
        str(port),
        "--config",
        str(EXAMPLE),
        "--job-step-seconds",
        "0.1",
        "--workers",
        "2",
        env=env,
        cwd=str(REPO),
    )
    try:
        url = f"http://127.0.0.1:{port}/_emulator/"
        health: dict[str, Any] = {}
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                health = await asyncio.to_thread(_get_json, url + "health")
                break
            except OSError:
                await asyncio.sleep(0.1)
        assert health.get("status") == "ok"
        faults = await asyncio.to_thread(_get_json, url + "faults")
        assert faults["tps"][0]["rate"] == 500.0  # the --config file was applied
        # Each new connection lands on either worker; both answer.
        pids = {health["pid"]}
        deadline = time.monotonic() + 15  # the second worker may still be starting
        while len(pids) < 2 and time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                pids.add((await asyncio.to_thread(_get_json, url + "health"))["pid"])
            await asyncio.sleep(0.02)
        assert len(pids) == 2
        assert proc.pid in pids
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), timeout=10)
    assert code == 0


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=2) as resp:
        return json.loads(resp.read())
