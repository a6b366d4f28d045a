"""`[tls]` and `[auth]`: transport security, caller identities, their rights and quotas
(gateway/security/; README "Security")."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field, model_validator

from gateway.schema import Count, Positive, Seconds, Text, invalid, settings

#: A key's digest as it appears in config: `sha256:` and 64 lowercase hex digits.
KeyHash = Annotated[
    str,
    Field(pattern=r"^sha256:[0-9a-f]{64}$", description='"sha256:" and 64 lowercase hex digits'),
]


@settings
class TlsConfig:
    """`[tls]`: TLS on the gRPC port; the files are read again when they change."""

    cert_file: Text
    key_file: Text
    #: The CA that signs client certificates (mTLS); "" for none.
    client_ca_file: str = ""
    #: Refuse a handshake without a client certificate signed by `client_ca_file`.
    require_client_cert: bool = False

    @model_validator(mode="after")
    def _ca_for_mtls(self) -> TlsConfig:
        if self.require_client_cert and not self.client_ca_file:
            raise invalid("require_client_cert", True, "needs client_ca_file")
        return self


@settings
class CallerConfig:
    """One `[[auth.callers]]` entry: who a caller is, what it may do, and its share."""

    name: Text
    #: Callers of one team see each other's operations; "" means the caller alone.
    team: str = ""
    #: Digests of the caller's API keys (`authorization: Bearer <key>`), never the keys.
    api_keys: tuple[KeyHash, ...] = ()
    #: Client-certificate identities: a SPIFFE ID (`spiffe://...`) or `dns:<SAN>`.
    identities: tuple[Text, ...] = ()
    #: RPCs allowed, as `<service>/<method>` globs (`mlgw.personalize_runtime.v1.*/*`).
    rpcs: tuple[Text, ...] = ("*",)
    #: Resource ARNs (and Bedrock model ids) allowed, as globs.
    resources: tuple[Text, ...] = ("*",)
    #: Requests (batch and stream entries each count one) per second, and the burst.
    rate: Positive | None = None
    burst: Count | None = None
    #: Streams open at once, across replicas with Redis (`[auth] stream_lease_seconds`).
    max_streams: Count | None = None

    @model_validator(mode="after")
    def _identified(self) -> CallerConfig:
        if not self.api_keys and not self.identities:
            raise invalid("name", self.name, "a caller needs api_keys or identities")
        for identity in self.identities:
            if not re.match(r"^(spiffe://|dns:).+", identity):
                raise invalid("identities", identity, 'must start with "spiffe://" or "dns:"')
        return self

    @property
    def tenant(self) -> str:
        return self.team or self.name


@settings
class AuthConfig:
    """`[auth]`: with callers configured, every RPC needs an identity."""

    callers: tuple[CallerConfig, ...] = ()
    #: Health and reflection stay open to anyone (load balancers probe without keys).
    open_services: tuple[Text, ...] = (
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    )
    #: With Redis, how long an open stream's lease outlives its replica's last renewal
    #: (renewed every third of it): a replica that dies frees its streams within this.
    stream_lease_seconds: Seconds = 5.0

    @model_validator(mode="after")
    def _unique(self) -> AuthConfig:
        seen: set[str] = set()
        for caller in self.callers:
            for ident in (*caller.api_keys, *caller.identities, f"name:{caller.name}"):
                if ident in seen:
                    raise invalid("callers", caller.name, f"{ident} is given twice")
                seen.add(ident)
        return self

    @property
    def enabled(self) -> bool:
        return bool(self.callers)
