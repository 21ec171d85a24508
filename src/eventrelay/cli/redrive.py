"""``eventrelay redrive DESTINATION``: put failed/discarded events back into delivery.

    eventrelay redrive --config eventrelay.yaml lambda-prod                      # all of them
    eventrelay redrive --config eventrelay.yaml lambda-prod --category execution_error --since 1h
    eventrelay redrive --url http://127.0.0.1:8088 lambda-prod --message-id ID --message-id ID

With ``--config`` it opens the queue and the delivery log directly: use it while the server is
stopped (the SQLite queue belongs to one process at a time: refused while a server holds the
data directory's lock). While the server runs, use
``--url`` so the running server re-queues (and its engine starts right away).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from eventrelay.cli.deliveries import add_source_options, call_api, parse_flag_time
from eventrelay.config import load_config
from eventrelay.config.model import Config
from eventrelay.core.errors import ConfigError
from eventrelay.core.outcome import Category
from eventrelay.delivery.redrive import RedriveFilter, redrive
from eventrelay.storage.dirlock import lock_data_dir

BAR_WIDTH = 30  # characters of the progress bar


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("redrive", help="re-queue failed events of a destination")
    p.add_argument("destination", help="destination name")
    add_source_options(p)
    p.add_argument(
        "--category",
        choices=[str(c) for c in Category if c is not Category.DELIVERED],
        help="only events whose last attempt had this category",
    )
    p.add_argument(
        "--message-id", action="append", dest="message_ids", metavar="ID", help="only this event (repeatable)"
    )
    p.add_argument("--since", help="only events that failed since: 1h, epoch seconds or ISO 8601")
    p.add_argument("--until", help="only events that failed until (same forms)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    now = time.time()
    wanted = RedriveFilter(
        message_ids=args.message_ids,
        category=args.category,
        since=parse_flag_time("--since", args.since, now),
        until=parse_flag_time("--until", args.until, now),
    )
    if args.url:
        body = {
            k: v
            for k, v in (
                ("message_ids", wanted.message_ids),
                ("category", wanted.category),
                ("since", args.since),
                ("until", args.until),
            )
            if v is not None
        }
        moved = int(call_api(args, "POST", f"/api/v1/destinations/{args.destination}/redrive", body=body)["redriven"])
    elif args.config:
        moved = asyncio.run(_direct(load_config(args.config), args.destination, wanted, now))
    else:
        print("redrive needs --config FILE (or --url of a running server)", file=sys.stderr)
        return 2
    print(f"re-drove {moved} event{'s' if moved != 1 else ''} of {args.destination}")
    return 0


async def _direct(config: Config, destination: str, wanted: RedriveFilter, now: float) -> int:
    from eventrelay.runtime.build import open_log, open_queue

    names = [d.name for d in _all_destinations(config)]
    if destination not in names:
        raise ConfigError("destination", f"no destination named {destination!r} ({', '.join(names) or 'none'})")
    # the SQLite queue belongs to one process: refused (naming the server's pid) while one runs
    lock = lock_data_dir(Path(config.storage.path)) if config.storage.backend == "sqlite" else None
    try:
        queue, log = open_queue(config), open_log(config)
        await queue.start()
        try:
            await log.start()
            try:
                return await redrive(queue, log, destination, wanted, now=now, progress=ProgressBar(sys.stderr))
            finally:
                await log.close()
        finally:
            await queue.close()
    finally:
        if lock is not None:
            lock.release()


def _all_destinations(config: Config) -> list[Any]:
    try:
        from eventrelay.config.store import merge_api_entities
    except ImportError:  # pragma: no cover - the Config API store is optional
        return list(config.destinations)
    return list(merge_api_entities(config).destinations)


class ProgressBar:
    """``[#########.....] 500/1000`` on stderr, rewritten in place."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def __call__(self, done: int, total: int) -> None:
        filled = BAR_WIDTH if total == 0 else BAR_WIDTH * done // total
        self.out.write(f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{total}")
        if done >= total:
            self.out.write("\n")
        self.out.flush()
