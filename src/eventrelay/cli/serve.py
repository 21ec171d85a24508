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
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import uvicorn

from eventrelay.cli import running, workers
from eventrelay.cli.stopping import StopSignals
from eventrelay.config import load_config
from eventrelay.config.model import Config, LocalAws
from eventrelay.config.store import merge_api_entities
from eventrelay.core.errors import ConfigError
from eventrelay.storage.dirlock import lock_data_dir

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
        return workers.supervise(args, count, config_file(args))
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency through uvicorn[standard]
        pass
    return asyncio.run(serve(args))


async def serve(args: argparse.Namespace) -> int:
    file, demo = config_file(args), not args.config
    worker = workers.is_worker(args)  # one of --workers: the parent runs localaws and announces
    config = merge_api_entities(load_config(file))
    if worker:
        config = workers.worker_config(config)
    # One deployment per data directory (storage/dirlock.py): refused here, before anything opens;
    # a worker of --workers adopts the lock its parent holds.
    lock = lock_data_dir(Path(config.storage.path))
    stopping = StopSignals()  # from before delivery starts until the runtime stopped (cli/stopping.py)
    stopping.install()
    try:
        await _serve(args, config, file, stopping, demo=demo, worker=worker)
    finally:
        stopping.remove()
        lock.release()
    return 0


async def _serve(
    args: argparse.Namespace, config: Config, file: Path, stopping: StopSignals, *, demo: bool, worker: bool
) -> None:
    from eventrelay.runtime import Runtime

    localaws = await start_localaws(config) if config.localaws is not None and not worker else None
    share = workers.worker_count(args.workers) if worker else 1
    resolved = await asyncio.to_thread(file.resolve)
    runtime = Runtime(config, role=args.role, config_file=str(resolved), workers=share)
    await runtime.start()
    gc.freeze()  # start-up objects are permanent: full collections need not walk them on every request
    token = runtime.admin_token if runtime.generated_admin_token else None
    server = _GracefulServer(
        runtime.server_config(host=args.host, port=args.port),
        on_started=(lambda port: None) if worker else lambda port: announce(config, file, args, port, demo, token),
    )
    stopping.on_stop(runtime.stop_claiming)
    stopping.on_stop(server.request_exit)
    following = asyncio.ensure_future(workers.follow_config_changes(runtime, str(file))) if worker else None
    try:
        await server.serve(sockets=[workers.worker_socket(args)] if worker else None)
    finally:
        if following is not None:
            following.cancel()
        if not worker:
            running.forget(config)
        await runtime.stop()
        if localaws is not None:
            await localaws.stop()


class _GracefulServer(uvicorn.Server):
    """uvicorn handles SIGTERM/SIGINT itself only while ``serve()`` runs, then re-raises them,
    which would end the process before in-flight deliveries settle. Here ``StopSignals`` owns
    the signals for the whole run; the first one only stops the server (``request_exit``);
    ``serve`` then stops the runtime (in-flight attempts finish and are recorded) and exits.
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
        yield

    def request_exit(self) -> None:
        self.should_exit = True


async def start_localaws(config: Config) -> Any:
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


def config_file(args: argparse.Namespace) -> Path:
    """``--config``, or the demo's configuration (written into ``--data-dir`` the first time)."""
    if args.config:
        return Path(args.config)
    from eventrelay.demo import DEFAULT_DATA_DIR, prepare

    return prepare(args.data_dir or DEFAULT_DATA_DIR)


def announce(
    config: Config,
    config_file: Path,
    args: argparse.Namespace,
    port: int,
    demo: bool,
    token: str | None,
    note: str = "",
) -> None:
    """What serve prints once the port is bound (``token``: the admin token generated for this
    run, if any; ``note``: added to the first line); records where it listens (``running``)."""
    url = running.remember(config, args.host, port)
    print(f"eventrelay listening on {url} (role {args.role}, storage {config.storage.backend}{note})", flush=True)
    if demo:
        from eventrelay.demo import hints

        for line in hints(config, config_file, url):
            print(line, flush=True)
    elif token is not None:
        print(f"admin token (generated for this run): {token}", flush=True)
