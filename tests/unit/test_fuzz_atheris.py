"""A short coverage-guided session of the atheris harness (`make fuzz` runs a long one)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support import ROOT

RUNS = 10_000


def test_a_bounded_atheris_session_finds_nothing(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    done = subprocess.run(
        [
            sys.executable, "-m", "tests.fuzz.atheris_pipeline", str(corpus),
            f"-runs={RUNS}", "-seed=1", f"-artifact_prefix={tmp_path}/",
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=100,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"Done {RUNS} runs" in done.stderr
    assert len(list(corpus.iterdir())) > 13  # seeds for every operation, plus what it found
    assert not list(tmp_path.glob("crash-*"))
