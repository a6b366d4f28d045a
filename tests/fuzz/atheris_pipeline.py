"""Coverage-guided fuzzing (atheris/libFuzzer) of the offline target, every operation.

    python -m tests.fuzz.atheris_pipeline [libFuzzer flags, e.g. -runs=20000 -max_total_time=600]

An input is one byte choosing the operation (index into the operation table) and the
request body. The seeds are each operation's valid request (tests/integration/requests.py)
plus adversarial variants, so mutation starts from bodies that reach validation and the
mapping rather than dying in the decoder. libFuzzer's coverage (atheris instruments the
gateway's modules) then steers it into new branches. A defect exits non-zero with the
input written as `crash-*` (see README "Fuzzing"); `tests/unit/test_fuzz_atheris.py` runs a
short bounded session in the default tests.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["gateway"]):
    from gateway.operations import OPERATIONS
    from tests.fuzz.seeds import seed_bodies
    from tests.fuzz.targets import check, targets


def one_input(data: bytes) -> None:
    if data:
        check(data[0], data[1:])


def write_seeds(directory: Path) -> None:
    for index, op in enumerate(OPERATIONS):
        for n, body in enumerate(seed_bodies(op.name)):
            (directory / f"{op.name}-{n}").write_bytes(bytes([index]) + body)


def main(argv: list[str]) -> None:
    targets()  # compile every stage before the clock starts
    corpus = [a for a in argv[1:] if not a.startswith("-")]
    flags = [a for a in argv[1:] if a.startswith("-")]
    if not corpus:
        corpus = [tempfile.mkdtemp(prefix="mlgw-fuzz-corpus-")]
    write_seeds(Path(corpus[0]))
    atheris.Setup([argv[0], *flags, *corpus], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
