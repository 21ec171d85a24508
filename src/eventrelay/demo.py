"""The embedded default: ``eventrelay serve`` without a config file.

The demo is an ordinary configuration that the demo writes into its data directory on its first
start (``demo.yaml``, mode 0600: it holds the admin token and the write key) and that every later
start reads back, so the workspace id, write key and admin token stay the same across restarts, and
every other command run in the same folder (``deliveries``, ``redrive``, ``aws``, ``check``,
``send``, ``validate``) finds it without ``--config``.

It asks for the local AWS endpoint on a fixed loopback port, which runs the example handler (copied
to ``functions/handler.py``, yours to edit) as function ``eventrelay-demo`` behind role
``eventrelay-demo`` (trusting the workspace id as External ID), and echoes the handler's output on
serve's stdout. The destination ``demo-lambda`` is not in the file: it is put into the Config API's
store (``api-entities.json``) once, so it can be changed from the page's Settings and the Config
API like any destination created there; ``admin.endpoint_allow_list`` names the local endpoint, so
pointing a destination at it through the API is allowed.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import socket
from pathlib import Path
from typing import Any

import yaml

from eventrelay.config.model import Config
from eventrelay.config.store import STORE_FILE, ApiEntities, load_entities, save_entities

log = logging.getLogger(__name__)

DEFAULT_DATA_DIR = "./eventrelay-data"
DEMO_CONFIG = "demo.yaml"  # in the data directory; mode 0600
DEMO_FUNCTION = "eventrelay-demo"
DEMO_ROLE = "eventrelay-demo"
DEMO_DESTINATION = "demo-lambda"
DEMO_SOURCE = "demo"
DEMO_ACCOUNT = "123456789012"
DEMO_REGION = "us-west-2"
DEMO_HOST = "127.0.0.1"  # the local AWS endpoint listens on loopback only
IDENTITY_FILE = "demo-identity.json"  # written by earlier versions: its workspace id and write key are kept
DEMO_CONCURRENCY = 4  # the local function's runtime processes, and the demo destination's attempts in flight
EXAMPLE_HANDLER = Path(__file__).parent / "localaws" / "example_functions" / "handler.py"
SECRET_BYTES = 32  # token_urlsafe(32) gives 43 characters (>= 32 random characters required)
FILE_MODE = 0o600  # the file holds the admin token and the write key: owner only
HEADER = """\
# The demo's configuration, written by `eventrelay serve` (without --config) on its first start and
# read by every later start, and by deliveries, redrive, aws, check, send and validate run in the
# folder that holds this data directory. It holds the admin token and the write key: keep it private.
# The destination demo-lambda is kept in api-entities.json (the Config API's store): change it from
# the page's Settings or through the Config API.
"""


def config_path(data_dir: str | Path = DEFAULT_DATA_DIR) -> Path:
    """Where the demo's configuration file is (or will be) in ``data_dir``."""
    return Path(data_dir).resolve() / DEMO_CONFIG


def prepare(data_dir: str | Path = DEFAULT_DATA_DIR) -> Path:
    """The demo's configuration file in ``data_dir``: written, with the demo destination in the
    Config API's store, on the first start; left as it is afterwards (edit it if you like)."""
    data = Path(data_dir).resolve()
    data.mkdir(mode=0o700, parents=True, exist_ok=True)  # events and keys: owner only
    functions = _functions_dir(data)
    path = data / DEMO_CONFIG
    if path.is_file():
        return path
    workspace_id, write_key = _identity(data)
    port = _free_port()
    content = _config(data, functions, workspace_id, write_key, port)
    _write_private(path, HEADER + yaml.safe_dump(content, sort_keys=False))
    _seed_destination(data, port)
    return path


def hints(config: Config, config_file: Path, url: str) -> list[str]:
    """What the demo prints once eventrelay listens at ``url``: where things are, the admin
    token, the write key, and how to send a first event."""
    key = config.sources[0].write_key.get_secret_value() if config.sources else "WRITE_KEY"
    token = config.admin.token.get_secret_value() if config.admin.token else ""
    local = config.localaws
    lines = [f"demo: configuration {config_file} (the other eventrelay commands run in this folder find it)"]
    if local is not None:
        lines.append(
            f"demo: example handler {Path(local.functions_dir) / 'handler.py'} runs as Lambda function "
            f"{DEMO_FUNCTION!r} on the local AWS endpoint http://{local.host}:{local.port}"
        )
    return [
        *lines,
        f"admin token: {token} (kept in {config_file})",
        f"the Event Delivery page: {url}/#token={token}",
        f"demo write key: {key}",
        "try: curl -u " + key + f": {url}/v1/track -H 'Content-Type: application/json' "
        '-d \'{"userId":"u1","event":"Hello"}\'',
        "or with analytics-python (pip install segment-analytics-python):\n"
        "  python -c 'import segment.analytics as a; "
        f'a.write_key = "{key}"; a.host = "{url}"; a.track("user-1", "Hello"); a.flush()\'',
    ]


def _config(data: Path, functions: Path, workspace_id: str, write_key: str, port: int) -> dict[str, Any]:
    return {
        "workspace": {"id": workspace_id},
        "storage": {"backend": "sqlite", "path": str(data)},
        "admin": {"token": secrets.token_urlsafe(SECRET_BYTES), "endpoint_allow_list": [f"{DEMO_HOST}:{port}"]},
        "sources": [{"name": DEMO_SOURCE, "write_key": write_key}],
        "localaws": {
            "host": DEMO_HOST,
            "port": port,
            "account_id": DEMO_ACCOUNT,
            "region": DEMO_REGION,
            "functions_dir": str(functions),
            "echo_logs": True,
            "functions": {
                DEMO_FUNCTION: {"handler": "handler.handle", "timeout": "3s", "concurrency": DEMO_CONCURRENCY}
            },
            "roles": {DEMO_ROLE: {"external_id": workspace_id}},
        },
    }


def _seed_destination(data: Path, port: int) -> None:
    """Put the demo destination into the Config API's store (unless one of that name is there)."""
    store = data / STORE_FILE
    entities = load_entities(store)
    if DEMO_DESTINATION in entities.destination_names():
        return
    destination = {
        "name": DEMO_DESTINATION,
        "type": "aws_lambda",
        "settings": {
            "lambda": DEMO_FUNCTION,
            "region": DEMO_REGION,
            "role_address": f"arn:aws:iam::{DEMO_ACCOUNT}:role/{DEMO_ROLE}",
            "endpoint_url": f"http://{DEMO_HOST}:{port}",
        },
        # no more attempts in flight than the local function runs at once: more would wait in its
        # queue past their timeout and run twice (issue 19's demo probe)
        "delivery": {"concurrency": DEMO_CONCURRENCY},
    }
    save_entities(store, ApiEntities(entities.sources, [*entities.destinations, destination]))


def _identity(data: Path) -> tuple[str, str]:
    """The workspace id and write key: those an earlier version kept, else new ones."""
    path = data / IDENTITY_FILE
    if path.is_file():
        try:
            saved = json.loads(path.read_text())
            return str(saved["workspace_id"]), str(saved["write_key"])
        except (ValueError, KeyError) as exc:
            log.warning("%s is unreadable (%s): generating a new demo identity", path, exc)
    return f"ws_{secrets.token_hex(8)}", secrets.token_urlsafe(SECRET_BYTES)


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600 from the start (never readable by others)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _free_port() -> int:
    """A loopback port nothing listens on now: the local AWS endpoint's, kept in the file."""
    with socket.socket() as s:
        s.bind((DEMO_HOST, 0))
        return int(s.getsockname()[1])


def _functions_dir(data: Path) -> Path:
    functions = data / "functions"
    functions.mkdir(exist_ok=True)
    handler = functions / "handler.py"
    if not handler.exists():
        shutil.copyfile(EXAMPLE_HANDLER, handler)
    return functions
