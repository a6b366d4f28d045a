"""AWS Signature Version 4 for the fast path's fixed-shape requests.

botocore's `SigV4Auth` re-derives everything per request (URL parsing, header filtering,
the signing-key chain of four HMACs) and costs ~150 µs a call here. A fast-path request has
a fixed method and path, so the canonical URI and the scope's tail are built once per
operation, and the signing key once per day and secret. What is left per request is the
canonical headers (three or four), two SHA-256 and one HMAC.

Follows https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html;
tests/unit/test_sigv4.py checks every signature against botocore's, and the emulator can
verify them with botocore independently (its `[auth] credentials`).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import quote, urlsplit

ALGORITHM = "AWS4-HMAC-SHA256"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def host_header(url: str) -> str:
    """The Host value an HTTP client sends for `url` (default ports left out)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if parts.port is not None and parts.port != _DEFAULT_PORTS.get(parts.scheme):
        host = f"{host}:{parts.port}"
    return host


def amz_date(now: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))


class RequestSigner:
    """Signs requests with one method and URL for one service and region.

    `authorization` signs every header it is given (lower-case names) plus `host`, which
    it derives from the URL as an HTTP client would send it.
    """

    def __init__(self, method: str, url: str, service: str, region: str) -> None:
        parts = urlsplit(url)
        self._prefix = f"{method}\n{quote(parts.path or '/', safe='/~')}\n{parts.query}\n"
        self.host = host_header(url)
        self._scope_tail = f"/{region}/{service}/aws4_request"
        self._region = region
        self._service = service
        self._keys: tuple[str, str, bytes] | None = None  # (secret, date, signing key)

    def authorization(
        self, access_key: str, secret_key: str, date: str, headers: dict[str, str], body: bytes
    ) -> str:
        """The Authorization header for a request sent at `date` (an X-Amz-Date value)."""
        signed = {"host": self.host, **headers}
        names = sorted(signed)
        canonical = "".join(f"{name}:{' '.join(signed[name].split())}\n" for name in names)
        signed_names = ";".join(names)
        request = f"{self._prefix}{canonical}\n{signed_names}\n{hashlib.sha256(body).hexdigest()}"
        day = date[:8]
        scope = f"{day}{self._scope_tail}"
        to_sign = "\n".join((ALGORITHM, date, scope, hashlib.sha256(request.encode()).hexdigest()))
        signature = hmac.new(self._key(secret_key, day), to_sign.encode(), "sha256").hexdigest()
        return (
            f"{ALGORITHM} Credential={access_key}/{scope}, "
            f"SignedHeaders={signed_names}, Signature={signature}"
        )

    def _key(self, secret_key: str, day: str) -> bytes:
        cached = self._keys
        if cached is not None and cached[0] == secret_key and cached[1] == day:
            return cached[2]
        key = f"AWS4{secret_key}".encode()
        for part in (day, self._region, self._service, "aws4_request"):
            key = hmac.new(key, part.encode(), "sha256").digest()
        self._keys = (secret_key, day, key)
        return key
