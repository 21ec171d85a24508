"""``eventrelay ARGS`` as a child process (``serve``, ``localaws``, ...), its output in a log file."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

EVENTRELAY = (sys.executable, "-m", "eventrelay.cli.main")
# Base credentials for the child: the local endpoint (no localaws.users) accepts any key unverified.
TEST_ACCESS_KEY, TEST_SECRET_KEY = "AKIALOCALTESTKEY0001", "local-test-secret-key-0001"
POLL_INTERVAL = 0.1  # seconds between health probes
PROBE_TIMEOUT = 5.0  # seconds one probe may take on a loaded 2-core machine


def serve_env(log_level: str | None = None) -> dict[str, str]:
    """This process's environment without any ``AWS_*`` variable of the machine, plus local base
    credentials and region (and ``EVENTRELAY_LOG_LEVEL`` when given)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        {
            "AWS_ACCESS_KEY_ID": TEST_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": TEST_SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-west-2",
        }
    )
    if log_level is not None:
        env["EVENTRELAY_LOG_LEVEL"] = log_level
    return env


def spawn_eventrelay(args: list[str], *, cwd: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start ``eventrelay ARGS`` in ``cwd``; stdout and stderr go to ``log``."""
    with open(log, "wb") as out:
        return subprocess.Popen([*EVENTRELAY, *args], cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)


def run_eventrelay(
    args: list[str], *, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    """``eventrelay ARGS`` run to its end in ``cwd`` (environment: ``serve_env()`` unless given):
    its exit code and what it printed."""
    return subprocess.run(
        [*EVENTRELAY, *args], cwd=cwd, env=env or serve_env(), capture_output=True, text=True, timeout=timeout
    )


def wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    """Poll ``url`` until it answers 200; RuntimeError (with the log) if the process exits first or
    ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"eventrelay exited before {url} answered:\n{log.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(POLL_INTERVAL)
    raise RuntimeError(f"{url} did not answer within {timeout:g} s:\n{log.read_text(errors='replace')}")
