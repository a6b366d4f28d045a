"""Running the emulator as a process: an event loop (uvloop), signals, clean shutdown.

Kept out of ``__main__`` so ``multiprocessing`` (spawn) can import the worker entry
point by name in the extra ``--workers`` processes.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from gateway.emulator.config import EmulatorConfig
from gateway.emulator.server import Emulator

__all__ = ["run_worker", "serve"]


async def serve(config: EmulatorConfig, reuse_port: bool) -> None:
    """Serve until SIGINT or SIGTERM."""
    emulator = Emulator(config)
    await emulator.start(config.server.host, config.server.port, reuse_port=reuse_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await emulator.stop()


def run_worker(config: EmulatorConfig, reuse_port: bool, log_level: str) -> None:
    """One serving process, on uvloop (asyncio's default loop if uvloop is missing)."""
    logging.basicConfig(level=log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a declared dependency
        asyncio.run(serve(config, reuse_port))
    else:
        uvloop.run(serve(config, reuse_port))
