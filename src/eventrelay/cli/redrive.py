"""``eventrelay redrive DESTINATION``: put failed/discarded events back into delivery, and make
retrying ones due now with a fresh retry window.

    eventrelay redrive --config eventrelay.yaml lambda-prod                      # all of them
    eventrelay redrive --config eventrelay.yaml lambda-prod --category execution_error --since 1h
    eventrelay redrive --url http://127.0.0.1:8088 lambda-prod --message-id ID --message-id ID

Without ``--url`` it reads the configuration (``--config``, else the demo's in this folder:
``cli/discover.py``); when a server runs on its data directory it asks that server (the SQLite queue
belongs to one process at a time, and the running engine starts right away), else it opens the
queue and the delivery log directly, holding the data directory's lock (``storage/dirlock.py``):
a server that runs but was not found (its record gone, its ``/healthz`` unhealthy) refuses it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any, TextIO

from eventrelay.cli import discover
from eventrelay.cli.admin_client import add_source_options, call_api
from eventrelay.cli.deliveries import parse_flag_time
from eventrelay.config.model import Config
from eventrelay.core.errors import ConfigError
from eventrelay.core.outcome import NOT_FAILURES, Category
from eventrelay.delivery.redrive import REDRIVABLE, RedriveFilter, redrive, redrive_summary

BAR_WIDTH = 30  # characters of the progress bar


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "redrive", help="re-queue failed events of a destination, retry retrying ones now"
    )
    p.add_argument("destination", help="destination name")
    add_source_options(p)
    p.add_argument(
        "--category",
        choices=[str(c) for c in Category if c not in NOT_FAILURES],
        help="only events whose last attempt had this category",
    )
    p.add_argument(
        "--message-id", action="append", dest="message_ids", metavar="ID", help="only this event (repeatable)"
    )
    p.add_argument("--since", help="only events whose state changed since: 1h, epoch seconds or ISO 8601")
    p.add_argument("--until", help="only events whose state changed until (same forms)")
    p.add_argument(
        "--status",
        action="append",
        dest="statuses",
        choices=REDRIVABLE,
        help="only events in this state (repeatable; default: failed, discarded and retrying)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    now = time.time()
    wanted = RedriveFilter(
        message_ids=args.message_ids,
        category=args.category,
        since=parse_flag_time("--since", args.since, now),
        until=parse_flag_time("--until", args.until, now),
        statuses=tuple(args.statuses) if args.statuses else None,
    )
    config = discover.store_to_open(args)
    if config is not None:
        moved = asyncio.run(_direct(config, args.destination, wanted, now))
    else:
        body = {
            k: v
            for k, v in (
                ("message_ids", wanted.message_ids),
                ("category", wanted.category),
                ("since", args.since),
                ("until", args.until),
                ("status", list(wanted.statuses) if wanted.statuses else None),
            )
            if v is not None
        }
        moved = int(call_api(args, "POST", f"/api/v1/destinations/{args.destination}/redrive", body=body)["redriven"])
    print(redrive_summary(args.destination, moved, wanted))
    return 0


async def _direct(config: Config, destination: str, wanted: RedriveFilter, now: float) -> int:
    from eventrelay.config.store import merge_api_entities
    from eventrelay.runtime.build import open_stores

    names = [d.name for d in merge_api_entities(config).destinations]
    if destination not in names:
        raise ConfigError("destination", f"no destination named {destination!r} ({', '.join(names) or 'none'})")
    async with open_stores(config) as (queue, log):  # refused while a server runs on its data directory
        with ProgressBar(sys.stderr) as bar:
            return await redrive(queue, log, destination, wanted, now=now, progress=bar)


class ProgressBar:
    """``[#########.....] 500/1000`` on stderr, rewritten in place; the line is ended when the
    work is done and, whatever happened, when the ``with`` block ends (an error is never printed
    on the bar's line). Nothing is drawn when there is nothing to do."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.open = False  # a bar is drawn and its line not ended yet

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.end()

    def __call__(self, done: int, total: int) -> None:
        if total == 0:
            return
        filled = BAR_WIDTH * min(done, total) // total
        self.out.write(f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{total}")
        self.open = True
        if done >= total:
            self.end()
        self.out.flush()

    def end(self) -> None:
        if self.open:
            self.out.write("\n")
            self.out.flush()
            self.open = False
