"""``eventrelay replay --config``, with the server stopped: the dry run reads the archive file
directly (counts as a direct count finds), a replay is stored and runs when ``serve`` starts, and a
bad ``--where`` is reported with its position."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from tests.support.cli import run_cli

from eventrelay.config import load_config
from eventrelay.core.records import Accepted
from eventrelay.runtime.build import open_queue

CONFIG = """
storage: {{backend: sqlite, path: {data}}}
sources: [{{name: web, write_key: kkkkkkkkkkkkkkkkkkkkkkkk}}, {{name: ios, write_key: iiiiiiiiiiiiiiiiiiiiiiii}}]
destinations:
  - name: late
    settings: {{lambda: late-fn, region: us-west-2, role_address: "arn:aws:iam::123456789012:role/r"}}
    delivery: {{concurrency: 10}}
"""


async def _archive(config_path: Path) -> None:
    queue = open_queue(load_config(config_path))
    await queue.start()
    now = time.time()
    events = [
        Accepted(f"m{i}", "ios" if i % 5 == 0 else "web", "track", now - 600 + i,
                 json.dumps({"type": "track", "event": "Paid" if i % 2 else "Viewed", "properties": {"n": i}}).encode(),
                 ())
        for i in range(100)
    ]  # fmt: skip
    await queue.append(events)
    await queue.close()


def test_dry_run_then_a_stored_replay_with_the_server_stopped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "eventrelay.yaml"
    path.write_text(CONFIG.format(data=tmp_path / "data"))
    asyncio.run(_archive(path))
    base = ["replay", "--config", str(path), "late", "--since", "1h"]

    code, out, _ = run_cli(capsys, *base, "--source", "web", "--event", "Paid", "--where", "properties.n >= 50",
                           "--dry-run", "--json")  # fmt: skip
    plan = json.loads(out)
    direct = sum(1 for i in range(100) if i % 5 and i % 2 and i >= 50)
    assert code == 0 and plan["matched"] == direct and plan["events_in_window"] == 80

    code, out, _ = run_cli(capsys, *base, "--dry-run")
    assert code == 0 and "dry run: 100 events of late would be replayed" in out

    code, out, _ = run_cli(capsys, *base, "--type", "track")
    assert code == 0 and "stored: it runs when `eventrelay serve` starts" in out
    replay_id = out.split()[1]

    async def stored() -> tuple[str, int, int]:
        queue = open_queue(load_config(path))
        await queue.start()
        try:
            record = await queue.replay(replay_id)  # type: ignore[attr-defined]
            return record.state, record.matched, record.limit
        finally:
            await queue.close()

    assert asyncio.run(stored()) == ("running", 100, 5)

    code, _, err = run_cli(capsys, *base, "--where", 'event = "Paid" and', "--dry-run")
    assert code == 2 and "--where: at character 19: expected a condition" in err
