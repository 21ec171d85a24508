"""``eventrelay check --config FILE [DESTINATION]``: the connection check.

For each destination (or the one named) assume its role and ``DryRun``-invoke every function it uses;
print per function OK, or the category with the fix hint. Exit code 1 when any function fails.

When the configuration asks for the local AWS endpoint (``localaws:``) and the environment names no
AWS endpoint, the check uses the endpoint of a running ``eventrelay serve`` (fixed ``localaws.port``),
else starts one in this process for the duration of the check.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from eventrelay.awsiam.check import FunctionCheck, check_report, run_check
from eventrelay.cli import discover
from eventrelay.cli.discover import CONFIG_HELP
from eventrelay.config import load_config
from eventrelay.config.model import Config
from eventrelay.core.errors import ConfigError
from eventrelay.destinations.base import CheckableDestination

ENDPOINT_ENV = ("AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL_LAMBDA")
CREDENTIAL_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
PROBE_TIMEOUT = 1.0  # seconds: is a running eventrelay's local endpoint on the configured port?


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("check", help="connection check: assume the role, DryRun invoke")
    p.add_argument("destination", nargs="?", help="the destination to check (default: every destination)")
    p.add_argument("--config", help=CONFIG_HELP)
    p.add_argument("--source", help="the source whose id is the External ID (only without workspace.id)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    path = discover.config_file(args.config)
    return asyncio.run(check(load_config(path), args, path.resolve().parent))


async def check(config: Config, args: argparse.Namespace, base_dir: Path | None = None) -> int:
    from eventrelay.config.store import merge_api_entities
    from eventrelay.runtime.build import build_destination

    config = merge_api_entities(config)
    chosen = [d for d in config.destinations if args.destination in (None, d.name)]
    if not chosen:
        names = ", ".join(d.name for d in config.destinations) or "none configured"
        raise ConfigError("destination", f"no destination named {args.destination!r} ({names})")
    reports = []
    failed = False
    async with local_endpoint(config, base_dir):
        for dest in chosen:
            instance = build_destination(dest, config)
            try:
                if not isinstance(instance, CheckableDestination):
                    print(f"{dest.name}: a {dest.type} destination has no connection check; skipped", file=sys.stderr)
                    continue
                results = await run_check(instance, config, dest, args.source)
            finally:
                await instance.close()
            failed = failed or not all(r.ok for r in results)
            reports.append(check_report(dest.name, results))
            if not args.json:
                _print(dest.name, results)
    if args.json:
        print(json.dumps({"destinations": reports}, indent=2))
    return 1 if failed else 0


def _print(name: str, results: list[FunctionCheck]) -> None:
    for r in results:
        if r.ok:
            print(f"{name}  {r.function}: OK ({r.outcome.latency_ms:.0f} ms)")
            continue
        d = r.as_dict()
        error = f"({d['error_type'] or 'error'}): {d['error_message'] or ''}"
        print(f"{name}  {r.function}: {d['category']} {error}")
        print(f"    fix: {d['hint']['fix']}")


@asynccontextmanager
async def local_endpoint(config: Config, base_dir: Path | None) -> AsyncIterator[None]:
    """Reach the local AWS endpoint the configuration asks for (see the module docstring)."""
    local = config.localaws
    if local is None or any(k.startswith("AWS_ENDPOINT_URL") for k in os.environ):
        yield
        return
    if local.port and await _listening(local.host, local.port):
        url = f"http://{local.host}:{local.port}"
        print(f"using the local AWS endpoint of the running eventrelay at {url}", file=sys.stderr)
        with _local_environment(url):
            yield
        return
    from eventrelay.localaws.server import start_from_config

    server = await start_from_config(config, base_dir)
    try:
        yield
    finally:
        await server.stop()


@contextmanager
def _local_environment(url: str) -> Iterator[None]:
    """Point this process's STS and Lambda calls at ``url`` (local credentials if it has none)."""
    from eventrelay.localaws.server import LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY

    saved = {k: os.environ.get(k) for k in (*ENDPOINT_ENV, *CREDENTIAL_ENV)}
    os.environ.update(dict.fromkeys(ENDPOINT_ENV, url))
    if not _has_credentials():
        os.environ.update(zip(CREDENTIAL_ENV, (LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY), strict=True))
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


async def _listening(host: str, port: int) -> bool:
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            _, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError):
        return False
    writer.close()
    await writer.wait_closed()
    return True


def _has_credentials() -> bool:
    import botocore.session

    return botocore.session.get_session().get_credentials() is not None
