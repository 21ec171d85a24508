"""``eventrelay localaws``: the endpoint alone, as a user runs it beside their own tooling."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.localaws.conftest import lambda_client, sts_client


def test_localaws_command_serves_the_functions_folder(tmp_path: Path) -> None:
    (tmp_path / "greet.py").write_text(
        "def handler(event, context):\n    print('greeting', event['name'])\n    return {'hello': event['name']}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "eventrelay.cli.main",
            "localaws",
            "--functions",
            str(tmp_path),
            "--port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout or []], daemon=True).start()

    def wait_for(text: str) -> str:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.2)
            except queue.Empty:
                assert proc.poll() is None, "localaws exited"
                continue
            if text in line:
                return line
        raise AssertionError(f"{text!r} not printed")

    try:
        url = wait_for("local AWS endpoint:").split()[-1]
        creds = sts_client(url, "AKIAANY", "any").assume_role(
            RoleArn="arn:aws:iam::123456789012:role/eventrelay-local",
            RoleSessionName="cli",
            ExternalId="eventrelay-local",
        )["Credentials"]
        r = lambda_client(url, creds).invoke(FunctionName="greet", Payload=b'{"name": "Ada"}')
        assert json.loads(r["Payload"].read()) == {"hello": "Ada"}
        assert "greeting Ada" in wait_for("greeting")
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
