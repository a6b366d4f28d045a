"""Every client distribution carries the protos' version (protos/VERSION)."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = ROOT / "clients"
VERSION = (ROOT / "protos" / "VERSION").read_text().strip()


def test_the_version_is_semantic() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+", VERSION)


def test_python_distribution() -> None:
    project = tomllib.loads((CLIENTS / "python" / "pyproject.toml").read_text())["project"]
    assert project["version"] == VERSION


def test_npm_package() -> None:
    assert json.loads((CLIENTS / "typescript" / "package.json").read_text())["version"] == VERSION


def test_maven_artifact() -> None:
    pom = (CLIENTS / "java" / "pom.xml").read_text()
    artifact = re.search(r"<artifactId>mlgw-client</artifactId>\s*<version>([^<]+)</version>", pom)
    assert artifact is not None
    assert artifact.group(1) == VERSION


def test_go_module_constant() -> None:
    # A Go module's version is its git tag (clients/go/vX.Y.Z); the generated constant says
    # which protos the code came from.
    source = (CLIENTS / "go" / "gen" / "clientinfo" / "clientinfo.go").read_text()
    assert f'const Version = "{VERSION}"' in source
