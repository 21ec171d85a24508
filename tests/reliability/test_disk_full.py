"""A full disk recovers when space returns, without a restart, and nothing accepted is lost.

eventrelay runs as ``serve --config`` with its data directory on a real small file system (a
24 MB tmpfs; a loop-mounted ext4 image where tmpfs cannot be mounted) and delivers to an Invoke
endpoint of this test. Ingest fills the disk down to ``storage.min_free_space`` (503
disk_full), another program then takes every byte left, a restart happens on the full disk,
and a little space is freed: ingest and delivery must be back within 30 s, and every accepted
event must reach the function.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest

from tests.reliability.conftest import Server, wait_until
from tests.reliability.direct import batch_request, write_config
from tests.reliability.invoke_double import slow_function
from tests.support.process import free_port
from tests.support.serve import serve_env

VOLUME_MB = 24
FLOOR = "4MB"  # storage.min_free_space for this small volume (default 64MB)
FREED_MB = 3  # "a little": less than the floor's worth of events
RECOVERY_SECONDS = 30.0
MAX_REQUESTS = 5_000  # far more batches than the volume holds: the fill ends on a 503, never runs away
SLOW = (0.2, 0.5)  # while filling: ingest outpaces delivery
FAST = (0.0, 0.02)  # once space is back: the backlog drains in seconds


@pytest.fixture
def small_volume(tmp_path: Path) -> Iterator[Path]:
    """A real file system of ``VOLUME_MB``: tmpfs, else an ext4 image on a loop device."""
    mountpoint = tmp_path / "volume"
    mountpoint.mkdir()
    tmpfs = _run("mount", "-t", "tmpfs", "-o", f"size={VOLUME_MB}m", "tmpfs", str(mountpoint))
    if tmpfs.returncode != 0:
        image = tmp_path / "volume.img"
        with image.open("wb") as f:
            f.truncate(VOLUME_MB * 1024 * 1024)
        made = _run("mkfs.ext4", "-q", "-F", "-m", "0", str(image))
        loop = _run("mount", "-o", "loop", str(image), str(mountpoint)) if made.returncode == 0 else made
        if loop.returncode != 0:
            pytest.skip(
                f"no small file system can be mounted here: tmpfs: {tmpfs.stderr.strip()}; "
                f"loop-mounted ext4: {loop.stderr.strip()}"
            )
    try:
        yield mountpoint
    finally:
        _run("umount", "-l", str(mountpoint))


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=False)


def _post(url: str, accepted: set[str]) -> tuple[int, dict[str, object], str | None]:
    """One batch: its status, JSON answer and Retry-After; its ids join ``accepted`` on a 200."""
    request, ids = batch_request(url)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            accepted.update(ids)
            return answer.status, orjson.loads(answer.read()), None
    except urllib.error.HTTPError as refused:
        return refused.code, orjson.loads(refused.read()), refused.headers.get("Retry-After")


def _take_every_byte(path: Path) -> None:
    """Another program writes until the disk refuses (ENOSPC)."""
    chunk = b"\0" * 65536
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, chunk)
    except OSError as full:
        assert full.errno == errno.ENOSPC, full
    finally:
        os.close(fd)


def _free(path: Path, megabytes: int) -> None:
    size = path.stat().st_size
    os.truncate(path, max(0, size - megabytes * 1024 * 1024))


def _delivers(finished: Callable[[], set[str]], count: int) -> bool:
    """``count`` more invocations answer within ``RECOVERY_SECONDS``."""
    start = len(finished())
    return wait_until(lambda: len(finished()) >= start + count, timeout=RECOVERY_SECONDS)


@pytest.mark.slow
def test_a_full_disk_recovers_when_space_returns_without_a_restart(tmp_path: Path, small_volume: Path) -> None:
    with slow_function(SLOW) as function:
        config = write_config(tmp_path, function.url, data=small_volume / "data", storage=f", min_free_space: {FLOOR}")
        server = Server(tmp_path, config, free_port(), tmp_path / "unused", serve_env("info"))
        server.start()
        try:
            accepted: set[str] = set()
            for _ in range(MAX_REQUESTS):  # ingest fills the disk down to the floor
                status, answer, retry_after = _post(server.url, accepted)
                if status != 200:
                    break
            assert status == 503 and retry_after is not None, answer
            assert orjson.dumps(answer).decode().count("disk_full") == 1 and len(accepted) > 10_000

            other = small_volume / "other-program.dat"
            _take_every_byte(other)  # the disk is full for good now
            assert _delivers(function.finished, 200), "delivery stalled on the full disk"

            server.kill(signal.SIGTERM)  # and a restart on the full disk
            server.start()
            assert _delivers(function.finished, 200), "delivery stalled after the restart"

            function.delay = FAST
            _free(other, FREED_MB)  # a little space comes back
            freed_at = time.monotonic()
            assert wait_until(lambda: _post(server.url, accepted)[0] == 200, timeout=RECOVERY_SECONDS, interval=0.5)
            assert time.monotonic() - freed_at < RECOVERY_SECONDS

            missing = lambda: accepted - function.finished()  # noqa: E731
            assert wait_until(lambda: not missing(), timeout=180), f"{len(missing())} accepted events never delivered"
        finally:
            if server.proc is not None:
                server.kill(signal.SIGTERM)
        output = server.all_output()
        assert "released the" in output and "space reserve" in output  # the reserve gave its room
