"""`eventrelay deliveries` and `eventrelay redrive`: straight on the store, and through a server."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import orjson
import pytest

from eventrelay.cli.main import main
from eventrelay.core.outcome import Category
from eventrelay.core.records import Accepted
from eventrelay.deliverylog.sqlite import SQLiteDeliveryLog
from eventrelay.queue.sqlite import SQLiteQueue
from tests.admin.server import ADMIN_TOKEN, WORKSPACE_ID, WRITE_KEY, Served
from tests.deliverylog.records import attempt


def write_config(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    path = tmp_path / "eventrelay.yaml"
    path.write_text(f"""
workspace: {{id: {WORKSPACE_ID}}}
storage: {{backend: sqlite, path: {data}}}
admin: {{token: {ADMIN_TOKEN}}}
sources: [{{name: web, write_key: {WRITE_KEY}}}]
destinations:
  - name: lambda-prod
    settings: {{lambda: "my-fn:live", region: us-west-2, role_address: "arn:aws:iam::123456789012:role/r"}}
""")
    return path


async def seed(data: Path, failed: dict[str, Category]) -> None:
    """Failed events as the engine leaves them: dead in the queue, failed in the log; plus one delivered."""
    now = time.time()
    queue, log = SQLiteQueue(data / "queue.db"), SQLiteDeliveryLog(data / "deliverylog.db")
    await queue.start()
    await log.start()
    try:
        await queue.append([Accepted(m, "web", "track", now, b"{}", ("lambda-prod",)) for m in failed])
        for job in await queue.claim("lambda-prod", 1000, 60.0):
            await queue.dead_letter(job, "failed", "test")
        await log.record(
            [attempt(m, c, status="failed", at=now - 60, log_tail=f"tail of {m}") for m, c in failed.items()]
        )
        await log.record([attempt("ok1", Category.DELIVERED, at=now - 30)])
    finally:
        await log.close()
        await queue.close()


async def depth(data: Path) -> int:
    queue = SQLiteQueue(data / "queue.db")
    await queue.start()
    try:
        return await queue.depth("lambda-prod")
    finally:
        await queue.close()


def test_deliveries_prints_a_table_and_json_with_filters(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    asyncio.run(seed(tmp_path / "data", {"e1": Category.EXECUTION_ERROR, "a1": Category.ACCESS_DENIED}))

    assert main(["deliveries", "--config", str(config)]) == 0
    table = capsys.readouterr().out
    assert "MESSAGE ID" in table and "3 events" in table
    assert "execution_error" in table and "Exception: boom from handler" in table

    assert (
        main(
            [
                "deliveries",
                "--config",
                str(config),
                "--status",
                "failed",
                "--category",
                "access_denied",
                "--since",
                "1h",
                "--json",
            ]
        )
        == 0
    )
    body = orjson.loads(capsys.readouterr().out)
    assert [(d["message_id"], d["category"], d["status"]) for d in body["deliveries"]] == [
        ("a1", "access_denied", "failed")
    ]


def test_deliveries_shows_every_attempt_of_one_event(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    asyncio.run(seed(tmp_path / "data", {"e1": Category.EXECUTION_ERROR}))
    assert main(["deliveries", "--config", str(config), "--message-id", "e1"]) == 0
    out = capsys.readouterr().out
    assert "attempt 1 to lambda-prod" in out and "Execution Error" in out and "tail of e1" in out


def test_a_bad_time_is_a_usage_error_naming_the_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    assert main(["deliveries", "--config", str(config), "--since", "last tuesday"]) == 2
    assert "--since" in capsys.readouterr().err


def test_redrive_requeues_failed_events_with_a_progress_bar(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    data = tmp_path / "data"
    asyncio.run(
        seed(
            data,
            {"e1": Category.EXECUTION_ERROR, "e2": Category.EXECUTION_ERROR, "a1": Category.ACCESS_DENIED},
        )
    )

    assert main(["redrive", "--config", str(config), "lambda-prod", "--category", "execution_error"]) == 0
    captured = capsys.readouterr()
    assert "re-drove 2 events of lambda-prod" in captured.out
    assert "[##############################] 2/2" in captured.err
    assert asyncio.run(depth(data)) == 2

    assert main(["redrive", "--config", str(config), "lambda-prod"]) == 0
    assert "re-drove 1 event of lambda-prod" in capsys.readouterr().out
    assert asyncio.run(depth(data)) == 3

    assert main(["deliveries", "--config", str(config), "--status", "retrying", "--json"]) == 0
    assert len(orjson.loads(capsys.readouterr().out)["deliveries"]) == 3


def test_redrive_of_an_unknown_destination_says_which_exist(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    assert main(["redrive", "--config", str(config), "nope"]) == 2
    assert "lambda-prod" in capsys.readouterr().err


async def test_both_commands_work_through_a_running_server(
    served: Served,
    http: aiohttp.ClientSession,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await served.dead_job("f1")
    await served.runtime.log.record([attempt("f1", Category.TIMEOUT, status="failed", at=time.time() - 5)])
    monkeypatch.setenv("EVENTRELAY_ADMIN_TOKEN", ADMIN_TOKEN)

    assert await asyncio.to_thread(main, ["deliveries", "--url", served.url, "--json"]) == 0
    assert [d["category"] for d in orjson.loads(capsys.readouterr().out)["deliveries"]] == ["timeout"]
    assert await asyncio.to_thread(main, ["redrive", "--url", served.url, "lambda-prod", "--category", "timeout"]) == 0
    assert "re-drove 1 event" in capsys.readouterr().out
    assert await served.runtime.queue.depth("lambda-prod") == 1

    monkeypatch.setenv("EVENTRELAY_ADMIN_TOKEN", "wrong-token-0123456789")
    assert await asyncio.to_thread(main, ["deliveries", "--url", served.url]) == 1
    err = capsys.readouterr().err
    assert "HTTP 401" in err and "wrong-token" not in err
