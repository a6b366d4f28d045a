"""Test certificates made in-process with `cryptography` (no `openssl` command needed): one
certificate authority for the security tests, Redis over TLS and the clients' TLS tests. Every
private key it issues is planted in the secrets scan (tests/secrets_scan.py)."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

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


def write_server_certificates(directory: Path, client: bool = False) -> None:
    """`ca.crt` (a fresh CA) and `server.crt` / `server.key` for 127.0.0.1 and localhost;
    with `client`, also `client.crt` / `client.key` (signed by the same CA) for mTLS."""
    directory.mkdir(parents=True, exist_ok=True)
    authority = Authority()
    server = authority.server()
    (directory / "ca.crt").write_bytes(authority.pem)
    (directory / "server.crt").write_bytes(server.cert)
    (directory / "server.key").write_bytes(server.key)
    if client:
        made = authority.dns("mlgw-test-client")
        (directory / "client.crt").write_bytes(made.cert)
        (directory / "client.key").write_bytes(made.key)
