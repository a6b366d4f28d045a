"""``python -m gateway.emulator --port N --config FILE [--workers K]``.

Serves until SIGINT/SIGTERM. With ``--workers`` > 1 the extra workers are separate
processes sharing the port through SO_REUSEPORT (the kernel spreads connections); each
keeps its own jobs, counters and fault state, so use one worker when a test inspects
those.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
from collections.abc import Sequence
from dataclasses import replace

from gateway.emulator.config import ConfigError, EmulatorConfig, load_config
from gateway.emulator.process import run_worker
from gateway.schema import changed

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m gateway.emulator",
        description="AWS wire-compatible emulator for Personalize, Amazon ML and Bedrock batch.",
    )
    p.add_argument("--config", help="TOML config file (see gateway/emulator/example.toml)")
    p.add_argument("--host", help="listen address (default: server.host, 127.0.0.1)")
    p.add_argument("--port", type=int, help="listen port (default: server.port; 0 = any)")
    p.add_argument("--workers", type=int, help="processes sharing the port (SO_REUSEPORT)")
    p.add_argument("--job-step-seconds", type=float, help="override jobs.step_seconds")
    p.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = load_config(args.config) if args.config else EmulatorConfig()
    except (OSError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    server = config.server
    try:  # checked like the file: `--port -5` is one line, not a traceback
        server = changed(
            server,
            ConfigError,
            "server",
            host=args.host if args.host is not None else server.host,
            port=args.port if args.port is not None else server.port,
            workers=args.workers if args.workers is not None else server.workers,
        )
        if args.job_step_seconds is not None:
            config = replace(
                config,
                jobs=changed(config.jobs, ConfigError, "jobs", step_seconds=args.job_step_seconds),
            )
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    config = replace(config, server=server)
    if server.workers > 1 and server.port == 0:
        print("error: --workers > 1 needs an explicit --port", file=sys.stderr)
        return 2
    reuse = server.workers > 1
    children = []
    ctx = multiprocessing.get_context("spawn")
    for _ in range(server.workers - 1):
        child = ctx.Process(target=run_worker, args=(config, True, args.log_level), daemon=True)
        child.start()
        children.append(child)
    try:
        run_worker(config, reuse, args.log_level)
    except KeyboardInterrupt:
        pass
    finally:
        for child in children:
            child.terminate()
            child.join(timeout=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
