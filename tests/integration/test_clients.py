"""Each language's client example against the real gateway on the emulator.

Every example (clients/<lang>/example) calls GetRecommendations and GetPersonalizedRanking
through its language's thin client, an invalid request, a batch RPC and the stream, submits a
batch inference job and waits for its operation, and prints one JSON object; the answers must
be the ones a direct aiobotocore call to the emulator gives (same items, same scores), the
error must carry the contract's reason and BadRequest's field list, and the job must end
ACTIVE. Each
example is built once per run (the toolchains' own caches keep later runs fast).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ClientFactory
from tests.integration.conftest import GatewayFactory
from tests.integration.jobs_support import FAST_JOBS
from tests.integration.security_support import Authority, caller, write_tls
from tests.support import ROOT

CLIENTS = ROOT / "clients"
ARN = "arn:aws:personalize:us-east-1:000000000000:campaign/"
USER, ITEMS = "u-7", ["i3", "i1", "i4", "i2"]
JAVA_MAIN = "internal.mlgw.example.Example"
LANGUAGES = ["python", "go", "typescript", "java"]
API_KEY = "example-key-7f3c9a"


def _run(command: list[str], cwd: Path) -> None:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}"


def _build(language: str, out: Path) -> list[str]:
    """Build one example; the command that runs it."""
    if language == "python":
        return [sys.executable, str(CLIENTS / "python" / "example" / "example.py")]
    if language == "go":
        binary = out / "go-example"
        _run([_tool("go"), "build", "-o", str(binary), "./example"], CLIENTS / "go")
        return [str(binary)]
    if language == "typescript":
        folder = CLIENTS / "typescript"
        # Into the package's own dist/ (ignored by git): node resolves @grpc/grpc-js from there.
        _run([str(ROOT / "node_modules" / ".bin" / "tsc"), "-p", "."], folder)
        return [_tool("node"), str(folder / "dist" / "example" / "example.js")]
    if language == "java":
        classpath = out / "classpath.txt"
        # `test` compiles and runs the client's JUnit tests before the example may run.
        maven = [_tool("mvn"), "-B", "-q", f"-Dmlgw.python={sys.executable}", "test"]
        maven += ["dependency:build-classpath", f"-Dmdep.outputFile={classpath}"]
        _run(maven, CLIENTS / "java")
        classes = CLIENTS / "java" / "target" / "classes"
        return [_tool("java"), "-cp", f"{classes}:{classpath.read_text().strip()}", JAVA_MAIN]
    raise AssertionError(language)


def _tool(name: str) -> str:
    found = shutil.which(name)
    assert found, f"{name} is not installed (make setup installs the client toolchains)"
    return found


@pytest.fixture(scope="session")
def example(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], list[str]]:
    built: dict[str, list[str]] = {}

    def command(language: str) -> list[str]:
        if language not in built:
            built[language] = _build(language, tmp_path_factory.mktemp(language))
        return built[language]

    return command


async def _direct(emulator_client: ClientFactory) -> dict[str, Any]:
    runtime = await emulator_client("personalize-runtime")
    recs = await runtime.get_recommendations(campaignArn=ARN + "demo", userId=USER, numResults=5)
    other = await runtime.get_recommendations(
        campaignArn=ARN + "demo", userId=USER + "-2", numResults=5
    )
    ranked = await runtime.get_personalized_ranking(
        campaignArn=ARN + "ranking", userId=USER, inputList=ITEMS
    )
    return {
        "recommendations": recs["itemList"],
        "other": other["itemList"],
        "ranking": ranked["personalizedRanking"],
    }


def _same_items(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
    assert [item["itemId"] for item in got] == [item["itemId"] for item in want]
    # The gateway renormalises merged rankings, which may move the last bit of a score.
    assert [item["score"] for item in got] == pytest.approx([item["score"] for item in want])


@pytest.mark.parametrize("language", LANGUAGES)
async def test_example_matches_a_direct_call(
    language: str,
    example: Callable[[str], list[str]],
    make_gateway: GatewayFactory,
    emulator_client: ClientFactory,
    tmp_path: Path,
) -> None:
    command = example(language)
    # Two gateways sharing one job store: the client balances over a fixed list of addresses
    # (a job's operation is visible on both). Over TLS, with an API key the gateway knows.
    jobs = {**FAST_JOBS, "state_dir": str(tmp_path / "jobs")}
    authority = Authority()
    tls = write_tls(tmp_path / "tls", authority.server(), None)
    (tmp_path / "tls" / "ca.pem").write_bytes(authority.pem)
    auth = {"callers": [caller("example", API_KEY)]}
    gateways = [await make_gateway(jobs=jobs, tls=tls, auth=auth) for _ in range(2)]
    tls_env = {
        "MLGW_API_KEY": API_KEY,
        "MLGW_CA_FILE": str(tmp_path / "tls" / "ca.pem"),
        "MLGW_TLS_SERVER_NAME": "localhost",  # the certificate's DNS name (it has the IP too)
    }
    addresses = ",".join(f"127.0.0.1:{gateway.port}" for gateway in gateways)
    job_name = f"example-{language}"
    process = await asyncio.create_subprocess_exec(
        *command, addresses, ARN + "demo", ARN + "ranking", USER, ",".join(ITEMS), job_name,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **tls_env},
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, stderr.decode()
    got = json.loads(stdout)

    want = await _direct(emulator_client)
    assert want["recommendations"]
    assert want["ranking"]
    _same_items(got["recommendations"], want["recommendations"])
    _same_items(got["ranking"], want["ranking"])

    error = got["error"]
    assert (error["code"], error["reason"]) == ("INVALID_ARGUMENT", "INVALID_REQUEST")
    fields = {v["field"]: v["description"] for v in error["fieldViolations"]}
    assert set(fields) == {"campaign_arn", "num_results"}
    assert fields["num_results"] == "must be at most 500"
    # The example prints the field details for a person, too.
    assert "invalid field num_results: must be at most 500" in stderr.decode()
    # A batch RPC: per-entry results in request order.
    assert len(got["batch"]) == 2
    _same_items(got["batch"][0], want["recommendations"])
    _same_items(got["batch"][1], want["other"])
    # The stream: each entry answered under its id.
    assert set(got["stream"]) == {"recommendations", "ranking"}
    _same_items(got["stream"]["recommendations"], want["recommendations"])
    _same_items(got["stream"]["ranking"], want["ranking"])
    # The job ran to its end through the gateway's operation.
    assert got["job"] == {"jobName": job_name, "status": "ACTIVE"}


#: Each client's own unit tests (error details, contract wire strings, targets), run with
#: its ecosystem's runner once its example is built. Java's run in its build (`mvn test`);
#: Python's are tests/unit/test_python_client.py.
NATIVE_TESTS = {
    "go": (["go", "test", "./mlgw"], CLIENTS / "go"),
    "typescript": (["node", "--test", "dist/test/"], CLIENTS / "typescript"),
}


@pytest.mark.parametrize("language", sorted(NATIVE_TESTS))
def test_client_unit_tests(language: str, example: Callable[[str], list[str]]) -> None:
    example(language)
    command, folder = NATIVE_TESTS[language]
    result = subprocess.run(
        [_tool(command[0]), *command[1:]], cwd=folder, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    ran = r"^ok\s+mlgw\.internal/go/mlgw\b" if language == "go" else r"^# pass [1-9]"
    assert re.search(ran, result.stdout, flags=re.MULTILINE), result.stdout
