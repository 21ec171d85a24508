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
import signal
import sys
from collections.abc import Iterator
from typing import Any

import uvicorn

from eventrelay.cli import workers
from eventrelay.config import load_config
from eventrelay.config.model import Config
from eventrelay.config.store import merge_api_entities

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
    workers.add_arguments(p)
    p.set_defaults(func=run)


# The SQLite writer threads hand the GIL back and forth with the event loop; at Python's default
# 5 ms switch interval a busy loop starves them (measured: ~2x throughput under load at 0.5 ms).
GIL_SWITCH_INTERVAL = 0.0005


def run(args: argparse.Namespace) -> int:
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    count = workers.worker_count(args.workers)
    if count > 1 and not workers.is_worker(args):
        return workers.supervise(args, count)
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency through uvicorn[standard]
        pass
    return asyncio.run(serve(args))


async def serve(args: argparse.Namespace) -> int:
    from eventrelay.runtime import Runtime

    localaws = None
    worker = workers.is_worker(args)
    if args.config:
        config = merge_api_entities(load_config(args.config))
        if worker:
            config = workers.worker_config(config)
        elif config.localaws is not None:  # the parent of workers runs it
            localaws = await _start_localaws(config)
    else:
        from eventrelay.demo import demo_config

        config, localaws = await demo_config(args.data_dir or "./eventrelay-data", port=args.port)
    runtime = Runtime(config, role=args.role, workers=workers.worker_count(args.workers) if worker else 1)
    await runtime.start()
    gc.freeze()  # start-up objects are permanent: full collections need not walk them on every request
    if not worker:  # the parent of workers announces the deployment
        _announce(runtime, config, args, demo=not args.config)
    server = _GracefulServer(runtime.server_config(host=args.host, port=args.port))
    following = asyncio.ensure_future(workers.follow_config_changes(runtime, args.config)) if worker else None
    try:
        await server.serve(sockets=[workers.worker_socket(args)] if worker else None)
    finally:
        if following is not None:
            following.cancel()
        await runtime.stop()
        if localaws is not None:
            await localaws.stop()
    return 0


class _GracefulServer(uvicorn.Server):
    """uvicorn re-raises SIGTERM/SIGINT once ``serve()`` returns, which would end the process
    before in-flight deliveries settle. Here the signal only stops the server; ``serve`` then
    stops the runtime (in-flight attempts finish and are recorded) and exits normally."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        originals = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in originals.items():
                signal.signal(sig, handler)


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
