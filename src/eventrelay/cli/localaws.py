"""``eventrelay localaws``: the local AWS endpoint (Lambda Invoke + STS AssumeRole) on its own.

With ``--config`` it uses the file's ``localaws:`` section (roles default to the destinations' roles,
trusting the workspace id); without, every ``*.py`` in ``--functions`` that defines ``handler`` becomes a
function named after its file, and role ``eventrelay-local`` trusts External ID ``eventrelay-local``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from typing import Any

from eventrelay.config import load_config
from eventrelay.config.model import Config, LocalAws

STANDALONE_ROLE = "eventrelay-local"


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("localaws", help="run the local AWS endpoint (Lambda + STS)")
    p.add_argument("--config", help="configuration file (its localaws: section)")
    p.add_argument("--functions", help="folder of handler files (overrides localaws.functions_dir)")
    p.add_argument("--port", type=int, help="listen port (default: localaws.port, or a free one)")
    p.add_argument("--host", help="listen address (default 127.0.0.1)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level="INFO", format=fmt, stream=sys.stderr)
    return asyncio.run(_serve(args))


def settings_for(args: argparse.Namespace, config: Config | None) -> LocalAws:
    base = config.localaws if config and config.localaws else None
    data: dict[str, Any] = base.model_dump() if base else {}
    if base is not None:
        data["users"] = {k: v.get_secret_value() for k, v in base.users.items()}
    if args.functions:
        data["functions_dir"] = args.functions
    if args.port is not None:
        data["port"] = args.port
    if args.host:
        data["host"] = args.host
    data["echo_logs"] = True
    if not data.get("roles") and (config is None or not config.destinations):
        data["roles"] = {STANDALONE_ROLE: {"external_id": STANDALONE_ROLE}}
    return LocalAws.model_validate(data)


async def _serve(args: argparse.Namespace) -> int:
    from eventrelay.localaws.server import LocalAwsServer

    config = load_config(args.config) if args.config else None
    settings = settings_for(args, config)
    server = await LocalAwsServer(settings, config=config).start()
    print(f"local AWS endpoint: {server.url}", flush=True)
    print(
        f"functions: {', '.join(sorted(server.registry.functions)) or 'none'} (from {settings.functions_dir})",
        flush=True,
    )
    for role in server.roles.roles.values():
        ids = ", ".join(role.external_ids) if role.external_ids else "none required"
        print(f"role: {role.arn} (External ID: {ids})", flush=True)
    print(f"use: AWS_ENDPOINT_URL_STS={server.url} AWS_ENDPOINT_URL_LAMBDA={server.url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()
    return 0
