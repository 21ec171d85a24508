"""``eventrelay check`` and ``eventrelay send`` against the local AWS endpoint, run as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.support.awsenv import isolate_aws_env
from tests.support.cli import run_cli, run_cli_in_thread
from tests.support.process import free_port

HANDLER = """
def handle(event, context):
    print("handled", event["type"], event.get("event") or "", context.function_name)
    return {"ok": True, "type": event["type"]}
"""
ROLE = "arn:aws:iam::123456789012:role/eventrelay-invoke"


@pytest.fixture
def clean_aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No AWS endpoints, credentials or profiles from the machine: the check finds the local endpoint."""
    isolate_aws_env(monkeypatch, tmp_path)


def write_config(tmp_path: Path, *, role_external_id: str | None = None, **settings: Any) -> Path:
    (tmp_path / "functions").mkdir(exist_ok=True)
    (tmp_path / "functions" / "handler.py").write_text(HANDLER, encoding="utf-8")
    fn = {"handler": "handler.handle", "versions": ["1"], "aliases": {"live": "1"}}
    localaws: dict[str, Any] = {
        "functions_dir": "functions",
        "functions": {"my-fn": fn, "users-fn": {"handler": "handler.handle"}},
    }
    if role_external_id is not None:
        localaws["roles"] = {"eventrelay-invoke": {"external_id": role_external_id}}
    config = {
        "workspace": {"id": "ws_123"},
        "storage": {"path": str(tmp_path / "data")},
        "sources": [{"name": "web", "write_key": "w" * 24}],
        "destinations": [
            {
                "name": "lambda-prod",
                "settings": {
                    "lambda": "my-fn:live",
                    "region": "us-west-2",
                    "role_address": ROLE,
                    "functions": {"identify": "users-fn"},
                    "log_type": "Tail",
                    **settings,
                },
            }
        ],
        "localaws": localaws,
    }
    path = tmp_path / "eventrelay.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@pytest.mark.usefixtures("clean_aws_env")
def test_check_passes_for_every_function(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "check", "--config", str(write_config(tmp_path)))
    assert code == 0, out + err
    assert "lambda-prod  my-fn:live: OK" in out
    assert "lambda-prod  users-fn: OK" in out


@pytest.mark.usefixtures("clean_aws_env")
def test_wrong_external_id_is_access_denied_with_the_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(write_config(tmp_path, role_external_id="ws_someone_else"))
    code, out, _ = run_cli(capsys, "check", "--config", path, "lambda-prod")
    assert code == 1
    assert "my-fn:live: access_denied (AccessDenied)" in out
    assert "sts:ExternalId = ws_123" in out  # the hint names the External ID the role must accept
    code, out, _ = run_cli(capsys, "check", "--config", path, "--json")
    assert code == 1
    report = json.loads(out)["destinations"][0]
    assert report["ok"] is False
    assert {f["category"] for f in report["functions"]} == {"access_denied"}
    assert report["functions"][0]["hint"]["name"] == "AccessDenied"


@pytest.mark.usefixtures("clean_aws_env")
def test_check_of_an_unknown_destination_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "check", "--config", str(write_config(tmp_path)), "nope")
    assert code == 2
    assert "no destination named 'nope' (lambda-prod)" in err


@pytest.mark.usefixtures("clean_aws_env")
def test_send_reaches_the_handler_and_shows_request_and_response(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(write_config(tmp_path))
    code, out, err = run_cli(
        capsys,
        "send",
        "--config",
        path,
        "--destination",
        "lambda-prod",
        "--event",
        "Order Completed",
        "--properties",
        '{"total": 42}',
    )
    assert code == 0, out + err
    assert "You sent:" in out and "Request to destination:" in out and "Response from destination:" in out
    assert '"category": "delivered"' in out
    assert "handled track Order Completed my-fn" in out  # the log tail (log_type: Tail)
    code, out, err = run_cli(
        capsys, "send", "--config", path, "--destination", "lambda-prod", "--type", "identify", "--json"
    )
    assert code == 0, out + err
    result = json.loads(out)
    assert result["you_sent"]["type"] == "identify"
    assert result["you_sent"]["messageId"] and result["you_sent"]["receivedAt"]
    assert result["request"]["function"] == "users-fn"
    assert json.loads(result["response"]["body"]) == {"ok": True, "type": "identify"}


BATCH_HANDLER = """
def handle(event, context):
    print("handled a batch of", len(event["batch"]), event["batch"][0]["type"])
    return {"batchItemFailures": [{"itemIdentifier": e["messageId"]} for e in event["batch"]]}
"""


@pytest.mark.usefixtures("clean_aws_env")
def test_send_to_a_batching_destination_sends_a_batch_of_one_and_shows_the_events_outcome(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(write_config(tmp_path, batch={"max_events": 10}))
    (tmp_path / "functions" / "handler.py").write_text(BATCH_HANDLER, encoding="utf-8")

    code, out, err = run_cli(capsys, "send", "--config", path, "--destination", "lambda-prod", "--json")

    assert code == 1, out + err  # the function reported the event failed
    result = json.loads(out)
    assert result["request"]["batch"]["events"] == 1
    assert result["response"]["category"] == "execution_error"
    assert result["response"]["error_type"] == "BatchItemFailure"
    assert "handled a batch of 1 track" in result["response"]["log_tail"]


@pytest.mark.usefixtures("clean_aws_env")
def test_send_that_is_refused_exits_non_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(write_config(tmp_path, role_external_id="ws_someone_else"))
    code, out, _ = run_cli(capsys, "send", "--config", path, "--destination", "lambda-prod", "--type", "page")
    assert code == 1
    assert '"category": "access_denied"' in out


def test_send_refuses_bad_properties(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(write_config(tmp_path))
    code, _, err = run_cli(capsys, "send", "--config", path, "--destination", "lambda-prod", "--properties", "[1]")
    assert code == 1
    assert "--properties must be a JSON object" in err


@pytest.mark.usefixtures("clean_aws_env")
async def test_check_uses_the_local_endpoint_of_a_running_eventrelay(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from eventrelay.config import load_config
    from eventrelay.localaws.server import LocalAwsServer

    port = free_port()
    path = write_config(tmp_path)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["localaws"]["port"] = port
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    config = load_config(path)
    assert config.localaws is not None
    # What `eventrelay serve` runs with this config (endpoint on the fixed port).
    running = await LocalAwsServer(config.localaws, config=config, base_dir=tmp_path).start()
    try:
        code, out, err = await run_cli_in_thread(capsys, "check", "--config", str(path))
        assert code == 0, out + err
        assert f"using the local AWS endpoint of the running eventrelay at http://127.0.0.1:{port}" in err
        assert running.sessions._by_key, "no session was issued by the running endpoint"
    finally:
        await running.stop()
