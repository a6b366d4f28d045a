"""An AWS-wire-compatible emulator for the gateway's upstream operations.

Speaks Personalize Runtime and Bedrock (rest-json), Personalize and Amazon ML (JSON 1.1)
on one port, so aiobotocore's real serialisation, signing and error parsing run against
it. See ``README.md`` and ``example.toml`` in this folder.
"""

from gateway.emulator.config import ConfigError, EmulatorConfig, load_config, parse_config
from gateway.emulator.faults import FaultConfig
from gateway.emulator.jobs import ManualClock
from gateway.emulator.server import Emulator

__all__ = [
    "ConfigError",
    "Emulator",
    "EmulatorConfig",
    "FaultConfig",
    "ManualClock",
    "load_config",
    "parse_config",
]
