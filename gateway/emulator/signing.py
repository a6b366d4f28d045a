"""Optional SigV4 verification, done by botocore's own signer (``botocore.auth.SigV4Auth``).

Off unless ``[auth] credentials`` are configured. The point is a cross-check: a client
that signs with its own SigV4 code is verified by an independent implementation, so
the emulator deliberately uses botocore and nothing from the gateway.

The received request is rebuilt as a ``botocore.awsrequest.AWSRequest`` holding only the
headers named in ``SignedHeaders`` (received values, repeated headers kept), the raw
body bytes and ``http://<Host><raw path and query>``, and botocore computes the
signature for it with the secret of the access key in the credential scope, the scope's
region and service, and ``X-Amz-Date`` as the timestamp. Errors are AWS's: malformed
header -> IncompleteSignatureException, unknown access key ->
UnrecognizedClientException, anything else -> InvalidSignatureException (403).
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from botocore.auth import SIGNED_HEADERS_BLACKLIST, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from multidict import CIMultiDictProxy

from gateway.emulator.protocol import AwsError

__all__ = [
    "MAX_SKEW_SECONDS",
    "SIGNATURE_MISMATCH",
    "ParsedAuthorization",
    "SigV4Verifier",
    "parse_authorization",
]

_log = logging.getLogger("gateway.emulator")

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW_SECONDS = 15 * 60
SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)
_TIMESTAMP = "%Y%m%dT%H%M%SZ"
_HEX = frozenset("0123456789abcdef")
_BLACKLIST = frozenset(SIGNED_HEADERS_BLACKLIST)


def _incomplete(message: str) -> AwsError:
    # No explicit status: the same one as the emulator's presence check (protocol.py).
    return AwsError("IncompleteSignatureException", message)


def _invalid(message: str) -> AwsError:
    return AwsError("InvalidSignatureException", message, 403)


@dataclass(frozen=True)
class ParsedAuthorization:
    """The parts of ``AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...``."""

    access_key: str
    date: str  # yyyymmdd
    region: str
    service: str
    signed_headers: str  # as received, e.g. "content-type;host;x-amz-date"
    signature: str


def parse_authorization(value: str) -> ParsedAuthorization:
    """Parse an Authorization header; raises IncompleteSignatureException if malformed."""
    if not value.startswith(ALGORITHM + " "):
        raise _incomplete(f"Authorization header requires {ALGORITHM} as the algorithm.")
    params: dict[str, str] = {}
    for part in value[len(ALGORITHM) + 1 :].split(","):
        key, sep, val = part.strip().partition("=")
        if not sep or key in params:
            raise _incomplete(
                f"Authorization header requires each component as key=value once: {part!r}"
            )
        params[key] = val
    missing = [k for k in ("Credential", "SignedHeaders", "Signature") if not params.get(k)]
    if missing or len(params) != 3:
        wanted = missing or sorted(set(params) - {"Credential", "SignedHeaders", "Signature"})
        raise _incomplete(
            "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' "
            f"parameters (and nothing else); problem with: {', '.join(wanted)}."
        )
    scope = params["Credential"].split("/")
    if len(scope) != 5 or not all(scope) or scope[4] != "aws4_request":
        raise _incomplete(
            "Credential must have the form <access key>/<yyyymmdd>/<region>/<service>/aws4_request."
        )
    if len(scope[1]) != 8 or not scope[1].isdigit():
        raise _incomplete(f"Credential scope date must be yyyymmdd, got '{scope[1]}'.")
    signed = params["SignedHeaders"]
    names = signed.split(";")
    if not all(names) or signed != signed.lower() or names != sorted(set(names)):
        raise _incomplete(
            "SignedHeaders must be lowercase header names, sorted, unique and "
            f"separated by ';', got '{signed}'."
        )
    signature = params["Signature"]
    if len(signature) != 64 or not _HEX.issuperset(signature):
        raise _incomplete("Signature must be 64 lowercase hex digits.")
    return ParsedAuthorization(scope[0], scope[1], scope[2], scope[3], signed, signature)


def _check_time(amz_date: str, scope_date: str, now: float) -> None:
    try:
        signed_at = calendar.timegm(time.strptime(amz_date, _TIMESTAMP))
    except ValueError:
        raise _incomplete(
            f"Date must be in ISO-8601 'basic format'. Got '{amz_date}'. "
            "See http://en.wikipedia.org/wiki/ISO_8601"
        ) from None
    if len(amz_date) != 16:  # strptime accepts unpadded fields; SigV4 does not
        raise _incomplete(f"Date must be in ISO-8601 'basic format'. Got '{amz_date}'.")
    if amz_date[:8] != scope_date:
        raise _invalid(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: '{scope_date}' != '{amz_date[:8]}', from 'X-Amz-Date'."
        )

    def fmt(epoch: float) -> str:
        return time.strftime(_TIMESTAMP, time.gmtime(epoch))

    if signed_at < now - MAX_SKEW_SECONDS:
        raise _invalid(
            f"Signature expired: {amz_date} is now earlier than "
            f"{fmt(now - MAX_SKEW_SECONDS)} ({fmt(now)} - 15 min.)"
        )
    if signed_at > now + MAX_SKEW_SECONDS:
        raise _invalid(
            f"Signature not yet current: {amz_date} is still later than "
            f"{fmt(now + MAX_SKEW_SECONDS)} ({fmt(now)} + 15 min.)"
        )


class SigV4Verifier:
    """Checks requests against ``credentials`` (access key id -> secret access key).

    Args:
        credentials: the accepted key pairs.
        now: epoch-seconds wall clock for the 15-minute skew window.
    """

    def __init__(
        self, credentials: Mapping[str, str], *, now: Callable[[], float] = time.time
    ) -> None:
        self._credentials = dict(credentials)
        self._now = now

    def verify(
        self, method: str, raw_path: str, headers: CIMultiDictProxy[str], body: bytes
    ) -> ParsedAuthorization:
        """Verify one request; returns the parsed header (for its scope) or raises AwsError."""
        auth = parse_authorization(headers.get("Authorization", ""))
        secret = self._credentials.get(auth.access_key)
        if secret is None:
            raise AwsError(
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
                403,
            )
        amz_date = headers.get("X-Amz-Date", "")
        _check_time(amz_date, auth.date, self._now())
        names = auth.signed_headers.split(";")
        for required in ("host", "x-amz-date"):
            if required not in names:
                raise _invalid(f"'{required}' must be a 'SignedHeader' in the AWS Authorization.")
        request = AWSRequest(method=method, url=f"http://{headers.get('Host', '')}{raw_path}")
        for name in names:
            if name in _BLACKLIST:
                # botocore never signs these, so it cannot verify a signature over them.
                raise _invalid(f"Header '{name}' may not be a 'SignedHeader' here.")
            values = headers.getall(name, None)
            if values is None:
                raise _invalid(f"Header '{name}' is in SignedHeaders but not in the request.")
            for value in values:  # HTTPHeaders keeps repeats; botocore joins them with ","
                request.headers[name] = value
        content_sha = request.headers.get("x-amz-content-sha256")
        # botocore trusts a signed X-Amz-Content-SHA256 instead of hashing the body, so it
        # must be the body's hash, or a changed body would still verify.
        if content_sha is not None and content_sha != hashlib.sha256(body).hexdigest():
            raise _invalid("The provided 'x-amz-content-sha256' header does not match the body.")
        request.data = body
        request.context["timestamp"] = amz_date
        signer = SigV4Auth(Credentials(auth.access_key, secret), auth.service, auth.region)
        if signer.signed_headers(signer.headers_to_sign(request)) != auth.signed_headers:
            raise _invalid(SIGNATURE_MISMATCH)
        canonical = signer.canonical_request(request)
        string_to_sign = signer.string_to_sign(request, canonical)
        expected = signer.signature(string_to_sign, request)
        if not hmac.compare_digest(expected, auth.signature):
            # Only what a signer debugs with: the canonical request holds signed header
            # values (a session token among them), so it is not logged.
            _log.debug(
                "SigV4 mismatch for access key %s; signed headers %s; string to sign:\n%s",
                auth.access_key,
                auth.signed_headers,
                string_to_sign,
            )
            raise _invalid(SIGNATURE_MISMATCH)
        return auth
