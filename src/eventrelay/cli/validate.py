"""``eventrelay validate --config FILE``: check a configuration file and say what is wrong, by field path."""

from __future__ import annotations

import argparse
from typing import Any

from eventrelay.config import load_config


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("validate", help="check a configuration file")
    p.add_argument("file", nargs="?", help="configuration file (or use --config)")
    p.add_argument("--config", dest="config_opt", help="configuration file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    path = args.config_opt or args.file
    if not path:
        print("validate needs a configuration file: eventrelay validate --config FILE")
        return 2
    config = load_config(path)
    print(
        f"{path}: OK ({len(config.sources)} sources, {len(config.destinations)} destinations, "
        f"storage {config.storage.backend})"
    )
    return 0
