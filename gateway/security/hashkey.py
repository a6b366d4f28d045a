"""Print the config form of an API key read from stdin (never from argv, which shells keep
in their history): `printf %s "$KEY" | python -m gateway.security.hashkey`."""

from __future__ import annotations

import sys

from gateway.security.identity import key_digest


def main() -> None:
    key = sys.stdin.read().strip()
    if not key:
        sys.exit("no key on stdin")
    print(key_digest(key))


if __name__ == "__main__":
    main()
