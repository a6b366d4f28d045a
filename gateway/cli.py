"""`gateway serve` and `gateway emulate` (also `python -m gateway ...`)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence

from gateway import logs
from gateway.config import Config, ConfigError
from gateway.schema import changed


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "emulate":
        from gateway.emulator.__main__ import main as emulate

        forwarded = ["--port", str(args.port)]
        if args.config:
            forwarded += ["--config", args.config]
        code: int = emulate(forwarded)
        return code
    try:
        config = _config(args)
        _check_emulator_config(args.emulator_config)
    except ConfigError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2
    logs.configure(config.logging.level)
    from gateway import supervisor

    return supervisor.run(
        config,
        emulator=args.emulator,
        emulator_config=args.emulator_config,
        demo=args.demo,
    )


def _config(args: argparse.Namespace) -> Config:
    config = Config.load(args.config)
    overrides = {
        name: value
        for name, value in (("host", args.host), ("port", args.port), ("workers", args.workers))
        if value is not None
    }
    if overrides:  # checked like the file: `--port -5` is refused the same way
        server = changed(config.server, ConfigError, "server", **overrides)
        config = dataclasses.replace(config, server=server)
    if args.metrics_port is not None:
        metrics = changed(config.metrics, ConfigError, "metrics", port=args.metrics_port)
        config = dataclasses.replace(config, metrics=metrics)
    return config


def _check_emulator_config(path: str | None) -> None:
    """The built-in emulator's file is checked here too, so it fails before anything starts."""
    if path is None:
        return
    from gateway.emulator.config import ConfigError as EmulatorConfigError
    from gateway.emulator.config import load_config

    try:
        load_config(path)
    except (OSError, EmulatorConfigError) as exc:
        raise ConfigError(f"emulator config {path}: {exc}") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the gRPC gateway")
    serve.add_argument("--config", help="TOML config file (default: built-in defaults)")
    serve.add_argument("--host", help="listen address (overrides [server] host)")
    serve.add_argument("--port", type=int, help="listen port (overrides [server] port)")
    serve.add_argument("--workers", type=int, help="processes sharing the port")
    serve.add_argument("--metrics-port", type=int, help="Prometheus port; 0 disables")
    serve.add_argument(
        "--emulator", action="store_true", help="start the built-in AWS emulator and use it"
    )
    serve.add_argument("--emulator-config", help="TOML config for the built-in emulator")
    serve.add_argument(
        "--demo", action="store_true", help="once serving, make one real call and print it"
    )
    emulate = commands.add_parser("emulate", help="run only the AWS emulator")
    emulate.add_argument("--port", type=int, default=4566)
    emulate.add_argument("--config", help="emulator TOML config")
    return parser
