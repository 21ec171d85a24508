"""``eventrelay serve``: ingest, delivery and the admin API on one port.

Without ``--config`` it runs the embedded default (demo, ``eventrelay/demo.py``): a configuration it
writes into ./eventrelay-data once (SQLite there, the local AWS endpoint with an example handler),
served like any other. What it prints (the URL, the admin token, the write key) comes once the port
is bound; ``cli/running.py`` records where it listens for the other commands.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import uvicorn

from eventrelay.cli import running
from eventrelay.config import load_config
from eventrelay.config.model import Config, LocalAws
from eventrelay.config.store import merge_api_entities
from eventrelay.core.errors import ConfigError

DEFAULT_PORT = 8088


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("serve", help="run eventrelay (demo without --config)")
    p.add_argument("--config", help="configuration file; without it the embedded demo runs")
    p.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"listen port (default {DEFAULT_PORT})")
    p.add_argument(
        "--role",
        choices=("ingest", "deliver", "all"),
        default="all",
        help="ingest only, deliver only, or both (default all)",
    )
    p.add_argument("--data-dir", default=None, help="demo data directory (default ./eventrelay-data)")
    p.add_argument("--log-level", default=os.environ.get("EVENTRELAY_LOG_LEVEL", "info"))
    p.set_defaults(func=run)


# The SQLite writer threads hand the GIL back and forth with the event loop; at Python's default
# 5 ms switch interval a busy loop starves them (measured: ~2x throughput under load at 0.5 ms).
GIL_SWITCH_INTERVAL = 0.0005


def run(args: argparse.Namespace) -> int:
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency through uvicorn[standard]
        pass
    return asyncio.run(serve(args))


async def serve(args: argparse.Namespace) -> int:
    from eventrelay.runtime import Runtime

    if args.config:
        config_file, demo = Path(args.config), False
    else:
        from eventrelay.demo import DEFAULT_DATA_DIR, prepare

        config_file, demo = prepare(args.data_dir or DEFAULT_DATA_DIR), True
    config = merge_api_entities(load_config(config_file))
    localaws = await _start_localaws(config) if config.localaws is not None else None
    runtime = Runtime(config, role=args.role, config_file=str(config_file.resolve()))
    await runtime.start()
    gc.freeze()  # start-up objects are permanent: full collections need not walk them on every request
    server = _GracefulServer(
        runtime.server_config(host=args.host, port=args.port),
        on_started=lambda port: _announce(runtime, config_file, args, port, demo=demo),
    )
    try:
        await server.serve()
    finally:
        running.forget(config)
        await runtime.stop()
        if localaws is not None:
            await localaws.stop()
    return 0


class _GracefulServer(uvicorn.Server):
    """uvicorn re-raises SIGTERM/SIGINT once ``serve()`` returns, which would end the process
    before in-flight deliveries settle. Here the signal only stops the server; ``serve`` then
    stops the runtime (in-flight attempts finish and are recorded) and exits normally.
    ``on_started(port)`` runs once the port is bound (a port in use ends ``startup`` before it)."""

    def __init__(self, config: uvicorn.Config, *, on_started: Callable[[int], None]) -> None:
        super().__init__(config)
        self._on_started = on_started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self._on_started(int(self.servers[0].sockets[0].getsockname()[1]))

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        originals = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in originals.items():
                signal.signal(sig, handler)


async def _start_localaws(config: Config) -> Any:
    from eventrelay.localaws.server import print_echo, start_from_config

    local = config.localaws or LocalAws()
    echo = None if local.echo_logs is False else print_echo  # handler output on serve's own output
    try:
        return await start_from_config(config, echo=echo)
    except OSError as exc:
        raise ConfigError(
            "localaws.port",
            f"the local AWS endpoint cannot listen on {local.host}:{local.port}: {exc.strerror} "
            "(does another eventrelay run with this configuration?)",
        ) from exc


def _announce(runtime: Any, config_file: Path, args: argparse.Namespace, port: int, *, demo: bool) -> None:
    config = runtime.config
    url = running.remember(config, args.host, port)
    print(f"eventrelay listening on {url} (role {args.role}, storage {config.storage.backend})", flush=True)
    if demo:
        from eventrelay.demo import hints

        for line in hints(config, config_file, url):
            print(line, flush=True)
    elif runtime.generated_admin_token:
        print(f"admin token (generated for this run): {runtime.admin_token}", flush=True)
