"""The embedded default: ``eventrelay serve`` without a config file.

A data directory holds the SQLite store, a generated workspace id and write key (kept across restarts,
file mode 0600) and a copy of the example handler (``functions/handler.py``, yours to edit). The local
AWS endpoint runs that handler as function ``eventrelay-demo`` behind role ``eventrelay-demo``, which
trusts the workspace id as External ID; the destination ``demo-lambda`` delivers every event to it
through the real STS + Lambda wire protocol, and the handler's output appears on this process's stdout.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
from pathlib import Path

from eventrelay.config.model import Config, LocalAws, Source, SqliteStorage, Workspace
from eventrelay.config.model import Destination as DestinationConfig
from eventrelay.destinations.aws_lambda.settings import AwsLambdaSettings
from eventrelay.localaws.server import LocalAwsServer

log = logging.getLogger(__name__)

DEMO_FUNCTION = "eventrelay-demo"
DEMO_ROLE = "eventrelay-demo"
DEMO_ACCOUNT = "123456789012"
DEMO_REGION = "us-west-2"
IDENTITY_FILE = "demo-identity.json"  # workspace id and write key, mode 0600
EXAMPLE_HANDLER = Path(__file__).parent / "localaws" / "example_functions" / "handler.py"
WRITE_KEY_BYTES = 32  # token_urlsafe(32) gives 43 characters (>= 32 random characters required)


async def demo_config(data_dir: str, port: int) -> tuple[Config, LocalAwsServer]:
    """The demo's configuration and its started local AWS endpoint (``port`` is eventrelay's own)."""
    data, workspace_id, write_key, functions = _prepare(data_dir)
    local = LocalAws(
        account_id=DEMO_ACCOUNT,
        region=DEMO_REGION,
        functions_dir=str(functions),
        echo_logs=True,
        functions={DEMO_FUNCTION: {"handler": "handler.handle", "timeout": 3}},
        roles={DEMO_ROLE: {"external_id": workspace_id}},
    )
    server = await LocalAwsServer(local).start()
    server.ensure_base_credentials()
    settings = AwsLambdaSettings.model_validate(
        {
            "lambda": DEMO_FUNCTION,
            "region": DEMO_REGION,
            "log_type": "Tail",
            "endpoint_url": server.url,
            "role_address": f"arn:aws:iam::{DEMO_ACCOUNT}:role/{DEMO_ROLE}",
        }
    )
    config = Config(
        workspace=Workspace(id=workspace_id),
        storage=SqliteStorage(path=str(data)),
        sources=[Source.model_validate({"name": "demo", "write_key": write_key})],
        destinations=[DestinationConfig(name="demo-lambda", settings=settings)],
        localaws=local,
    )
    print(
        f"demo: data in {data}; example handler {functions / 'handler.py'} runs as Lambda function "
        f"{DEMO_FUNCTION!r} on the local AWS endpoint {server.url}",
        flush=True,
    )
    print(
        "demo: send an event with analytics-python (pip install segment-analytics-python), the key being "
        "the one printed below:\n"
        "  WRITE_KEY=... python -c 'import os, segment.analytics as a; "
        'a.write_key = os.environ["WRITE_KEY"]; '
        f'a.host = "http://127.0.0.1:{port}"; a.track("user-1", "Hello"); a.flush()\'',
        flush=True,
    )
    return config, server


def _prepare(data_dir: str) -> tuple[Path, str, str, Path]:
    data = Path(data_dir).resolve()
    data.mkdir(parents=True, exist_ok=True)
    workspace_id, write_key = _identity(data)
    return data, workspace_id, write_key, _functions_dir(data)


def _identity(data: Path) -> tuple[str, str]:
    """The demo's workspace id and write key, generated once and kept in the data directory."""
    path = data / IDENTITY_FILE
    if path.is_file():
        try:
            saved = json.loads(path.read_text())
            return str(saved["workspace_id"]), str(saved["write_key"])
        except (ValueError, KeyError) as exc:
            log.warning("%s is unreadable (%s): generating a new demo identity", path, exc)
    workspace_id = f"ws_{secrets.token_hex(8)}"
    write_key = secrets.token_urlsafe(WRITE_KEY_BYTES)
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"workspace_id": workspace_id, "write_key": write_key}, f)
    os.replace(tmp, path)
    return workspace_id, write_key


def _functions_dir(data: Path) -> Path:
    functions = data / "functions"
    functions.mkdir(exist_ok=True)
    handler = functions / "handler.py"
    if not handler.exists():
        shutil.copyfile(EXAMPLE_HANDLER, handler)
    return functions
