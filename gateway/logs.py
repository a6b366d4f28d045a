"""Structured JSON logs, one object per line, with secrets scrubbed on the way out.

Nothing on the hot path logs; errors log once at warning with the request ids. The scrubber
is defence in depth: no code path is meant to log credentials, but if an exception text
ever carries an access key, a signature or a session token, it is masked here.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any

_SECRETS = re.compile(
    r"(?P<key>(?:AKIA|ASIA)[A-Z0-9]{12,})"
    r"|(?P<sig>Signature=)[0-9a-f]+"
    r"|(?P<cred>Credential=)[^,\s]+"
    r"|(?P<tok>(?:X-Amz-Security-Token|aws_secret_access_key|aws_session_token)[\"']?\s*[:=]\s*[\"']?)[^\s,\"']+",
    re.IGNORECASE,
)

#: LogRecord attributes that are not user-supplied `extra` fields.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def scrub(text: str) -> str:
    def mask(match: re.Match[str]) -> str:
        if match.group("key"):
            return "AKIA****"
        prefix = match.group("sig") or match.group("cred") or match.group("tok")
        return f"{prefix}****"

    return _SECRETS.sub(mask, text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return scrub(json.dumps(entry, default=str, ensure_ascii=False))


def configure(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # botocore logs request details (including headers) at debug; never let them through.
    logging.getLogger("botocore").setLevel(max(logging.INFO, root.level))
    logging.getLogger("aiobotocore").setLevel(max(logging.INFO, root.level))


class LogBudget:
    """A token bucket for one log line a caller can trigger at will (e.g. undecodable
    requests): at most `burst` lines at once and `rate` per second after that, so a
    hostile caller cannot flood the log. The next line that is let through says how many
    were suppressed since the last one."""

    __slots__ = ("_burst", "_clock", "_rate", "_stamp", "_tokens", "suppressed")

    def __init__(
        self, rate: float = 1.0, burst: float = 5.0, *, clock: Any = time.monotonic
    ) -> None:
        self._rate = rate
        self._burst = burst
        self._clock = clock
        self._tokens = burst
        self._stamp = clock()
        self.suppressed = 0

    def take(self) -> int | None:
        """None: suppress this line (counted). Else the number suppressed before it."""
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        if self._tokens < 1.0:
            self.suppressed += 1
            return None
        self._tokens -= 1.0
        suppressed, self.suppressed = self.suppressed, 0
        return suppressed
