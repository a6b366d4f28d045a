"""Certificates the security tests make (the `cryptography` package): a CA, a server
certificate for 127.0.0.1, and client certificates with SPIFFE or DNS identities (valid,
expired, or from another CA); plus config and channel helpers."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.config import Config
from gateway.security.identity import key_digest
from tests import secrets_scan

_NOW = datetime.datetime.now(datetime.UTC)


@dataclass
class Pem:
    cert: bytes
    key: bytes


class Authority:
    """A CA that issues server and client certificates."""

    def __init__(self, name: str = "mlgw test CA") -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self._name = subject
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_NOW - datetime.timedelta(days=1))
            .not_valid_after(_NOW + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        self.pem = self.cert.public_bytes(serialization.Encoding.PEM)

    def issue(
        self, names: list[x509.GeneralName], *, expired: bool = False, server: bool = False
    ) -> Pem:
        key = ec.generate_private_key(ec.SECP256R1())
        start, end = _NOW - datetime.timedelta(days=1), _NOW + datetime.timedelta(days=7)
        if expired:
            start, end = _NOW - datetime.timedelta(days=10), _NOW - datetime.timedelta(days=2)
        usage = x509.ExtendedKeyUsageOID.SERVER_AUTH if server else None
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mlgw test")]))
            .issuer_name(self._name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
        )
        if usage is not None:
            builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        cert = builder.sign(self._key, hashes.SHA256())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        secrets_scan.plant(pem.decode())
        return Pem(cert.public_bytes(serialization.Encoding.PEM), pem)

    def server(self) -> Pem:
        names: list[x509.GeneralName] = [
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        ]
        return self.issue(names, server=True)

    def spiffe(self, uri: str, **kw: Any) -> Pem:
        return self.issue([x509.UniformResourceIdentifier(uri)], **kw)

    def dns(self, name: str, **kw: Any) -> Pem:
        return self.issue([x509.DNSName(name)], **kw)


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
