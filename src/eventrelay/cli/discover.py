"""Which configuration a command reads, and which running server it asks, without flags.

Every command that reads configuration looks, in this order, for:

1. ``--config FILE``;
2. the demo's configuration, ``./eventrelay-data/demo.yaml``, written by ``eventrelay serve``
   without ``--config`` run in the current folder.

``redrive`` and ``replay`` then ask, in this order: the server of ``--url`` (token: ``--token``, else
``$EVENTRELAY_ADMIN_TOKEN``); a server running on that configuration's data directory (found
through ``cli/running.py``; token: the same, else the configuration's ``admin.token``); else it
opens the store itself.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from eventrelay.cli import running
from eventrelay.config import load_config
from eventrelay.config.model import Config
from eventrelay.core.errors import ConfigError
from eventrelay.demo import DEFAULT_DATA_DIR, config_path

TOKEN_ENV = "EVENTRELAY_ADMIN_TOKEN"
CONFIG_HELP = "configuration file (default: the demo's, ./eventrelay-data/demo.yaml, when it exists)"


def config_file(given: str | None) -> Path:
    """The configuration file to read: ``given``, else the demo's in this folder."""
    if given:
        return Path(given)
    demo = config_path(DEFAULT_DATA_DIR)
    if demo.is_file():
        return demo
    raise ConfigError(
        "--config",
        f"no configuration: pass --config FILE, or run this in the folder where `eventrelay serve` runs the "
        f"demo (looked for {demo})",
    )


def load(given: str | None) -> Config:
    """The configuration ``config_file(given)`` names, read and validated."""
    return load_config(config_file(given))


def admin_token(args: argparse.Namespace, config: Config | None = None) -> str | None:
    """The admin token: ``--token``, else ``$EVENTRELAY_ADMIN_TOKEN``, else ``config``'s."""
    token: str | None = args.token or os.environ.get(TOKEN_ENV)
    if token is None and config is not None and config.admin.token is not None:
        token = config.admin.token.get_secret_value()
    return token


def running_server(args: argparse.Namespace, config: Config) -> bool:
    """When a server runs on ``config``'s data directory: point ``args`` (``url``, ``token``) at
    its admin API and answer True. ConfigError when it runs but no admin token is known."""
    url = running.find(config)
    if url is None:
        return False
    token = admin_token(args, config)
    if token is None:
        raise ConfigError(
            "--token",
            f"eventrelay serve runs on this data directory at {url} and holds its queue: pass --url {url} "
            f"--token TOKEN (the admin token it printed) or set ${TOKEN_ENV}",
        )
    args.url, args.token = url, token
    return True


def store_to_open(args: argparse.Namespace) -> Config | None:
    """The configuration whose store the command opens itself, or None when it asks a server
    instead: ``--url``, or one running on the configuration's data directory (``running_server``
    then points ``args`` at it)."""
    if args.url:
        return None
    config = load(args.config)
    return None if running_server(args, config) else config
