"""Every benchmark, one after the other: `python -m tests.bench.run_all` (what `make bench` runs).

Benchmarks share the machine's two cores, so they never run concurrently. Each one's own
defaults keep it to a few minutes; the gateway soak (`--soak-seconds`) is not part of it.
"""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Callable, Sequence

#: Every benchmark module; each exposes `main(argv) -> int`.
BENCHMARKS: tuple[str, ...] = (
    "tests.bench.bench_emulator",
    "tests.bench.bench_gateway",
    "tests.bench.bench_cache",
    "tests.bench.bench_overload",
    "tests.bench.bench_reject",
    "tests.bench.bench_batch",
)


def main(argv: Sequence[str] | None = None) -> int:
    if list(sys.argv[1:] if argv is None else argv):
        print("run_all takes no options; run a benchmark module directly to tune it")
        return 2
    failed = []
    for module in BENCHMARKS:
        print(f"\n== {module}", flush=True)
        started = time.monotonic()
        entry: Callable[[list[str]], int] = importlib.import_module(module).main
        code = entry([])
        print(f"== {module}: exit {code} in {time.monotonic() - started:.0f} s", flush=True)
        if code:
            failed.append(module)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
