"""``eventrelay send``: the Event Tester. Build a test event of any call type, normalise it as the
Tracking API does, send it straight through one destination, and show "You sent", "Request to
destination" and "Response from destination". Exit code 1 when it was not delivered.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from eventrelay.admin.event_tester import SEND_TIMEOUT, TEST_EVENT, TEST_USER
from eventrelay.cli import discover
from eventrelay.cli.check import local_endpoint
from eventrelay.cli.discover import CONFIG_HELP
from eventrelay.config import load_config
from eventrelay.config.model import Config
from eventrelay.core.errors import ConfigError, PayloadError
from eventrelay.core.spec import CALL_TYPES


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("send", help="send a test event to a destination (Event Tester)")
    p.add_argument("--config", help=CONFIG_HELP)
    p.add_argument("--destination", help="the destination to send to (default: the only one configured)")
    p.add_argument("--type", choices=CALL_TYPES, default="track", help="call type (default track)")
    p.add_argument("--event", default=TEST_EVENT, help="track event name / page or screen name")
    p.add_argument("--user-id", default=TEST_USER, help=f"userId (default {TEST_USER})")
    p.add_argument("--properties", default="{}", help="JSON object: properties (traits for identify/group)")
    p.add_argument("--source", help="the source it comes from (the External ID without workspace.id)")
    p.add_argument("--timeout", type=float, default=SEND_TIMEOUT, help=f"seconds (default {SEND_TIMEOUT:g})")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    path = discover.config_file(args.config)
    return asyncio.run(send(load_config(path), args, path.resolve().parent))


async def send(config: Config, args: argparse.Namespace, base_dir: Path | None = None) -> int:
    from eventrelay.admin.event_tester import EventSpec, build_event, send_test_event
    from eventrelay.awsiam.check import check_source
    from eventrelay.config.store import merge_api_entities
    from eventrelay.runtime.build import build_destination

    config = merge_api_entities(config)
    only = config.destinations[0].name if len(config.destinations) == 1 else None
    dest = next((d for d in config.destinations if d.name == (args.destination or only)), None)
    if dest is None:
        names = ", ".join(d.name for d in config.destinations) or "none configured"
        if args.destination is None:
            raise ConfigError("--destination", f"name the destination to send to ({names})")
        raise ConfigError("--destination", f"no destination named {args.destination!r} ({names})")
    spec = EventSpec(args.type, args.event, args.user_id, _properties(args.properties))
    event = build_event(spec)
    async with local_endpoint(config, base_dir):
        instance = build_destination(dest, config)
        try:
            source = check_source(config, dest, args.source)
            result = await send_test_event(instance, dest, event, source=source, timeout=args.timeout)
        finally:
            await instance.close()
    if not result["sent"]:
        print(result["message"])
        return 1
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print(result)
    return 0 if result["response"]["delivered"] else 1


def _print(result: dict[str, Any]) -> None:
    for title, key in (("You sent", "you_sent"), ("Request to destination", "request")):
        print(f"{title}:\n{_indent(json.dumps(result[key], indent=2))}")
    hidden = ("body", "log_tail", "delivered", "category_name")
    response = {k: v for k, v in result["response"].items() if v is not None and k not in hidden}
    print(f"Response from destination:\n{_indent(json.dumps(response, indent=2))}")
    if result["response"]["body"] is not None:
        print(f"  body: {result['response']['body']}")
    if result["response"]["log_tail"]:
        print(f"  log tail:\n{_indent(result['response']['log_tail'], 4)}")


def _indent(text: str, n: int = 2) -> str:
    return "\n".join(" " * n + line for line in text.splitlines())


def _properties(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise PayloadError(f"--properties is not valid JSON: {exc}", field="properties") from exc
    if not isinstance(value, dict):
        raise PayloadError("--properties must be a JSON object", field="properties")
    return value
