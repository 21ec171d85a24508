"""``eventrelay send``: the Event Tester. Build a test event of any call type, normalise it as the
Tracking API does, send it straight through one destination, and show "You sent", "Request to
destination" and "Response from destination". Exit code 1 when it was not delivered.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

from eventrelay.cli.check import local_endpoint
from eventrelay.config import load_config
from eventrelay.config.model import Config
from eventrelay.core.errors import ConfigError, PayloadError
from eventrelay.core.spec import CALL_TYPES
from eventrelay.destinations.base import SendRequest

SEND_TIMEOUT = 30.0  # seconds: a person waits for the answer; longer than the 5 s delivery default
LIBRARY = {"name": "eventrelay-send", "version": "1"}


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("send", help="send a test event to a destination (Event Tester)")
    p.add_argument("--config", required=True, help="configuration file")
    p.add_argument("--destination", required=True, help="the destination to send to")
    p.add_argument("--type", choices=CALL_TYPES, default="track", help="call type (default track)")
    p.add_argument("--event", default="Test Event", help="track event name / page or screen name")
    p.add_argument("--user-id", default="eventrelay-test-user", help="userId (default eventrelay-test-user)")
    p.add_argument("--properties", default="{}", help="JSON object: properties (traits for identify/group)")
    p.add_argument("--source", help="the source it comes from (the External ID without workspace.id)")
    p.add_argument("--timeout", type=float, default=SEND_TIMEOUT, help=f"seconds (default {SEND_TIMEOUT:g})")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    return asyncio.run(send(config, args, Path(args.config).resolve().parent))


def build_event(call_type: str, *, name: str, user_id: str, properties: dict[str, Any]) -> dict[str, Any]:
    """A test event of ``call_type``, validated and normalised exactly as the Tracking API does."""
    import time

    from eventrelay.ingest.normalise import iso, normalise
    from eventrelay.ingest.validate import validate

    event: dict[str, Any] = {"userId": user_id, "context": {"library": dict(LIBRARY)}}
    if call_type == "track":
        event |= {"event": name, "properties": properties}
    elif call_type in ("page", "screen"):
        event |= {"name": name, "properties": properties}
    elif call_type == "identify":
        event["traits"] = properties
    elif call_type == "group":
        event |= {"groupId": "eventrelay-test-group", "traits": properties}
    else:
        event["previousId"] = f"{user_id}-previous"
    event["messageId"] = f"eventrelay-send-{uuid.uuid4()}"
    validate(event, call_type)
    received_at = time.time()
    received_iso = iso(received_at)
    return normalise(event, call_type, received_at=received_at, received_iso=received_iso, ip=None, channel="server")


async def send(config: Config, args: argparse.Namespace, base_dir: Path | None = None) -> int:
    from eventrelay.awsiam.check import check_source
    from eventrelay.config.store import merge_api_entities
    from eventrelay.runtime.build import build_destination

    config = merge_api_entities(config)
    dest = next((d for d in config.destinations if d.name == args.destination), None)
    if dest is None:
        names = ", ".join(d.name for d in config.destinations) or "none configured"
        raise ConfigError("--destination", f"no destination named {args.destination!r} ({names})")
    event = build_event(args.type, name=args.event, user_id=args.user_id, properties=_properties(args.properties))
    body = json.dumps(event).encode()
    async with local_endpoint(config, base_dir):
        instance = build_destination(dest, config)
        try:
            if not instance.wants(event):
                print(f"{dest.name} does not take this event ({dest.kind.declined}); nothing sent")
                return 1
            source = check_source(config, dest, args.source) or ""  # "": none (no External ID without a workspace)
            request = SendRequest(body, event, source, str(event["messageId"]))
            outcome = await instance.send(request, args.timeout)
        finally:
            await instance.close()
    response = {
        "category": outcome.category.value,
        "status_code": outcome.status_code,
        "error_type": outcome.error_type,
        "error_message": outcome.error_message,
        "executed_version": outcome.executed_version,
        "log_tail": outcome.log_tail,
        "body": outcome.response_body,
        "latency_ms": round(outcome.latency_ms, 1),
    }
    result = {"you_sent": event, "request": outcome.request, "response": response}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print(result)
    return 0 if outcome.ok else 1


def _print(result: dict[str, Any]) -> None:
    for title, key in (("You sent", "you_sent"), ("Request to destination", "request")):
        print(f"{title}:\n{_indent(json.dumps(result[key], indent=2))}")
    response = {k: v for k, v in result["response"].items() if v is not None and k not in ("body", "log_tail")}
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
