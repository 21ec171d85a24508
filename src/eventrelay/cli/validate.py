"""``eventrelay validate --config FILE``: check a configuration file (and the entities the Config API
stored beside it) and say what is wrong, by field path."""

from __future__ import annotations

import argparse
from typing import Any

from eventrelay.cli import discover
from eventrelay.cli.discover import CONFIG_HELP
from eventrelay.config import load_config
from eventrelay.config.store import merge_api_entities


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("validate", help="check a configuration file")
    p.add_argument("file", nargs="?", help="configuration file (or use --config)")
    p.add_argument("--config", dest="config_opt", help=CONFIG_HELP)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    path = discover.config_file(args.config_opt or args.file)
    config = load_config(path)
    merged = merge_api_entities(config)  # the Config API's store must fit the file too
    sources, destinations = len(config.sources), len(config.destinations)
    stored = (
        _count(len(merged.sources) - sources, "source"),
        _count(len(merged.destinations) - destinations, "destination"),
    )
    note = f"; from the Config API store: {' and '.join(stored)}" if merged is not config else ""
    print(
        f"{path}: OK ({_count(sources, 'source')}, {_count(destinations, 'destination')}, "
        f"storage {config.storage.backend}{note})"
    )
    return 0


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
