"""``eventrelay replay DESTINATION --since T``: re-send a window of archived events into a destination.

    eventrelay replay --url http://127.0.0.1:8088 lambda-new --since 24h                 # and watch it
    eventrelay replay --url http://127.0.0.1:8088 lambda-new --since 2026-11-25T00:00:00Z --until 1h \\
        --type track --event "Order Completed" --where 'properties.total > 100' --dry-run
    eventrelay replay --config eventrelay.yaml lambda-new --since 7d --dry-run            # server stopped

``--dry-run`` says how many events match and the time range they cover (and why the window is
shorter than asked, when the archive no longer holds its start), without sending. Otherwise the
replay starts and its progress is shown until it ends (``--detach`` only prints its id). The
server asked is found as ``redrive`` finds it (``cli/discover.py``: ``--url``, else a server
running on the configuration's data directory); when none runs, the store is opened directly,
holding the data directory's lock (the SQLite queue belongs to one process): a dry run reads the
archive, a replay is stored and runs when ``eventrelay serve`` starts.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from eventrelay.cli import discover
from eventrelay.cli.admin_client import add_source_options, call_api
from eventrelay.cli.deliveries import parse_flag_time
from eventrelay.cli.redrive import ProgressBar
from eventrelay.config.model import Config
from eventrelay.config.model import Destination as DestinationConfig
from eventrelay.core.errors import ConfigError, ExpressionError
from eventrelay.core.spec import CALL_TYPES
from eventrelay.delivery.replay import ReplayRequest, Replays
from eventrelay.delivery.replay_select import Selection
from eventrelay.destinations.base import Destination
from eventrelay.filters.fql_parser import parse
from eventrelay.queue.archive import Window

POLL_SECONDS = 0.5  # between progress reads of a running replay


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("replay", help="re-send archived events into a destination")
    p.add_argument("destination", help="destination name (it may have been created after the events arrived)")
    add_source_options(p)
    p.add_argument("--since", required=True, help="window start: 24h (back from now), epoch seconds or ISO 8601")
    p.add_argument("--until", help="window end (same forms; default now)")
    p.add_argument("--source", help="only events of this source")
    p.add_argument("--type", choices=CALL_TYPES, help="only events of this call type")
    p.add_argument("--event", help="only track events of this name")
    p.add_argument("--where", help="only events matching this FQL condition, e.g. 'properties.plan = \"pro\"'")
    p.add_argument("--share", type=float, help="share of the destination's concurrency (default its replay_share)")
    p.add_argument("--dry-run", action="store_true", help="count what would be sent; send nothing")
    p.add_argument("--detach", action="store_true", help="start it and print its id without waiting")
    p.add_argument("--json", action="store_true", help="print the answer as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    now = time.time()
    since = parse_flag_time("--since", args.since, now)
    until = parse_flag_time("--until", args.until, now)
    if since is None:
        raise ConfigError("--since", "is required: where the window starts")
    if args.share is not None and not 0 < args.share <= 1:
        raise ConfigError("--share", "must be above 0 and at most 1 (of the destination's concurrency)")
    if args.where:
        try:
            parse(args.where)
        except ExpressionError as exc:
            raise ConfigError("--where", exc.message) from None
    window = Window(since, now if until is None else until, args.source, args.type)
    request = ReplayRequest(args.destination, window, Selection(args.event, args.where), args.share)
    config = discover.store_to_open(args)
    if config is not None:
        return asyncio.run(_direct(args, config, request))
    return _remote(args, request)


def _remote(args: argparse.Namespace, request: ReplayRequest) -> int:
    window, selection = request.window, request.selection
    body = {
        key: value
        for key, value in (
            ("since", window.since), ("until", window.until), ("source", window.source),
            ("type", window.call_type), ("event", selection.event), ("where", selection.where),
            ("share", request.share), ("dry_run", True if args.dry_run else None),
        )
        if value is not None
    }  # fmt: skip
    path = f"/api/v1/destinations/{request.destination}/replays"
    answer = call_api(args, "POST", path, body=body)
    if args.dry_run:
        return _show_plan(args, answer["dry_run"])
    replay = answer["replay"]
    if args.detach:
        return _show_replay(args, replay)
    with ProgressBar(sys.stderr) as bar:
        while replay["state"] == "running":
            bar(replay["considered"] - replay["waiting"], max(replay["events_in_window"], 1))
            time.sleep(POLL_SECONDS)
            replay = call_api(args, "GET", f"{path}/{replay['id']}")
        bar(replay["events_in_window"], replay["events_in_window"])
    return _show_replay(args, replay)


async def _direct(args: argparse.Namespace, config: Config, request: ReplayRequest) -> int:
    from eventrelay.config.store import merge_api_entities
    from eventrelay.runtime.build import build_destination, open_stores

    config = merge_api_entities(config)
    targets = _Targets({d.name: d for d in config.destinations}, {})
    found = targets.configs.get(request.destination)
    if found is None:
        names = ", ".join(targets.configs) or "none"
        raise ConfigError("destination", f"no destination named {request.destination!r} ({names})")
    instance = build_destination(found, config)
    targets.instances[found.name] = instance
    try:
        async with open_stores(config) as (queue, log):  # refused while a server runs on its data directory
            replays = Replays(queue, log, targets, lambda names: None)
            if args.dry_run:
                return _show_plan(args, (await replays.dry_run(request)).to_json())
            record = await replays.start(request)
            await replays.stop()  # ``serve`` runs it: this process only stores it
            return _show_replay(args, await replays.progress(record), stored=True)
    finally:
        await instance.close()


class _Targets:
    """The destinations of a configuration, for a replay made without a running server."""

    def __init__(self, configs: dict[str, DestinationConfig], instances: dict[str, Destination]) -> None:
        self.configs = configs
        self.instances = instances

    @property
    def destinations(self) -> Mapping[str, Destination]:
        return self.instances

    def destination_config(self, name: str) -> DestinationConfig | None:
        return self.configs.get(name)


def _show_plan(args: argparse.Namespace, plan: dict[str, Any]) -> int:
    if args.json:
        sys.stdout.write(orjson.dumps(plan, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    matched = plan["matched"]
    print(f"dry run: {matched} event{'s' if matched != 1 else ''} of {plan['destination']} would be replayed")
    print(f"  window  {_at(plan['window']['since'])} .. {_at(plan['window']['until'])}")
    if matched:
        print(f"  events  {_at(plan['first_at'])} .. {_at(plan['last_at'])}")
    print(f"  in the window: {plan['events_in_window']} archived events (before --event/--where and routing)")
    if plan["note"]:
        print(f"  note: {plan['note']}")
    return 0


def _show_replay(args: argparse.Namespace, replay: dict[str, Any], *, stored: bool = False) -> int:
    if args.json:
        sys.stdout.write(orjson.dumps(replay, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    counts = ", ".join(f"{n} {status}" for status, n in replay["counts"].items() if n)
    print(f"replay {replay['id']} of {replay['destination']}: {replay['state']}")
    print(f"  enqueued {replay['enqueued']} of {replay['events_in_window']} in the window; skipped {replay['skipped']}")
    if counts:
        print(f"  {counts}")
    if stored:
        print("  stored: it runs when `eventrelay serve` starts with this configuration")
    return 0


def _at(value: float | None) -> str:
    if value is None:
        return "-"
    return datetime.fromtimestamp(value, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
