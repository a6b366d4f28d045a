"""Caller identity, resolved once per RPC at the edge: an API key or a client certificate.

Keys appear in config only as SHA-256 digests. A presented key is hashed and compared with
every configured digest with `hmac.compare_digest`, all of them, so neither the comparison
nor the loop's length says how close a guess came. A key of 128 random bits needs no slow
hash: the digest is not reversible and there is nothing to brute-force offline.

A certificate's identity is its SPIFFE ID (the URI SAN grpc reports as `peer_spiffe_id`)
or one of its DNS SANs (`dns:<name>`), matched against `identities` of `[[auth.callers]]`.
The certificate itself was verified by the TLS handshake against `[tls] client_ca_file`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from gateway.errors import Unauthenticated
from gateway.security.authz import Rights
from gateway.security_config import AuthConfig, CallerConfig

AUTHORIZATION = "authorization"
_BEARER = "bearer "


class Caller:
    """One configured caller: its name, tenant, rights and limits (shared by its RPCs)."""

    __slots__ = ("burst", "max_streams", "name", "rate", "rights", "streams", "tenant")

    def __init__(self, cfg: CallerConfig) -> None:
        self.name = cfg.name
        #: Whose operations it sees: its team's, or its own.
        self.tenant = cfg.tenant
        self.rights = Rights(cfg.rpcs, cfg.resources)
        self.rate = cfg.rate
        self.burst = cfg.burst if cfg.burst is not None else max(1, int(cfg.rate or 1))
        self.max_streams = cfg.max_streams
        #: Streams open now in this process (with Redis, each also holds a lease there).
        self.streams = 0


def key_digest(key: str) -> str:
    """The config form of an API key (`python -m gateway.security.hashkey` prints it)."""
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


class Authenticator:
    def __init__(self, cfg: AuthConfig) -> None:
        self.callers = {c.name: Caller(c) for c in cfg.callers}
        self._keys = [
            (bytes.fromhex(digest.removeprefix("sha256:")), self.callers[c.name])
            for c in cfg.callers
            for digest in c.api_keys
        ]
        self._identities = {i: self.callers[c.name] for c in cfg.callers for i in c.identities}

    def identify(self, metadata: Mapping[str, str], context: Any) -> Caller:
        """The caller of an RPC, or Unauthenticated. A key, when sent, decides: a wrong key
        is refused even over a valid client certificate."""
        header = metadata.get(AUTHORIZATION)
        if header is not None:
            return self._by_key(header)
        found = self._by_certificate(context.auth_context())
        if found is None:
            raise Unauthenticated()
        return found

    def _by_key(self, header: str) -> Caller:
        if header[: len(_BEARER)].lower() != _BEARER:
            raise Unauthenticated()
        presented = hashlib.sha256(header[len(_BEARER) :].strip().encode()).digest()
        found = None
        for digest, caller in self._keys:
            if hmac.compare_digest(digest, presented):
                found = caller
        if found is None:
            raise Unauthenticated()
        return found

    def _by_certificate(self, auth: Mapping[str, Any]) -> Caller | None:
        for spiffe in auth.get("peer_spiffe_id", ()):
            found = self._identities.get(_text(spiffe))
            if found is not None:
                return found
        for san in auth.get("x509_subject_alternative_name", ()):
            found = self._identities.get(f"dns:{_text(san)}")
            if found is not None:
                return found
        return None


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value
