"""The committed generated code is exactly what clients/generate.py makes from protos/ now."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf.internal import api_implementation

ROOT = Path(__file__).resolve().parents[2]
GENERATOR = ROOT / "clients" / "generate.py"
PROTOS = ROOT / "protos"
# clients/generate.py, for the trees it owns by language (loaded by path: clients/ is no package).
_spec = importlib.util.spec_from_file_location("generate", GENERATOR)
assert _spec is not None
assert _spec.loader is not None
generate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(generate)


def _tree(root: Path) -> dict[str, bytes]:
    # Importing the committed package (it is installed editable) leaves __pycache__ next
    # to it; bytecode is not generated output, so it is not compared.
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in root.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("generated")
    languages = [arg for language in generate.COMMITTED for arg in ("--lang", language)]
    result = subprocess.run(
        [sys.executable, str(GENERATOR), "--out", str(out), *languages],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"clients/generate.py failed:\n{result.stdout}{result.stderr}"
    return out


@pytest.mark.parametrize("language", generate.COMMITTED)
def test_committed_generated_code_matches_protos(fresh: Path, language: str) -> None:
    tree = generate.OUTPUTS[language]
    new, committed = _tree(fresh / tree), _tree(ROOT / tree)
    assert new, f"the generator wrote nothing for {language}"
    problems = [f"  missing:  {name}" for name in sorted(new.keys() - committed.keys())]
    problems += [f"  stale:    {name}" for name in sorted(committed.keys() - new.keys())]
    problems += [
        f"  outdated: {name}"
        for name in sorted(new.keys() & committed.keys())
        if new[name] != committed[name]
    ]
    assert not problems, (
        f"{tree} does not match protos/; run `make protos` and commit the result:\n"
        + "\n".join(problems)
    )


def _ts_proto_options(template: str) -> list[str]:
    text = (PROTOS / template).read_text()
    block = text.split("protoc-gen-ts_proto", 1)[1]
    return re.findall(r"^\s+- (\w+=\S+)$", block, flags=re.MULTILINE)


def test_typescript_googleapis_code_uses_the_same_options() -> None:
    options = _ts_proto_options("buf.gen.yaml")
    assert "outputServices=grpc-js" in options
    assert _ts_proto_options("buf.gen.googleapis.yaml") == options


def test_protobuf_runs_on_the_upb_backend() -> None:
    # The pure-Python backend parses and serialises several times slower; falling back to
    # it silently (an unsupported platform, PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python)
    # would break the gateway's CPU budget per request.
    assert api_implementation.Type() == "upb"


def test_a_failed_buf_step_leaves_the_python_client_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Regenerating the Python package removes its old tree; the service config used to be
    # written only after every other language, so a buf step failing on a machine without
    # `.tools` left the Python client without it (a fuzz helper's worktree, this stop).
    monkeypatch.setattr(sys, "path", list(sys.path))  # the generator prepends its output

    def fail(*_: object) -> None:
        raise SystemExit("buf not set up")

    monkeypatch.setattr(generate, "generate_buf", fail)
    with pytest.raises(SystemExit):
        generate.generate(tmp_path, ["go", "python"])
    config = tmp_path / generate.OUTPUTS["python"] / "service_config.json"
    assert config.read_text() == generate.service_config(tmp_path / generate.PYTHON_SRC)
