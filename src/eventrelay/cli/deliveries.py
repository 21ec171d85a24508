"""``eventrelay deliveries``: list events per destination with their state, or one event's attempts.

Reads the delivery log straight from the configured storage (works while the server is down,
and beside a running server: the SQLite log allows other readers), or asks a running server's
admin API with ``--url`` (token from ``--token`` or ``EVENTRELAY_ADMIN_TOKEN``). Without
``--config`` it reads the demo's configuration in this folder (``cli/discover.py``).

    eventrelay deliveries --config eventrelay.yaml --status failed --since 1h
    eventrelay deliveries --config eventrelay.yaml --message-id 6f1c... --json
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import urllib.parse
from datetime import datetime
from typing import Any

import orjson

from eventrelay.cli import discover
from eventrelay.cli.admin_client import add_source_options, call_api
from eventrelay.core.errors import ConfigError
from eventrelay.core.outcome import Category
from eventrelay.deliverylog.stats import STATUSES, attempt_json, parse_when

DEFAULT_LIMIT = 50
ERROR_WIDTH = 60  # characters of the error column in the table; --json has all of it


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


def run(args: argparse.Namespace) -> int:
    now = time.time()
    since = parse_flag_time("--since", args.since, now)
    until = parse_flag_time("--until", args.until, now)
    if args.url:
        body = _from_api(args, since, until)
    else:
        body = asyncio.run(_from_store(args, since, until))
    if args.json:
        sys.stdout.write(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode() + "\n")
    elif args.message_id:
        print_attempts(body["attempts"])
    else:
        print_deliveries(body["deliveries"])
    return 0


async def _from_store(args: argparse.Namespace, since: float | None, until: float | None) -> dict[str, Any]:
    from eventrelay.runtime.build import open_log

    log = open_log(discover.load(args.config))
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


def parse_flag_time(flag: str, value: str | None, now: float) -> float | None:
    if value is None:
        return None
    try:
        return parse_when(value, now)
    except ValueError as exc:
        raise ConfigError(flag, str(exc)) from exc


def print_deliveries(rows: list[dict[str, Any]]) -> None:
    header = ("MESSAGE ID", "DESTINATION", "STATUS", "CATEGORY", "ATTEMPTS", "FUNCTION", "UPDATED", "NEXT ATTEMPT")
    table = [header] + [
        (
            r["message_id"],
            r["destination"],
            r["status"],
            r["category"],
            str(r["attempts"]),
            r["function"] or "",
            _time(r["updated_at"]),
            _time(r.get("next_attempt_at")) if r["status"] == "retrying" else "-",
        )
        for r in rows
    ]
    errors = [_short(r["error"] or "") for r in rows]
    _print_table([(*row, error) for row, error in zip(table, ["ERROR", *errors], strict=True)])
    print(f"{len(rows)} event{'s' if len(rows) != 1 else ''}")


def print_attempts(attempts: list[dict[str, Any]]) -> None:
    if not attempts:
        print("no attempts recorded for this message id")
        return
    for a in attempts:
        resp = a["response"]
        status = "no answer" if resp["status"] is None else f"status {resp['status']}"
        print(
            f"attempt {a['attempt']} to {a['destination']} at {_time(a['at'])}: {a['category_name']} "
            f"({a['category']}), {status}, {a['latency_ms']:.0f} ms, event now {a['status']}"
        )
        if a["status"] == "retrying" and a.get("next_attempt_at"):
            print(f"  next attempt: {_time(a['next_attempt_at'])}")
        if resp["error_type"] or resp["error_message"]:
            error = ": ".join(part for part in (resp["error_type"], resp["error_message"]) if part)
            print(f"  error: {error}")
        request = a["request"]
        target = " ".join(f"{k}: {request[k]}" for k in ("function", "qualifier") if request.get(k) is not None)
        if target:
            print(f"  {target}")
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
