"""The committed generated code is exactly what clients/generate.py makes from protos/ now."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from google.protobuf.internal import api_implementation

ROOT = Path(__file__).resolve().parents[2]
GENERATOR = ROOT / "clients" / "generate.py"
COMMITTED = ROOT / "clients" / "python" / "src"
PACKAGE = "mlgw"


def _tree(root: Path) -> dict[str, bytes]:
    # Importing the committed package (it is installed editable) leaves __pycache__ next
    # to it; bytecode is not generated output, so it is not compared.
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in (root / PACKAGE).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


def test_committed_generated_code_matches_protos(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(GENERATOR), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"clients/generate.py failed:\n{result.stdout}{result.stderr}"

    fresh, committed = _tree(tmp_path), _tree(COMMITTED)
    problems = [f"  missing:  {name}" for name in sorted(fresh.keys() - committed.keys())]
    problems += [f"  stale:    {name}" for name in sorted(committed.keys() - fresh.keys())]
    problems += [
        f"  outdated: {name}"
        for name in sorted(fresh.keys() & committed.keys())
        if fresh[name] != committed[name]
    ]
    assert not problems, (
        f"{COMMITTED.relative_to(ROOT)}/{PACKAGE} does not match protos/; "
        "run `make protos` and commit the result:\n" + "\n".join(problems)
    )


def test_protobuf_runs_on_the_upb_backend() -> None:
    # The pure-Python backend parses and serialises several times slower; falling back to
    # it silently (an unsupported platform, PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python)
    # would break the gateway's CPU budget per request.
    assert api_implementation.Type() == "upb"
