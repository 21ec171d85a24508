"""``eventrelay serve``: ingest, delivery and the admin API on one port.

Without ``--config`` it runs the embedded default (demo): SQLite in ./eventrelay-data, the local
AWS endpoint with an example handler, a write key printed on start.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn

from eventrelay.cli.stopping import StopSignals
from eventrelay.config import load_config
from eventrelay.config.model import Config
from eventrelay.config.store import merge_api_entities
from eventrelay.storage.dirlock import lock_data_dir

DEFAULT_PORT = 8088
DEMO_DATA_DIR = "./eventrelay-data"


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
    p.add_argument("--data-dir", default=None, help=f"demo data directory (default {DEMO_DATA_DIR})")
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
    config = merge_api_entities(load_config(args.config)) if args.config else None
    # One deployment per data directory (storage/dirlock.py): refused here, before anything opens.
    lock = lock_data_dir(Path(config.storage.path if config else args.data_dir or DEMO_DATA_DIR))
    stopping = StopSignals()  # from before delivery starts until the runtime stopped (cli/stopping.py)
    stopping.install()
    try:
        await _serve(args, config, stopping)
    finally:
        stopping.remove()
        lock.release()
    return 0


async def _serve(args: argparse.Namespace, config: Config | None, stopping: StopSignals) -> None:
    from eventrelay.runtime import Runtime

    localaws = None
    if config is not None:
        if config.localaws is not None:
            localaws = await _start_localaws(config)
    else:
        from eventrelay.demo import demo_config

        config, localaws = await demo_config(args.data_dir or DEMO_DATA_DIR, port=args.port)
    runtime = Runtime(config, role=args.role)
    await runtime.start()
    gc.freeze()  # start-up objects are permanent: full collections need not walk them on every request
    _announce(runtime, config, args, demo=not args.config)
    server = _GracefulServer(runtime.server_config(host=args.host, port=args.port))
    stopping.on_stop(runtime.stop_claiming)
    stopping.on_stop(server.request_exit)
    try:
        await server.serve()
    finally:
        await runtime.stop()
        if localaws is not None:
            await localaws.stop()


class _GracefulServer(uvicorn.Server):
    """uvicorn handles SIGTERM/SIGINT itself only while ``serve()`` runs, then re-raises them,
    which would end the process before in-flight deliveries settle. Here ``StopSignals`` owns
    the signals for the whole run; the first one only stops the server (``request_exit``);
    ``serve`` then stops the runtime (in-flight attempts finish and are recorded) and exits."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def request_exit(self) -> None:
        self.should_exit = True


async def _start_localaws(config: Config) -> Any:
    from eventrelay.localaws.server import start_from_config

    return await start_from_config(config)


def _announce(runtime: Any, config: Config, args: argparse.Namespace, *, demo: bool) -> None:
    url = f"http://{args.host}:{args.port}"
    print(f"eventrelay listening on {url} (role {args.role}, storage {config.storage.backend})", flush=True)
    if runtime.generated_admin_token:
        print(f"admin token (generated for this run): {runtime.admin_token}", flush=True)
    if demo:
        key = config.sources[0].write_key.get_secret_value()
        print(f"demo write key: {key}", flush=True)
        print(
            "try: curl -u " + key + f": {url}/v1/track -H 'Content-Type: application/json' "
            '-d \'{"userId":"u1","event":"Hello"}\'',
            flush=True,
        )
