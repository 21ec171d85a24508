"""``eventrelay serve`` without a config, as a newcomer runs it: a child process in its own folder,
with no AWS configuration at all (no credentials, no profile, no endpoints)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.support.process import free_port, stop_process
from tests.support.serve import EVENTRELAY, spawn_eventrelay, wait_healthy

START_TIMEOUT = 60.0  # seconds: start-up on a loaded 2-core machine
STOP_GRACE = 30.0  # seconds for a graceful stop before SIGKILL


def newcomer_env(home: Path) -> dict[str, str]:
    """This process's environment without any ``AWS_*`` variable, HOME in ``home`` (no ~/.aws)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"HOME": str(home), "AWS_EC2_METADATA_DISABLED": "true"})
    return env


@dataclass
class Demo:
    folder: Path  # where serve runs (and the other commands run)
    url: str
    out: Path  # serve's stdout and stderr
    proc: subprocess.Popen[bytes]

    @property
    def config(self) -> dict[str, object]:
        data: dict[str, object] = yaml.safe_load((self.folder / "eventrelay-data" / "demo.yaml").read_text())
        return data

    @property
    def token(self) -> str:
        return str(self.config["admin"]["token"])  # type: ignore[index]

    @property
    def write_key(self) -> str:
        return str(self.config["sources"][0]["write_key"])  # type: ignore[index]

    def output(self) -> str:
        return self.out.read_text(errors="replace")

    def wait_output(self, text: str, timeout: float = START_TIMEOUT) -> str:
        """serve's output once it contains ``text``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen = self.output()
            if text in seen:
                return seen
            time.sleep(0.1)
        raise AssertionError(f"{text!r} not in serve's output within {timeout:g} s:\n{self.output()[-4000:]}")

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """``eventrelay ARGS`` run in the demo's folder, as the user runs it there."""
        return subprocess.run(
            [*EVENTRELAY, *args],
            cwd=self.folder,
            env=newcomer_env(self.folder),
            capture_output=True,
            text=True,
            input=stdin,
            timeout=120,
        )


@contextlib.contextmanager
def running_demo(folder: Path, *, port: int | None = None, log: str = "serve.out") -> Iterator[Demo]:
    """``eventrelay serve --port P`` in ``folder`` until the block ends (SIGTERM, then SIGKILL)."""
    port = port or free_port()
    out = folder / log
    proc = spawn_eventrelay(["serve", "--port", str(port)], cwd=folder, env=newcomer_env(folder), log=out)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url + "/healthz", proc, out, START_TIMEOUT)
        demo = Demo(folder, url, out, proc)
        demo.wait_output("demo write key")
        yield demo
    finally:
        stop_process(proc, STOP_GRACE)
