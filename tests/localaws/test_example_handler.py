"""The example handler eventrelay installs, run by the local runtime (awslambdaric) through boto3:
one event as sent by default, and a ``{"batch": [...]}`` payload answered with batchItemFailures."""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eventrelay.demo import EXAMPLE_HANDLER
from tests.localaws.conftest import ServerThread, assume, lambda_client, local_settings

# The example handler with its per-event work failing for one messageId, as a user's might.
FAILING_ON_BAD = """
import handler

shown = handler.show

def show(event, context):
    if event.get("messageId") == "bad":
        raise ValueError("cannot handle this one")
    shown(event, context)

handler.show = show
handle = handler.handle
"""


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    functions: Path = tmp_path_factory.mktemp("example-functions")
    shutil.copy(EXAMPLE_HANDLER, functions / "handler.py")
    (functions / "failing.py").write_text(FAILING_ON_BAD)
    settings = local_settings(
        functions_dir=str(functions),
        functions={"example": {"handler": "handler.handle"}, "failing": {"handler": "failing.handle"}},
    )
    server = ServerThread(settings)
    yield lambda_client(server.url, assume(server.url))
    server.stop()


def invoke(lam: Any, function: str, payload: dict[str, Any]) -> tuple[Any, str]:
    answer = lam.invoke(FunctionName=function, Payload=json.dumps(payload).encode(), LogType="Tail")
    assert "FunctionError" not in answer
    return json.loads(answer["Payload"].read()), base64.b64decode(answer["LogResult"]).decode()


def track(message_id: str) -> dict[str, Any]:
    return {"type": "track", "event": "Signed Up", "userId": "u1", "messageId": message_id}


def test_one_event_is_printed_and_answered_ok(example: Any) -> None:
    body, log = invoke(example, "example", track("m-1"))
    assert body == {"ok": True}
    assert "received track from u1: Signed Up (messageId m-1" in log


def test_a_batch_is_handled_event_by_event_and_answered_with_no_failures(example: Any) -> None:
    body, log = invoke(example, "example", {"batch": [track("m-1"), track("m-2")]})
    assert body == {"batchItemFailures": []}
    assert log.index("messageId m-1") < log.index("messageId m-2")


def test_an_event_that_fails_in_a_batch_is_reported_by_its_message_id(example: Any) -> None:
    body, log = invoke(example, "failing", {"batch": [track("m-1"), track("bad"), track("m-3")]})
    assert body == {"batchItemFailures": [{"itemIdentifier": "bad"}]}
    assert "failed on bad: cannot handle this one" in log and "messageId m-3" in log
