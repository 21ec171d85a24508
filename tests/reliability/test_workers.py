"""``serve --workers 2``: the guarantees hold for the deployment, not per process.

A worker killed with SIGKILL under load is started again and loses nothing (its leases lapse to
the other); the same messageId sent on two connections at once (two workers, most pairs) is
stored and delivered once; /metrics and the admin API show every worker's events whichever
answers; a full disk answers 503 with Retry-After and the deployment recovers. The parent's own
kill -9 and SIGTERM are in test_crash.py.
"""

from __future__ import annotations

import base64
import http.client
import os
import random
import re
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.reliability.api import deliveries, get
from tests.reliability.client import Sender
from tests.reliability.conftest import ADMIN_TOKEN, WRITE_KEY, Server, wait_until

WORKERS = 2
KILLS = 3
IN_FLIGHT_BOUND = 8 + 64  # concurrency (shared by the workers) + one claim batch: what a kill can leave unacked
PAIRS = 40  # messageIds each sent twice at once, on two new connections
RESTART_TIMEOUT = 60.0  # seconds for a killed worker to be replaced and serving on a loaded machine
# The disk: room for the four write-ahead logs (two files, two workers) to grow a little after it
# fills and the ballast is deleted (a checkpoint needs a moment without readers on a busy file).
DISK_MB, BALLAST_MB = 32, 6
FLOOR = "4MB"  # storage.min_free_space on that disk (default 64 MB), as tests/reliability/test_disk_full.py
AUTH = "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()


@pytest.fixture
def workers(server: Server) -> Server:
    server.workers = WORKERS
    return server


def _track(port: int, message_id: str, auth: str = AUTH) -> tuple[int, dict[str, str]]:
    """One ``/v1/track`` on a new connection: the status and headers."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        body = orjson.dumps({"type": "track", "event": "Workers", "userId": "u1", "messageId": message_id})
        conn.request("POST", "/v1/track", body, {"Content-Type": "application/json", "Authorization": auth})
        answer = conn.getresponse()
        answer.read()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}
    finally:
        conn.close()


def _metric(url: str, name: str) -> float:
    status, body = get(url, "/metrics")
    assert status == 200
    return sum(float(v) for v in re.findall(rf"^{name}\{{[^}}]*\}} (\S+)$", body.decode(), re.MULTILINE))


@pytest.mark.slow
def test_a_killed_worker_is_restarted_and_loses_nothing(workers: Server) -> None:
    workers.start()
    sender = Sender(workers.url, WRITE_KEY)
    threads = sender.run_threads(4)
    rng = random.Random(5)
    try:
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.5, 2.0))
            before = workers.worker_pids()
            victim = rng.choice(before)
            os.kill(victim, signal.SIGKILL)
            assert wait_until(
                lambda v=victim: len(pids := workers.worker_pids()) == WORKERS and v not in pids, RESTART_TIMEOUT
            ), f"worker {victim} was not replaced: {workers.worker_pids()}"
        time.sleep(1.0)
    finally:
        sender.stop.set()
        for t in threads:
            t.join(timeout=15)
    acked = set(sender.acked)
    assert len(acked) > 100, f"too little load to mean anything ({len(acked)} acked)"
    assert wait_until(lambda: acked <= set(workers.delivered_ids()), timeout=120), (
        f"{len(acked - set(workers.delivered_ids()))} acknowledged events never reached the function"
    )
    counts = Counter(workers.delivered_ids())
    assert sum(c - 1 for c in counts.values() if c > 1) <= KILLS * IN_FLIGHT_BOUND
    assert "exited with -9; starting it again" in workers.all_output()


@pytest.mark.slow
def test_one_message_id_on_two_connections_at_once_is_delivered_once(workers: Server) -> None:
    workers.start()
    ids = [str(uuid.uuid4()) for _ in range(PAIRS)]
    statuses: list[int] = []
    for mid in ids:
        pair = [threading.Thread(target=lambda m=mid: statuses.append(_track(workers.port, m)[0])) for _ in range(2)]
        for t in pair:
            t.start()
        for t in pair:
            t.join()
    assert statuses == [200] * 2 * PAIRS
    assert wait_until(lambda: set(ids) <= set(workers.delivered_ids()), timeout=60)
    time.sleep(2.0)  # a second delivery, if there were one, would have happened by now
    assert sorted(workers.delivered_ids()) == sorted(ids)
    # whichever worker answers, the metrics and the admin API show the deployment
    for _ in range(4):
        assert _metric(workers.url, "eventrelay_events_ingested_total") == PAIRS
        assert _metric(workers.url, "eventrelay_events_duplicate_total") == PAIRS
        assert wait_until(lambda: _metric(workers.url, "eventrelay_events_delivered_total") == PAIRS, timeout=10)
        delivered = {r["message_id"] for r in deliveries(workers.url, destination="sink") if r["status"] == "delivered"}
        assert set(ids) <= delivered


@pytest.mark.slow
def test_a_config_api_change_reaches_every_worker(workers: Server) -> None:
    workers.start()
    conn = http.client.HTTPConnection("127.0.0.1", workers.port, timeout=30)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {ADMIN_TOKEN}"}
    conn.request("POST", "/api/v1/config/sources", orjson.dumps({"name": "ios"}), headers)
    created = conn.getresponse()
    assert created.status == 201
    key = orjson.loads(created.read())["write_key"]
    conn.close()
    auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    # new connections land on either worker: within the poll interval every one accepts the key
    statuses: list[int] = []

    def all_accept() -> bool:
        statuses[:] = [_track(workers.port, str(uuid.uuid4()), auth)[0] for _ in range(20)]
        return statuses == [200] * 20

    assert wait_until(all_accept, 15), statuses


@pytest.fixture
def small_disk(workers: Server) -> Iterator[Path]:
    data = workers.workdir / "data"
    data.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", f"size={DISK_MB}m", "tmpfs", str(data)]
    mounted = subprocess.run(mount, capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.decode().strip()})")
    try:
        yield data
    finally:
        if workers.proc is not None:
            workers.kill()
        subprocess.run(["umount", "-l", str(data)], check=False)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_full_disk_answers_503_and_the_workers_recover(workers: Server, small_disk: Path) -> None:
    ballast = small_disk / "other-program.dat"
    ballast.write_bytes(b"\0" * BALLAST_MB * 1024 * 1024)  # another program's file; deleting it frees space
    config = workers.config_path.read_text()  # a floor this small volume can hold (default 64 MB)
    workers.config_path.write_text(
        config.replace("storage: {backend: sqlite,", f"storage: {{min_free_space: {FLOOR}, backend: sqlite,")
    )
    workers.start()
    sender = Sender(workers.url, WRITE_KEY)
    refused: tuple[int, dict[str, str]] | None = None
    for _ in range(20_000):  # far more than the disk holds: ends on the first refusal
        answer = _track(workers.port, str(uuid.uuid4()))
        if answer[0] != 200:
            refused = answer
            break
        sender.send_batch(50)
    assert refused is not None, "the disk never filled"
    status, headers = refused
    assert status == 503 and int(headers["retry-after"]) > 0
    ballast.unlink()
    assert wait_until(lambda: _track(workers.port, str(uuid.uuid4()))[0] == 200, timeout=60)
    acked = set(sender.acked)
    assert len(acked) > 100
    # attempts done while the delivery log could not record them return after their lease (35 s)
    assert wait_until(lambda: acked <= set(workers.delivered_ids()), timeout=150), (
        f"{len(acked - set(workers.delivered_ids()))} acknowledged events never reached the function"
    )
