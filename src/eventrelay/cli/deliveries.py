"""``eventrelay deliveries``: list events per destination with their state, or one event's attempts.

Reads the delivery log straight from the configured storage (works while the server is down,
and beside a running server: the SQLite log allows other readers), or asks a running server's
admin API with ``--url`` (token from ``--token`` or ``EVENTRELAY_ADMIN_TOKEN``).

    eventrelay deliveries --config eventrelay.yaml --status failed --since 1h
    eventrelay deliveries --config eventrelay.yaml --message-id 6f1c... --json
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime
from typing import Any

import orjson

from eventrelay.config import load_config
from eventrelay.core.errors import ConfigError, EventRelayError
from eventrelay.core.outcome import Category
from eventrelay.deliverylog.stats import STATUSES, attempt_json, parse_when

DEFAULT_LIMIT = 50
ERROR_WIDTH = 60  # characters of the error column in the table; --json has all of it
HTTP_TIMEOUT = 30.0  # seconds for one admin API call
TOKEN_ENV = "EVENTRELAY_ADMIN_TOKEN"


class AdminApiError(EventRelayError):
    """The admin API of a running server refused or failed a request."""


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("deliveries", help="list delivery outcomes (or one event's attempts)")
    add_source_options(p)
    p.add_argument("--destination", help="only this destination")
    p.add_argument("--category", choices=[str(c) for c in Category], help="category of the latest attempt")
    p.add_argument("--status", choices=STATUSES, help="state of the event")
    p.add_argument("--since", help="updated since: 1h, 10m, epoch seconds or ISO 8601")
    p.add_argument("--until", help="updated until (same forms)")
    p.add_argument("--limit", type=int, default=DEFAULT_LIMIT, help=f"rows (default {DEFAULT_LIMIT})")
    p.add_argument("--message-id", help="show every attempt of this event instead")
    p.add_argument("--json", action="store_true", help='print JSON ({"deliveries": [...]} or {"attempts": [...]})')
    p.set_defaults(func=run)


def add_source_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="configuration file: read the store directly")
    p.add_argument("--url", help="or ask a running server's admin API, e.g. http://127.0.0.1:8088")
    p.add_argument("--token", help=f"admin token for --url (default: ${TOKEN_ENV})")


def run(args: argparse.Namespace) -> int:
    now = time.time()
    since = parse_flag_time("--since", args.since, now)
    until = parse_flag_time("--until", args.until, now)
    if args.url:
        body = _from_api(args, since, until)
    elif args.config:
        body = asyncio.run(_from_store(args, since, until))
    else:
        print("deliveries needs --config FILE (or --url of a running server)", file=sys.stderr)
        return 2
    if args.json:
        sys.stdout.write(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode() + "\n")
    elif args.message_id:
        print_attempts(body["attempts"])
    else:
        print_deliveries(body["deliveries"])
    return 0


async def _from_store(args: argparse.Namespace, since: float | None, until: float | None) -> dict[str, Any]:
    from eventrelay.runtime.build import open_log

    log = open_log(load_config(args.config))
    await log.start()
    try:
        if args.message_id:
            found = await log.attempts(args.message_id, args.destination)
            return {"message_id": args.message_id, "attempts": [attempt_json(a) for a in found]}
        rows = await log.deliveries(
            destination=args.destination,
            category=args.category,
            status=args.status,
            since=since,
            until=until,
            limit=args.limit,
        )
        return {"deliveries": [r.to_json() for r in rows]}
    finally:
        await log.close()


def _from_api(args: argparse.Namespace, since: float | None, until: float | None) -> dict[str, Any]:
    if args.message_id:
        path = "/api/v1/deliveries/" + urllib.parse.quote(args.message_id, safe="")
        params = {"destination": args.destination}
    else:
        path = "/api/v1/deliveries"
        params = {
            "destination": args.destination,
            "category": args.category,
            "status": args.status,
            "since": since,
            "until": until,
            "limit": args.limit,
        }
    return call_api(args, "GET", path, params=params)


def call_api(
    args: argparse.Namespace,
    method: str,
    path: str,
    *,
    params: dict[str, Any] | None = None,
    body: Any = None,
) -> dict[str, Any]:
    """One admin API call; raises ``AdminApiError`` with the server's message."""
    token = args.token or os.environ.get(TOKEN_ENV)
    if not token:
        raise ConfigError("--token", f"--url needs the admin token (--token or ${TOKEN_ENV})")
    query = urllib.parse.urlencode({k: v for k, v in (params or {}).items() if v is not None})
    url = args.url.rstrip("/") + path + (f"?{query}" if query else "")
    data = orjson.dumps(body) if body is not None else None
    request = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:
            answer: dict[str, Any] = orjson.loads(response.read())
            return answer
    except urllib.error.HTTPError as exc:
        raise AdminApiError(f"{url.split('?')[0]}: HTTP {exc.code}: {_message(exc.read())}") from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise AdminApiError(f"cannot reach {args.url}: {exc}") from exc


def _message(raw: bytes) -> str:
    try:
        return str(orjson.loads(raw)["error"]["message"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return raw[:200].decode("utf-8", "replace")


def parse_flag_time(flag: str, value: str | None, now: float) -> float | None:
    if value is None:
        return None
    try:
        return parse_when(value, now)
    except ValueError as exc:
        raise ConfigError(flag, str(exc)) from exc


def print_deliveries(rows: list[dict[str, Any]]) -> None:
    header = ("MESSAGE ID", "DESTINATION", "STATUS", "CATEGORY", "ATTEMPTS", "FUNCTION", "UPDATED", "ERROR")
    table = [header] + [
        (
            r["message_id"],
            r["destination"],
            r["status"],
            r["category"],
            str(r["attempts"]),
            r["function"] or "",
            _time(r["updated_at"]),
            _short(r["error"] or ""),
        )
        for r in rows
    ]
    _print_table(table)
    print(f"{len(rows)} event{'s' if len(rows) != 1 else ''}")


def print_attempts(attempts: list[dict[str, Any]]) -> None:
    if not attempts:
        print("no attempts recorded for this message id")
        return
    for a in attempts:
        resp = a["response"]
        print(
            f"attempt {a['attempt']} to {a['destination']} at {_time(a['at'])}: {a['category_name']} "
            f"({a['category']}), status {resp['status']}, {a['latency_ms']:.0f} ms, event now {a['status']}"
        )
        if resp["error_type"] or resp["error_message"]:
            print(f"  error: {resp['error_type'] or ''}: {resp['error_message'] or ''}")
        print(f"  function: {a['request'].get('function')} qualifier: {a['request'].get('qualifier')}")
        if a.get("batch"):
            batch = a["batch"]
            print(f"  batch: {batch['id']} ({batch['size']} events, {batch['bytes']} bytes)")
        if a.get("warning"):
            print(f"  warning: {a['warning']}")
        if resp["log_tail"]:
            print("  log tail:")
            for line in str(resp["log_tail"]).splitlines():
                print(f"    {line}")


def _print_table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


def _time(epoch: float | None) -> str:
    return datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S") if epoch else "-"


def _short(text: str) -> str:
    line = text.splitlines()[0] if text else ""
    return line if len(line) <= ERROR_WIDTH else line[: ERROR_WIDTH - 1] + "…"
