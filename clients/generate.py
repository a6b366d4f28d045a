"""Regenerate every client's code from protos/ (run via `make protos`; commit the result).

One generator, four languages:

- Python (grpcio-tools + mypy-protobuf): messages (`_pb2.py` + `.pyi`) and gRPC stubs
  (`_pb2_grpc.py` + `.pyi`) for every .proto under protos/mlgw, in clients/python/src/mlgw.
- Go (protoc-gen-go, protoc-gen-go-grpc), Java (protoc's java + protoc-gen-grpc-java) and
  TypeScript (ts-proto for @grpc/grpc-js): `buf generate` with protos/buf.gen.yaml, into
  clients/go/gen, clients/java/src/generated/java and clients/typescript/src/gen. The
  plugins are the pinned ones `make setup` installs into .tools/bin and node_modules/.bin.

Every generated tree (OUTPUTS) belongs to this script alone: it is deleted and rewritten on
every run so files of removed protos cannot linger, hence hand-written client code lives
beside it. Python, Go and TypeScript output is committed, as those ecosystems do (a Go module
and an npm package ship their sources); Java's is not (Maven generates sources at build time:
clients/java/pom.xml runs this script with `--lang java`). The output is deterministic, which
lets tests/unit/test_generated_code.py prove the committed trees fresh by regenerating them
into a temporary directory and comparing bytes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
PACKAGE = "mlgw"
PYTHON_SRC = Path("clients/python/src")
#: Each language's generated tree, relative to the repository root (or to `--out`).
OUTPUTS = {
    "python": PYTHON_SRC / PACKAGE,
    "go": Path("clients/go/gen"),
    "typescript": Path("clients/typescript/src/gen"),
    "java": Path("clients/java/src/generated/java"),
}
#: The languages whose generated code is committed (and so checked for staleness).
COMMITTED = ("python", "go", "typescript")
#: Where `make setup` installs the pinned plugins (protoc-gen-go, protoc-gen-grpc-java, ...).
TOOLS = (ROOT / ".tools" / "bin", ROOT / "node_modules" / ".bin")
BUF = ROOT / "node_modules" / ".bin" / "buf"
#: The googleapis protos TypeScript needs beyond ours: error details, and
#: google.longrunning.Operations for jobs (see buf.gen.googleapis.yaml).
TS_GOOGLEAPIS = (
    "vendor/google/rpc/status.proto",
    "vendor/google/rpc/error_details.proto",
    "vendor/google/longrunning/operations.proto",
)


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


def _buf(template: str, staging: Path, paths: Iterable[str]) -> None:
    if not BUF.exists():
        raise SystemExit(f"{BUF} not found: run `make setup`")
    missing = [
        name
        for name in ("protoc", "protoc-gen-go", "protoc-gen-go-grpc", "protoc-gen-grpc-java")
        if not (TOOLS[0] / name).exists()
    ]
    if missing:
        raise SystemExit(f"{', '.join(missing)} not in {TOOLS[0]}: run `make setup`")
    env = {**os.environ, "PATH": os.pathsep.join([*map(str, TOOLS), os.environ["PATH"]])}
    cmd = [str(BUF), "generate", "--template", template, "-o", str(staging)]
    for path in paths:
        cmd += ["--path", path]
    if subprocess.run(cmd, cwd=PROTOS, env=env, check=False).returncode != 0:
        raise SystemExit(f"buf generate --template {template} failed (see the errors above)")


def generate_buf(out: Path, languages: Sequence[str]) -> None:
    """Go, Java and TypeScript through `buf generate`, each tree replaced whole."""
    with tempfile.TemporaryDirectory() as tmp:
        staging = Path(tmp)
        _buf("buf.gen.yaml", staging, [PACKAGE])
        _buf("buf.gen.googleapis.yaml", staging, TS_GOOGLEAPIS)
        for language in languages:
            target = out / OUTPUTS[language]
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(staging / OUTPUTS[language], target)


#: The retry policy clients apply to idempotent RPCs (gRFC A6): UNAVAILABLE only (AIP-194),
#: a few fast attempts; slower failures carry RetryInfo for the caller to act on.
RETRY_POLICY = {
    "maxAttempts": 3,
    "initialBackoff": "0.1s",
    "maxBackoff": "1s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"],
}


#: google.longrunning.Operations (served for jobs): its reads are as safe to repeat.
OPERATION_READS = tuple(
    ("google.longrunning.Operations", name)
    for name in ("GetOperation", "ListOperations", "WaitOperation")
)


def service_config(python_src: Path) -> str:
    """The gRPC service config every client uses: round robin over the gateway addresses, and
    retries only for the RPCs the gateway's operation table marks idempotent (its one home)."""
    # The table imports the generated Python package: take the one just generated.
    sys.path[:0] = [str(python_src), str(ROOT)]
    from gateway.operations import OPERATIONS

    idempotent = sorted(
        [(op.service, op.name) for op in OPERATIONS if op.idempotent] + list(OPERATION_READS)
    )
    config = {
        "loadBalancingConfig": [{"round_robin": {}}],
        "methodConfig": [
            {
                "name": [{"service": svc, "method": name} for svc, name in idempotent],
                "retryPolicy": RETRY_POLICY,
            }
        ],
    }
    return json.dumps(config, indent=2, sort_keys=True) + "\n"


_NOTICE = "Generated by clients/generate.py from gateway/operations.py: do not edit."


#: The version every client distribution carries: the protos' (protos/VERSION).
VERSION_FILE = PROTOS / "VERSION"


def write_client_info(out: Path, languages: Sequence[str]) -> None:
    """The service config and the protos' version, as a constant in each language."""
    text = service_config(out / PYTHON_SRC)
    version = VERSION_FILE.read_text().strip()
    sources = {
        "python": ("service_config.json", text),
        "go": (
            "clientinfo/clientinfo.go",
            f"// {_NOTICE}\n\n// Package clientinfo holds what every client shares.\n"
            f"package clientinfo\n\n// Version is the protos' version (protos/VERSION).\n"
            f'const Version = "{version}"\n\n// ServiceConfig is the gRPC service config.\n'
            f"const ServiceConfig = `{text}`\n",
        ),
        "typescript": (
            "client_info.ts",
            f"// {_NOTICE}\n\n/** The protos' version (protos/VERSION). */\n"
            f'export const version = "{version}";\n\n/** The gRPC service config. */\n'
            f"export const serviceConfigJson = {json.dumps(text)};\n",
        ),
        "java": (
            "internal/mlgw/client/ClientInfo.java",
            f"// {_NOTICE}\npackage internal.mlgw.client;\n\n/** What every client shares. */\n"
            f"final class ClientInfo {{\n  /** The protos' version (protos/VERSION). */\n"
            f'  static final String VERSION = "{version}";\n\n  /** The gRPC service config. */\n'
            f'  static final String SERVICE_CONFIG = """\n{text}""";\n\n'
            f"  private ClientInfo() {{}}\n}}\n",
        ),
    }
    for language in languages:
        name, content = sources[language]
        path = out / OUTPUTS[language] / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)


def generate(out: Path, languages: Sequence[str]) -> None:
    # Python first, always: the service config is read from the operation table, which
    # imports the generated Python package. Its config is written before the other languages
    # are tried: regenerating the package removed the old one, and a buf step that fails
    # (tools not set up) must not leave the Python client without it.
    generate_python(out / PYTHON_SRC)
    write_client_info(out, ["python"])
    others = sorted(language for language in languages if language != "python")
    if others:
        generate_buf(out, others)
        write_client_info(out, others)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT,
        help="root that receives the generated trees at their repository paths "
        "(default: the repository)",
    )
    parser.add_argument(
        "--lang",
        action="append",
        choices=sorted(OUTPUTS),
        help="generate only this language (repeatable; default: all)",
    )
    args = parser.parse_args(argv)
    generate(args.out.resolve(), args.lang or sorted(OUTPUTS))


if __name__ == "__main__":
    main()
