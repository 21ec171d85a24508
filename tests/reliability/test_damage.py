"""Damage does not go unnoticed: a damaged, emptied or missing queue.db is refused at start with
what to do; ``eventrelay recover`` saves the readable jobs, which are then delivered; damage
found while running turns /healthz unhealthy and is logged once.

eventrelay runs as ``serve --config`` subprocesses; ``--role ingest`` fills the queue (nothing
is delivered), the file is then damaged on disk as a failing disk or a careless copy would.
"""

from __future__ import annotations

import contextlib
import random
import sqlite3
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pytest

from tests.reliability.conftest import Server, wait_until
from tests.reliability.direct import send, write_config
from tests.reliability.invoke_double import SlowFunction, slow_function
from tests.support.process import free_port, stop_process
from tests.support.serve import run_eventrelay, serve_env, spawn_eventrelay, wait_healthy

EVENTS = 2_000
REFUSAL_SECONDS = 60.0  # a refused start exits after its checks: seconds, even on a loaded machine
FAST = (0.0, 0.01)  # the function answers at once: these tests are about the queue


def _server(tmp_path: Path, function: SlowFunction, *, storage: str = "") -> Server:
    config = write_config(tmp_path, function.url, storage=storage)
    return Server(tmp_path, config, free_port(), tmp_path / "unused", serve_env("info"))


def _fill(server: Server) -> set[str]:
    """Accept ``EVENTS`` events with delivery off, then stop gracefully."""
    args = ["serve", "--config", str(server.config_path), "--port", str(server.port), "--role", "ingest"]
    log = server.workdir / "ingest.log"
    proc = spawn_eventrelay(args, cwd=server.workdir, env=server.env, log=log)
    wait_healthy(f"{server.url}/healthz", proc, log, 60.0)
    try:
        return send(server.url, EVENTS)
    finally:
        proc.terminate()
        assert proc.wait(timeout=60) == 0


def _damage_a_page(db: Path, table: str = "jobs") -> None:
    """Overwrite one leaf page of ``table`` (in its middle) with random bytes."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        sql = "SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf' ORDER BY pageno"
        pages = [p for (p,) in conn.execute(sql, (table,))]
        (page_size,) = conn.execute("PRAGMA page_size").fetchone()
    page = random.Random(5).choice(pages[len(pages) // 4 : 3 * len(pages) // 4])
    with db.open("r+b") as f:
        f.seek((page - 1) * page_size)
        f.write(random.Random(page).randbytes(page_size))


def _eventrelay(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    return run_eventrelay(list(args), cwd=server.workdir, env=server.env, timeout=REFUSAL_SECONDS)


def _refused_start(server: Server, *more: str) -> str:
    done = _eventrelay(server, "serve", "--config", str(server.config_path), "--port", str(server.port), *more)
    assert done.returncode == 1, done.stdout + done.stderr
    return done.stderr


def _health(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=10) as answer:
            return answer.status, orjson.loads(answer.read())
    except urllib.error.HTTPError as refused:
        return refused.code, orjson.loads(refused.read())


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(f"{url}/healthz", timeout=10).close()
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True


def _queue_ids(db: Path) -> set[str]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return {m for (m,) in conn.execute("SELECT message_id FROM jobs")}


@pytest.mark.slow
def test_a_damaged_page_is_refused_at_start_and_recover_saves_the_readable_jobs(tmp_path: Path) -> None:
    with slow_function(FAST) as function:
        server = _server(tmp_path, function)
        accepted = _fill(server)
        db = tmp_path / "data" / "queue.db"
        _damage_a_page(db)

        refusal = _refused_start(server)
        assert f"{db} fails its integrity check" in refusal and "eventrelay recover" in refusal
        # serve --workers: the parent checks once, before it opens the queue or starts a worker
        assert f"{db} fails its integrity check" in _refused_start(server, "--workers", "2")

        recovered = _eventrelay(server, "recover", "--config", str(server.config_path))
        assert recovered.returncode == 0, recovered.stderr
        saved = _queue_ids(db)
        assert EVENTS - 20 <= len(saved) < EVENTS  # one 4 KB page held a few of the ~300-byte jobs
        assert saved <= accepted
        assert f"saved {len(saved)} jobs ({len(saved)} waiting, 0 failed)" in recovered.stdout
        assert "could not read jobs: rowids" in recovered.stdout
        aside = [p for p in db.parent.glob("queue.db.damaged-*") if not p.name.endswith(("-wal", "-shm"))]
        assert len(aside) == 1 and aside[0].stat().st_size > 0  # the damaged file is kept

        server.start()
        try:
            assert wait_until(lambda: saved <= function.finished(), timeout=60)
            assert _health(server.url) == (200, {"status": "ok"})
        finally:
            server.kill()
        assert function.duplicates() == {}


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["emptied", "missing"])
def test_an_emptied_or_missing_queue_is_refused_until_recovered(tmp_path: Path, damage: str) -> None:
    with slow_function(FAST) as function:
        server = _server(tmp_path, function)
        _fill(server)
        db = tmp_path / "data" / "queue.db"
        if damage == "emptied":
            db.write_bytes(b"")
        else:
            db.unlink()

        refusal = _refused_start(server)
        assert f"{db} is {'empty (0 bytes)' if damage == 'emptied' else 'missing'}" in refusal
        assert _refused_start(server) == refusal  # nothing was created meanwhile: still refused

        recovered = _eventrelay(server, "recover", "--config", str(server.config_path))
        assert recovered.returncode == 0 and "saved 0 jobs" in recovered.stdout
        server.start()  # the loss was acknowledged: an empty queue from here
        server.kill()


@pytest.mark.slow
def test_damage_found_while_running_turns_healthz_unhealthy_and_is_logged_once(tmp_path: Path) -> None:
    with slow_function(FAST) as function:
        server = _server(tmp_path, function, storage=", integrity_check: false")  # a very large store
        _fill(server)
        # the dedup table: not read at open, first read by the dedup expiry of the first write
        _damage_a_page(tmp_path / "data" / "queue.db", "dedup")

        args = ["serve", "--config", str(server.config_path), "--port", str(server.port)]
        log = tmp_path / "serve.log"
        proc = spawn_eventrelay(args, cwd=tmp_path, env=server.env, log=log)
        try:
            assert wait_until(lambda: _answers(server.url) and _health(server.url)[0] == 503, timeout=60)
            status, answer = _health(server.url)
            assert status == 503 and answer["status"] == "unhealthy"
            assert str(tmp_path / "data" / "queue.db") in orjson.dumps(answer).decode()
            assert "eventrelay recover" in str(answer["what_to_do"])
            wait_until(lambda: False, timeout=3)  # the damage is met again meanwhile
        finally:
            stop_process(proc, grace=30)
        output = log.read_text()
        assert output.count("queue.db is damaged") == 1, output[-3000:]
        assert "claiming due jobs failed" not in output
