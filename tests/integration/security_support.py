"""Certificates the security tests make (the `cryptography` package): a CA, a server
certificate for 127.0.0.1, and client certificates with SPIFFE or DNS identities (valid,
expired, or from another CA); plus config and channel helpers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc

from gateway.config import Config
from gateway.security.identity import key_digest
from tests import secrets_scan
from tests.certs import Authority, Pem

__all__ = ["Authority", "Pem"]  # where the security tests have always imported them


def write_tls(directory: Path, server: Pem, ca: Authority | None) -> dict[str, Any]:
    """Write the server's files; the `[tls]` table naming them (mTLS with `ca`)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "server.pem").write_bytes(server.cert)
    (directory / "server.key").write_bytes(server.key)
    tls: dict[str, Any] = {
        "cert_file": str(directory / "server.pem"),
        "key_file": str(directory / "server.key"),
    }
    if ca is not None:
        (directory / "ca.pem").write_bytes(ca.pem)
        tls |= {"client_ca_file": str(directory / "ca.pem"), "require_client_cert": True}
    return tls


def caller(name: str, key: str | None = None, **settings: Any) -> dict[str, Any]:
    """An `[[auth.callers]]` entry; its key (planted for the secrets scan) given as a hash."""
    entry: dict[str, Any] = {"name": name, **settings}
    if key is not None:
        secrets_scan.plant(key)
        entry["api_keys"] = [key_digest(key)]
    return entry


def secure_config(endpoint_url: str, tls: dict[str, Any] | None, **sections: Any) -> Config:
    data: dict[str, Any] = {
        "server": {"host": "127.0.0.1", "port": 0, "grace_seconds": 1.0},
        "metrics": {"host": "127.0.0.1", "port": 0},
        "upstream": {"endpoint_url": endpoint_url, "region": "us-east-1"},
        **sections,
    }
    if tls is not None:
        data["tls"] = tls
    return Config.from_dict(data)


def channel(port: int, ca: Authority, client: Pem | None = None) -> grpc.aio.Channel:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=ca.pem,
        private_key=client.key if client else None,
        certificate_chain=client.cert if client else None,
    )
    return grpc.aio.secure_channel(f"127.0.0.1:{port}", credentials)


def bearer(key: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {key}"),)
