"""A handler in the local Lambda runtime that writes every event it gets to a file, and the local
AWS endpoint set up for it (isolated AWS environment, the workspace's role), for tests that check
exactly which events a function received, and in which order."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from eventrelay.config.model import LocalAwsRole
from eventrelay.destinations.aws_lambda import endpoints
from eventrelay.localaws.server import LocalAwsServer
from tests.support.awsenv import isolate_aws_env
from tests.support.localaws import handler_functions, local_aws_endpoint

WORKSPACE = "ws_recording"
ROLE_NAME = "eventrelay-invoke"
ROLE = f"arn:aws:iam::123456789012:role/{ROLE_NAME}"


def _handler(out: Path) -> str:
    return f"""
import json

def handle(event, context):
    with open({str(out)!r}, "a") as f:
        f.write(json.dumps(event) + "\\n")
    return {{"ok": True}}
"""


def received(out: Path) -> list[dict[str, Any]]:
    """The events the handler wrote to ``out``, in the order it got them."""
    if not out.exists():
        return []
    return [json.loads(line) for line in out.read_text().splitlines() if line]


@asynccontextmanager
async def recording_functions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, out: Path, *names: str
) -> AsyncIterator[LocalAwsServer]:
    """The local AWS endpoint running functions ``names`` (aliased ``live``) that append each event to
    ``out``; botocore sees only it (base credentials of the test, no machine configuration)."""
    isolate_aws_env(monkeypatch, tmp_path, access_key="AKIARECORDINGTEST001", secret_key="recording-test-secret")
    monkeypatch.setattr(endpoints, "_default_session", None)  # botocore reads this test's environment
    settings = handler_functions(tmp_path, _handler(out), *names)
    settings = settings.model_copy(update={"roles": {ROLE_NAME: LocalAwsRole(external_id=WORKSPACE)}})
    async with local_aws_endpoint(settings, monkeypatch) as local:
        yield local
