#!/usr/bin/env bash
# The system services and tools the tests and benchmarks need, on a machine that has none of
# them: installs redis-server (the shared tier, global limits) and nghttp2-client (h2load, for
# tests/bench) from Debian's packages when missing, then starts Redis on 127.0.0.1:6379 unless
# something already answers there. Safe to run again: it does nothing that is already done.
# `make test` and `make bench` run it; `.ci/run` runs `make test`.
set -euo pipefail

REDIS_HOST=127.0.0.1
REDIS_PORT=6379
# Debian package -> a command it provides.
declare -A PROVIDES=([redis-server]=redis-server [nghttp2-client]=h2load)

missing=()
for package in "${!PROVIDES[@]}"; do
  command -v "${PROVIDES[$package]}" >/dev/null 2>&1 || missing+=("$package")
done

if ((${#missing[@]})); then
  as_root=()
  if ((EUID != 0)); then
    command -v sudo >/dev/null 2>&1 || {
      echo "services.sh: need ${missing[*]} (apt-get install ${missing[*]}), and not root" >&2
      exit 1
    }
    as_root=(sudo)
  fi
  echo "services.sh: installing ${missing[*]} from Debian's packages"
  # The package lists of a fresh machine are empty: update first (apt-get install finds nothing).
  "${as_root[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

answers() { redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping >/dev/null 2>&1; }

if ! answers; then
  # No persistence: the tests' Redis holds only what the tests put there.
  redis-server --daemonize yes --bind "$REDIS_HOST" --port "$REDIS_PORT" \
    --save "" --appendonly no --logfile "${TMPDIR:-/tmp}/mlgw-test-redis.log"
  for _ in $(seq 100); do
    answers && break
    sleep 0.05
  done
  answers || {
    echo "services.sh: redis-server did not answer on $REDIS_HOST:$REDIS_PORT" >&2
    exit 1
  }
fi
