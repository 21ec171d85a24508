"""``eventrelay serve`` with its file-descriptor limit lowered to 2,048 and more idle and slow
connections than that (no bytes, half a head, a body short of its Content-Length): the server
never runs out of descriptors, refuses the connections past its cap with 503, logs a warning with
the count, and a normal ``/v1/track`` succeeds within the head timeout. With the fast path on and off."""

from __future__ import annotations

import asyncio
import base64
import os
import resource
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.process import free_port, stop_process
from tests.support.serve import EVENTRELAY, serve_env, wait_healthy

FD_LIMIT = 2048  # the server's RLIMIT_NOFILE (soft and hard), as `prlimit --nofile=2048` sets it
FLOOD = 2400  # connections opened against it: more than it has descriptors
HEAD_TIMEOUT = 2.0  # short so the test is quick (the default is 10 s)
BODY_TIMEOUT = 4.0
SLACK = 6.0  # seconds a loaded 2-core machine may add
START_TIMEOUT = 60.0
WRITE_KEY = "wk_flood_test_0123456789abcdef"
TRACK = b'{"userId": "u1", "event": "Signed Up"}'
HEAD = b"POST /v1/track HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"


def lowered_fd_limit() -> None:
    """In the child before it runs eventrelay: what `prlimit --nofile=2048` does."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def post_track(url: str) -> int:
    auth = base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    request = urllib.request.Request(
        f"{url}/v1/track", data=TRACK, headers={"Authorization": f"Basic {auth}", "Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=SLACK) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0  # refused or reset: no answer


@pytest.fixture(params=[True, False], ids=["fast_path_on", "fast_path_off"])
def server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    port = free_port()
    config = tmp_path / "eventrelay.yaml"
    config.write_text(
        f"storage: {{backend: sqlite, path: {tmp_path / 'data'}}}\n"
        f"sources: [{{name: app, write_key: {WRITE_KEY}}}]\n"
        f"ingest: {{fast_path: {str(request.param).lower()}, head_timeout: {HEAD_TIMEOUT}s, "
        f"body_timeout: {BODY_TIMEOUT}s}}\n"
    )
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*EVENTRELAY, "serve", "--config", str(config), "--port", str(port)],
            cwd=tmp_path,
            env=serve_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=lowered_fd_limit,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(f"{url}/healthz", proc, log, START_TIMEOUT)
        yield url, proc, log
    finally:
        stop_process(proc, 20)


async def flood(port: int) -> list[asyncio.StreamWriter]:
    """FLOOD connections: a third send nothing, a third half a head, a third a short body."""
    writers: list[asyncio.StreamWriter] = []
    for i in range(FLOOD):
        try:
            _reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), SLACK)
        except (OSError, TimeoutError):
            continue  # the listen queue is full for a moment: the server is refusing past its cap
        if i % 3 == 1:
            writer.write(HEAD)
        elif i % 3 == 2:
            writer.write(HEAD + b"Content-Length: 500\r\n\r\n" + TRACK)
        writers.append(writer)
    return writers


async def test_more_slow_connections_than_descriptors_do_not_stop_a_normal_request(
    server: tuple[str, subprocess.Popen[bytes], Path],
) -> None:
    url, proc, log = server
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < FLOOD + 256:
        pytest.skip(f"this test needs {FLOOD + 256} file descriptors; the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, FLOOD + 256), hard))
    writers = await flood(int(url.rsplit(":", 1)[1]))
    try:
        assert len(writers) > FD_LIMIT  # more connections than the server has descriptors
        flooded = time.monotonic()
        assert open_fds(proc.pid) < FD_LIMIT
        status = await asyncio.to_thread(post_track, url)
        while status != 200 and time.monotonic() - flooded < HEAD_TIMEOUT + SLACK:
            await asyncio.sleep(0.1)
            status = await asyncio.to_thread(post_track, url)
        took = time.monotonic() - flooded
        assert status == 200, log.read_text(errors="replace")[-3000:]
        assert took < HEAD_TIMEOUT + SLACK
        assert proc.poll() is None
        assert open_fds(proc.pid) < FD_LIMIT
    finally:
        for writer in writers:
            writer.close()
    output = log.read_text(errors="replace")
    warnings = [line for line in output.splitlines() if "WARNING" in line and "refused" in line]
    assert warnings, output[-3000:]
    assert "new connection(s) with 503" in warnings[0] and "the limit is" in warnings[0]
    assert len(warnings) <= 1 + (time.monotonic() - flooded) / 10 + 1  # at most one per 10 s interval
    assert "Too many open files" not in output and "out of system resource" not in output
