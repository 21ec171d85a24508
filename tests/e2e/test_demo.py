"""The README's first command: ``eventrelay serve`` with no config, an event from analytics-python, and the
example handler's output on serve's own stdout (real SQLite, delivery engine, STS, Lambda, awslambdaric)."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import segment.analytics as analytics

from tests.support.process import free_port

DEADLINE_SECONDS = 90  # start + first delivery on a loaded 2-core machine


class Serve:
    def __init__(self, data_dir: Path, home: Path, workers: str = "1") -> None:
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}  # a newcomer: no AWS at all
        env["HOME"] = str(home)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "eventrelay.cli.main",
                "serve",
                "--data-dir",
                str(data_dir),
                "--port",
                str(self.port),
                "--workers",
                workers,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            text=True,
            cwd=str(home),
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def wait_for(self, text: str, timeout: float = DEADLINE_SECONDS) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                assert self.proc.poll() is None, "serve exited:\n" + "".join(self.seen)
                continue
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"{text!r} not seen within {timeout}s; output:\n" + "".join(self.seen))

    def wait_listening(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"serve is not listening on {self.port} after {timeout}s")

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise


@pytest.mark.parametrize("workers", ["1", "2"])
def test_demo_event_from_analytics_python_reaches_the_example_handler(tmp_path: Path, workers: str) -> None:
    data_dir = tmp_path / "data"
    serve = Serve(data_dir, tmp_path, workers)
    try:
        key = serve.wait_for("write key").strip().split()[-1]
        assert len(key) >= 32
        serve.wait_listening()
        client = analytics.Client(write_key=key, host=f"http://127.0.0.1:{serve.port}", sync_mode=True, max_retries=3)
        client.track("user-e2e", "Demo Works", {"plan": "pro"})
        client.flush()
        line = serve.wait_for("received track from user-e2e")
        assert "Demo Works" in line
        assert line.startswith("[eventrelay-demo] ")
    finally:
        assert serve.stop() in (0, -signal.SIGTERM)
    assert (data_dir / "functions" / "handler.py").is_file()

    again = Serve(data_dir, tmp_path)  # a restart keeps the write key the user already wired into clients
    try:
        assert again.wait_for("write key").strip().split()[-1] == key
    finally:
        again.stop()
