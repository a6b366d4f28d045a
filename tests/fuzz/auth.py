"""The live fuzz's `[auth]` pass: a gateway with three API-key callers, and inputs whose
`authorization` metadata is hostile.

Callers (keys in config only as SHA-256 digests): `fuzz-admin` may do everything;
`fuzz-narrow` may call the runtime, batch and WatchOperation RPCs on this account's
campaigns only (any other RPC or ARN is PERMISSION_DENIED, entry by entry in batches and
streams); `fuzz-limited` has 1 request per second, a burst of 5 and one stream at a time
(RESOURCE_EXHAUSTED with QuotaFailure and RetryInfo almost at once). The metadata: no key,
other schemes, an empty or 4,000-character bearer, an unknown key, a valid key one
character off or without its scheme, two `authorization` entries, each caller's key alone
and with other hostile metadata. None of the keys may reach the gateway's log.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from mlgw.jobs.v1 import jobs_pb2

from tests.integration.requests import ARN
from tests.integration.security_support import bearer, caller

Metadata = tuple[tuple[str, str | bytes], ...]

ADMIN_KEY = "fuzz-admin-key-0123456789abcdef0123456789"
NARROW_KEY = "fuzz-narrow-key-0123456789abcdef012345678"
LIMITED_KEY = "fuzz-limited-key-0123456789abcdef01234567"
#: Configured for no caller.
UNKNOWN_KEY = "fuzz-unknown-key-0123456789abcdef0123456"
KEYS = (ADMIN_KEY, NARROW_KEY, LIMITED_KEY, UNKNOWN_KEY)

_JOBS = jobs_pb2.DESCRIPTOR.services_by_name["JobsService"].full_name
NARROW_RPCS = (
    "mlgw.personalize_runtime.v1.*/*",
    "mlgw.batch.v1.BatchService/*",
    f"{_JOBS}/WatchOperation",
)


def callers() -> list[dict[str, Any]]:
    """The `[[auth.callers]]` entries (their keys planted for the secrets scan)."""
    return [
        caller("fuzz-admin", key=ADMIN_KEY),
        caller(
            "fuzz-narrow",
            key=NARROW_KEY,
            rpcs=list(NARROW_RPCS),
            resources=[f"{ARN}:campaign/*"],
        ),
        caller("fuzz-limited", key=LIMITED_KEY, rate=1.0, burst=5, max_streams=1),
    ]


def auth_toml() -> str:
    """The `[auth]` tables of the pass's gateway (JSON scalars and arrays are TOML too)."""
    tables = []
    for entry in callers():
        lines = "".join(f"{key} = {json.dumps(value)}\n" for key, value in entry.items())
        tables.append(f"[[auth.callers]]\n{lines}")
    return "".join(tables)


def _bearer(key: str) -> tuple[str, str]:
    return bearer(key)[0]


_FLOOD: Metadata = tuple((f"x-flood-{i:03d}", "v" * 20) for i in range(60))
_BASIC = base64.b64encode(b"fuzz-admin:" + ADMIN_KEY.encode()).decode()

METADATA: tuple[Metadata, ...] = (
    (),
    (("authorization", f"Basic {_BASIC}"),),
    (("authorization", "Bearer"),),
    (("authorization", "Bearer "),),
    (("authorization", "Bearer " + "k" * 4000),),
    (_bearer(UNKNOWN_KEY),),
    (_bearer(ADMIN_KEY + "x"),),
    (("authorization", ADMIN_KEY),),
    (_bearer(UNKNOWN_KEY), _bearer(ADMIN_KEY)),  # the first entry decides
    (_bearer(NARROW_KEY),),
    (_bearer(NARROW_KEY), ("cache-control", "no-cache, max-age=-1")),
    (_bearer(LIMITED_KEY),),
    (_bearer(LIMITED_KEY), ("x-request-id", "r" * 4000)),
    (_bearer(ADMIN_KEY),),
    (_bearer(ADMIN_KEY), *_FLOOD),
    (_bearer(ADMIN_KEY), ("x-fuzz-bin", b"\xff\x00\xfe")),
)


def admin() -> Metadata:
    return bearer(ADMIN_KEY)
