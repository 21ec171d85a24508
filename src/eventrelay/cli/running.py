"""Where a running ``eventrelay serve`` listens, for the other commands run beside it.

Once its port is bound, ``serve`` writes ``server.json`` (its URL and process id) into the data
directory (``storage.path``) and removes it when it stops. ``redrive`` must not open the SQLite
queue of a running server (the queue belongs to one process), so without ``--url`` it looks here
and asks the running server's admin API instead.
"""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

from eventrelay.config.model import Config

RECORD_FILE = "server.json"
PROBE_TIMEOUT = 2.0  # seconds for the running server's /healthz to answer
ANY_ADDRESS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}  # listening on all: reach it on loopback


def url_for(host: str, port: int) -> str:
    """The URL a client on this machine reaches ``host:port`` at."""
    host = ANY_ADDRESS.get(host, host)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def remember(config: Config, host: str, port: int) -> str:
    """Record that this process serves ``config`` on ``host:port``; returns the URL."""
    url = url_for(host, port)
    path = _record(config)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"url": url, "pid": os.getpid()}), encoding="utf-8")
    except OSError:
        pass  # a read-only data directory only costs the other commands the shortcut
    return url


def forget(config: Config) -> None:
    """Remove this process's record (another process's record is left alone)."""
    path = _record(config)
    if _read(path).get("pid") == os.getpid():
        path.unlink(missing_ok=True)


def find(config: Config) -> str | None:
    """The URL of a running server of ``config``'s data directory, or None."""
    found = _read(_record(config))
    url, pid = found.get("url"), found.get("pid")
    if not isinstance(url, str) or not isinstance(pid, int) or not _alive(pid):
        return None
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=PROBE_TIMEOUT) as answer:
            return url if answer.status == 200 else None
    except OSError:
        return None


def _record(config: Config) -> Path:
    return Path(config.storage.path) / RECORD_FILE


def _read(path: Path) -> dict[str, object]:
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by someone else
    return True
