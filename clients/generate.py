"""Regenerate the client code from protos/ (run via `make protos`; commit the result).

Python: messages (`_pb2.py` + `.pyi`) and gRPC stubs (`_pb2_grpc.py` + `.pyi`) for every
.proto under protos/mlgw, written to clients/python/src/mlgw. That `mlgw/` tree belongs to
this script alone: it is deleted and rewritten on every run so files of removed protos
cannot linger, hence hand-written client code must live in another package. The output
is deterministic, which lets tests/unit/test_generated_code.py prove the committed tree
is fresh by regenerating it into a temporary directory and comparing bytes.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
PACKAGE = "mlgw"
DEFAULT_OUT = ROOT / "clients" / "python" / "src"


def _plugin(name: str) -> Path:
    # Console scripts sit next to the interpreter of the venv running us; that directory
    # is often not on PATH (`.venv/bin/python clients/generate.py`), so look there first.
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return beside
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"{name} not found: install the dev extras (mypy-protobuf)")
    return Path(found)


def generate_python(out: Path) -> None:
    # Paths relative to protos/ (and cwd=protos) make protoc record import paths such as
    # "mlgw/bedrock/v1/bedrock.proto" whatever the caller's cwd; sorting fixes the order.
    protos = sorted(p.relative_to(PROTOS).as_posix() for p in (PROTOS / PACKAGE).rglob("*.proto"))
    with tempfile.TemporaryDirectory() as tmp:
        staging = Path(tmp)
        cmd = [
            sys.executable,  # the grpc_tools protoc of this venv, not a system protoc
            "-m",
            "grpc_tools.protoc",
            "-I.",
            # googleapis protos (google/rpc, google/longrunning, google/api) for imports only:
            # their Python modules come from googleapis-common-protos (protos/vendor/README.md).
            "-Ivendor",
            f"--plugin=protoc-gen-mypy_grpc={_plugin('protoc-gen-mypy_grpc')}",
            f"--python_out={staging}",
            f"--pyi_out={staging}",
            f"--grpc_python_out={staging}",
            f"--mypy_grpc_out=quiet:{staging}",  # quiet: no "Writing ..." line per file
            *protos,
        ]
        if subprocess.run(cmd, cwd=PROTOS, check=False).returncode != 0:
            raise SystemExit("protoc failed (see the errors above)")
        # Regular packages rather than namespace packages: setuptools' find_packages and
        # mypy both need the __init__.py files to see the generated modules.
        for directory in [staging / PACKAGE, *(staging / PACKAGE).rglob("*")]:
            if directory.is_dir():
                (directory / "__init__.py").write_bytes(b"")
        (staging / PACKAGE / "py.typed").write_bytes(b"")  # PEP 561: ship the .pyi stubs
        target = out / PACKAGE
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(staging / PACKAGE, target)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help=f"directory that receives the {PACKAGE}/ package (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    generate_python(args.out.resolve())


if __name__ == "__main__":
    main()
