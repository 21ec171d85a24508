"""eventrelay pointed straight at a test's own Invoke endpoint (``invoke_double``): its config
file and a sender of Tracking API batches. Used by the stop, damage and full-disk suites."""

from __future__ import annotations

import urllib.request
import uuid
from pathlib import Path

from tests.reliability.conftest import ADMIN_TOKEN, WORKSPACE, WRITE_KEY
from tests.support.send import batch_post

BATCH = 100  # events per /v1/batch request


def write_config(workdir: Path, function_url: str, *, data: Path | None = None, storage: str = "") -> Path:
    """A config delivering every event to ``function_url`` (destination ``slow``); ``storage``:
    more keys of the ``storage`` mapping (``, integrity_check: false``)."""
    config = workdir / "eventrelay.yaml"
    config.write_text(f"""
workspace: {{id: {WORKSPACE}}}
storage: {{backend: sqlite, path: {data or workdir / "data"}{storage}}}
admin: {{token: {ADMIN_TOKEN}}}
sources:
  - {{name: app, write_key: {WRITE_KEY}}}
destinations:
  - name: slow
    settings:
      lambda: slow-fn
      region: us-west-2
      role_address: arn:aws:iam::123456789012:role/eventrelay-invoke
      endpoint_url: {function_url}
    delivery: {{timeout: 5s, backoff_base: 200ms, backoff_cap: 1s}}
""")
    return config


def batch_request(url: str, size: int = BATCH) -> tuple[urllib.request.Request, list[str]]:
    """A /v1/batch request of ``size`` new track events, and their messageIds."""
    ids = [str(uuid.uuid4()) for _ in range(size)]
    events = [{"type": "track", "event": "Slow", "userId": "u", "messageId": m} for m in ids]
    return batch_post(url, WRITE_KEY, events), ids


def send(url: str, count: int) -> set[str]:
    """Send ``count`` events in batches; each batch must be accepted (200). Their messageIds."""
    accepted: set[str] = set()
    for _ in range(count // BATCH):
        request, ids = batch_request(url)
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert answer.status == 200
        accepted.update(ids)
    return accepted
