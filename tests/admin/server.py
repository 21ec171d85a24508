"""A real eventrelay app on a free port (uvicorn in this event loop), for admin API and browser tests.

The Runtime is built from a real Config with the SQLite queue and SQLite delivery log; its role
is ``ingest`` so no delivery engine runs: tests write delivery records directly, as the engine
would, and see exactly what the API, CLI and page make of them.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eventrelay.config.model import Config
from eventrelay.core.records import Accepted
from eventrelay.runtime import Runtime
from tests.support.inprocess import serving

ADMIN_TOKEN = "admin-token-0123456789abcdef"
WRITE_KEY = "write-key-SECRET-0123456789"
WORKSPACE_ID = "ws_eventlog_test"


def make_config(data_dir: Path, *, metrics_require_token: bool = False) -> Config:
    settings = {
        "lambda": "my-fn:live",
        "region": "us-west-2",
        "log_type": "Tail",
        "role_address": "arn:aws:iam::123456789012:role/eventrelay-invoke",
        "client_context": {"app": "shop"},
    }
    return Config.model_validate(
        {
            "workspace": {"id": WORKSPACE_ID},
            "storage": {"backend": "sqlite", "path": str(data_dir)},
            "admin": {"token": ADMIN_TOKEN, "metrics_require_token": metrics_require_token},
            "sources": [{"name": "web", "write_key": WRITE_KEY}],
            "destinations": [
                {"name": "lambda-prod", "settings": settings},
                {"name": "lambda-other", "settings": {**settings, "lambda": "other-fn"}},
            ],
        }
    )


@dataclass
class Served:
    runtime: Runtime
    url: str

    async def dead_job(self, message_id: str, destination: str = "lambda-prod", status: str = "failed") -> None:
        """Put one event in the queue and dead-letter it, as the engine does after the last attempt."""
        queue = self.runtime.queue
        body = b'{"type":"track","event":"Order Completed","userId":"u1","messageId":"%s"}' % message_id.encode()
        await queue.append([Accepted(message_id, "web", "track", 0.0, body, (destination,))])
        jobs = [j for j in await queue.claim(destination, 1000, 60.0) if j.message_id == message_id]
        assert jobs, f"{message_id} was not claimable"
        await queue.dead_letter(jobs[0], status, "test")  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def serve(config: Config, *, config_file: str | None = None) -> AsyncIterator[Served]:
    """``config`` served; ``config_file``: the file it was read from, as ``serve --config`` says."""
    runtime = Runtime(config, role="ingest", config_file=config_file)
    await runtime.start()
    try:
        async with serving(runtime) as url:  # what ``eventrelay serve`` runs
            yield Served(runtime, url)
    finally:
        await runtime.stop()


def auth(token: str = ADMIN_TOKEN) -> dict[str, Any]:
    return {"Authorization": f"Bearer {token}"}
