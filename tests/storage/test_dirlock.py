"""One deployment per data directory: a second ``serve`` is refused at once, naming the lock and
the holder's pid; the processes of one deployment share the lock through an inherited descriptor."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from eventrelay.cli.running import RECORD_FILE
from eventrelay.core.errors import DataDirInUse
from eventrelay.storage.dirlock import LOCK_FD_ENV, LOCK_FILE, lock_data_dir
from tests.support.process import free_port, stop_process
from tests.support.serve import run_eventrelay, serve_env, spawn_eventrelay, wait_healthy

REFUSAL_SECONDS = 20.0  # a refused serve exits before it opens anything: well under this on a loaded machine
CHILD = """
import sys
from pathlib import Path
from eventrelay.cli.running import RECORD_FILE
from eventrelay.core.errors import DataDirInUse
from eventrelay.storage.dirlock import lock_data_dir
try:
    lock_data_dir(Path(sys.argv[1]))
except DataDirInUse as exc:
    print(exc)
    sys.exit(3)
print("locked")
"""


def _child(directory: Path, env: dict[str, str], pass_fds: tuple[int, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CHILD, str(directory)],
        env={**os.environ, **env},
        pass_fds=pass_fds,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_second_lock_is_refused_naming_the_lock_file_and_the_holder(tmp_path: Path) -> None:
    held = lock_data_dir(tmp_path / "data")
    try:
        with pytest.raises(DataDirInUse) as refused:
            lock_data_dir(tmp_path / "data")
        assert str(tmp_path / "data" / LOCK_FILE) in str(refused.value)
        assert f"pid {os.getpid()}" in str(refused.value)
    finally:
        held.release()
    lock_data_dir(tmp_path / "data").release()  # released: free again


def test_children_of_the_deployment_share_the_lock_an_independent_process_does_not(tmp_path: Path) -> None:
    held = lock_data_dir(tmp_path)
    try:
        env, fds = held.for_children()
        shared = _child(tmp_path, env, fds)
        assert shared.returncode == 0 and shared.stdout.strip() == "locked", shared.stderr

        independent = _child(tmp_path, {})
        assert independent.returncode == 3
        assert f"pid {os.getpid()}" in independent.stdout

        forged = _child(tmp_path, {LOCK_FD_ENV: "0"})  # a descriptor that is not the lock is not adopted
        assert forged.returncode == 3
    finally:
        held.release()


@pytest.fixture
def first_serve(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[bytes]]]:
    config = tmp_path / "eventrelay.yaml"
    config.write_text(f"""
storage: {{backend: sqlite, path: {tmp_path / "data"}}}
admin: {{token: adm_lock_test_0123456789abcdef}}
sources:
  - {{name: app, write_key: wk_lock_test_0123456789abcdef}}
destinations:
  - name: fn
    settings: {{lambda: fn, region: us-west-2, role_address: "arn:aws:iam::123456789012:role/r",
               endpoint_url: "http://127.0.0.1:9"}}
""")
    port = free_port()
    args = ["serve", "--config", str(config), "--port", str(port)]
    proc = spawn_eventrelay(args, cwd=tmp_path, env=serve_env(), log=tmp_path / "first.log")
    try:
        wait_healthy(f"http://127.0.0.1:{port}/healthz", proc, tmp_path / "first.log", 60.0)
        yield config, proc
    finally:
        stop_process(proc, grace=30)


def test_a_second_serve_on_the_same_data_directory_is_refused_at_once(
    tmp_path: Path, first_serve: tuple[Path, subprocess.Popen[bytes]]
) -> None:
    config, first = first_serve
    started = time.monotonic()
    second = run_eventrelay(["serve", "--config", str(config), "--port", str(free_port())], cwd=tmp_path)
    assert second.returncode == 1, second.stderr
    assert time.monotonic() - started < REFUSAL_SECONDS
    assert str(tmp_path / "data" / LOCK_FILE) in second.stderr
    assert f"pid {first.pid}" in second.stderr
    assert first.poll() is None  # the first one is untouched


def test_a_direct_redrive_is_refused_while_serve_holds_the_data_directory(
    tmp_path: Path, first_serve: tuple[Path, subprocess.Popen[bytes]]
) -> None:
    config, first = first_serve
    # redrive asks a server it finds running (cli/running.py); one it does not find (its record
    # gone, its /healthz unhealthy on a damaged file) must not have its queue opened under it
    (tmp_path / "data" / RECORD_FILE).unlink()
    redrive = run_eventrelay(["redrive", "--config", str(config), "fn"], cwd=tmp_path)
    assert redrive.returncode == 1  # opening the queue would release the running server's leases
    assert f"pid {first.pid}" in redrive.stderr and LOCK_FILE in redrive.stderr
