"""``eventrelay serve --workers N|auto``: N processes serve one port and share one data directory.

With ``--config`` or the demo (whose configuration file ``serve`` writes first) alike.

The parent (this module's ``supervise``) does what must happen once per deployment, then starts
N worker processes (``eventrelay serve`` again, with the hidden ``--worker-socket``) and keeps
them running:

- it checks the data directory once (``storage/datadir.py``: a missing, emptied or damaged
  store file refuses the start before anything opens; the workers check only that the files are
  there, not their integrity again);
- it opens the SQLite queue once unshared (leases of a previous run released, the ready jobs
  counted), so the workers open it shared and never release the leases of a live sibling;
- it binds one listening socket per worker, all with ``SO_REUSEPORT`` on the one port (the
  kernel spreads connections evenly, which one inherited socket would not), and keeps them
  open: a restarted worker takes its own socket back, and connections that arrived meanwhile
  wait in its backlog rather than being refused;
- it runs the configuration's local AWS endpoint (``localaws:``), which has one port;
- it picks the admin token once when the configuration has none, so every worker accepts it;
- it gives the workers one directory for ``prometheus_client``'s multiprocess mode, so
  ``/metrics`` on any worker shows the sum over the deployment (``core/telemetry.render``);
- a worker that exits (kill -9 included) is started again after ``RESTART_DELAY``; its leases
  lapse to the others (lease = attempt timeout + 30 s);
- SIGTERM or SIGINT: SIGTERM to every worker, which drain as a single process does, then exit.

A worker dies with the parent (``PR_SET_PDEATHSIG``: SIGKILL), so a parent killed with kill -9
leaves no worker behind holding the port or leases; the next start recovers as after a crash.
A change made through the Config API (persisted in ``api-entities.json``) is applied by the
worker that took it at once and by the others within ``CONFIG_POLL_INTERVAL``
(``follow_config_changes``); two changes made at the same instant on two workers: the last
write of the file wins. A destination's ``concurrency`` is for the deployment: each worker runs
``ceil(concurrency / N)`` (``runtime.build.per_worker``). The AccessDenied / Invalid
Credentials pause is the deployment's: the worker that meets it publishes it in ``pauses/`` of
the data directory and the others stop claiming within ``delivery.pauses.PAUSE_READ_INTERVAL``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import logging
import os
import secrets
import shutil
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from eventrelay.config.model import Config, SqliteStorage
from eventrelay.core.errors import ConfigError, EventRelayError
from eventrelay.core.telemetry import MULTIPROCESS_DIR_ENV
from eventrelay.storage.dirlock import lock_data_dir

if TYPE_CHECKING:
    from eventrelay.runtime import Runtime

log = logging.getLogger("eventrelay.workers")

AUTO = "auto"
MAX_WORKERS = 256  # far above any core count this is meant for; a typo like 8000 is refused
RESTART_DELAY = 1.0  # seconds before a worker that exited is started again: a crash loop stays slow
STOP_MARGIN = 30.0  # seconds beyond the longest attempt timeout a worker gets to drain after SIGTERM
LISTEN_BACKLOG = 2048  # pending connections per worker socket (a restarting worker's wait here)
ADMIN_TOKEN_ENV = "EVENTRELAY_WORKERS_ADMIN_TOKEN"  # the token the parent picked, for its workers
METRICS_DIR = "metrics-workers"  # under storage.path, emptied at each start
_PR_SET_PDEATHSIG = 1  # linux/prctl.h
# Seconds between a worker's looks at the Config API store: a change taken by another worker
# applies here within this (a stat per second; changes are rare operator acts).
CONFIG_POLL_INTERVAL = 1.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--workers",
        default="1",
        help="worker processes sharing the port and the data directory: a number or 'auto' (one per CPU); default 1",
    )
    p.add_argument("--worker-socket", type=int, default=None, help=argparse.SUPPRESS)  # a worker's listening fd
    p.add_argument("--worker-parent", type=int, default=None, help=argparse.SUPPRESS)  # the parent's pid


def worker_count(value: str) -> int:
    """``--workers``: a number from 1 to ``MAX_WORKERS``, or ``auto`` (the CPUs this process may use)."""
    if value == AUTO:
        return max(1, len(os.sched_getaffinity(0)))
    try:
        count = int(value)
    except ValueError:
        raise ConfigError("--workers", f"{value!r} is neither a number nor 'auto'") from None
    if not 1 <= count <= MAX_WORKERS:
        raise ConfigError("--workers", f"{count} is outside 1..{MAX_WORKERS}")
    return count


def is_worker(args: argparse.Namespace) -> bool:
    return args.worker_socket is not None


def worker_config(config: Config) -> Config:
    """In a worker: the configuration with the admin token the parent picked (if the file has none)."""
    token = os.environ.get(ADMIN_TOKEN_ENV)
    if token is None or config.admin.token is not None:
        return config
    from pydantic import SecretStr

    admin = config.admin.model_copy(update={"token": SecretStr(token)})
    return config.model_copy(update={"admin": admin})


def worker_socket(args: argparse.Namespace) -> socket.socket:
    """In a worker: the listening socket the parent passed, the worker bound to the parent's life."""
    _die_with_parent(args.worker_parent)
    return socket.socket(fileno=args.worker_socket)


async def follow_config_changes(runtime: Runtime, config_file: str) -> None:
    """In a worker, until cancelled: apply the Config API changes other workers persisted."""
    from eventrelay.config import load_config
    from eventrelay.config.store import merge_api_entities, store_path

    path = store_path(runtime.config)
    # Unknown at first: the file may have changed between this worker's start-up read and now
    # (another worker took a change while this one was starting), so the first look compares.
    seen: tuple[int, int, int] | bool | None = False
    while True:
        await asyncio.sleep(CONFIG_POLL_INTERVAL)
        current = _signature(path)  # before the read: a change during it is seen next time
        if current == seen:
            continue
        seen = current
        try:
            config = worker_config(merge_api_entities(load_config(config_file)))
            if config != runtime.config:  # the worker that took the change has applied it already
                await runtime.reconfigure(config)
                log.info("applied a Config API change made through another worker")
        except EventRelayError as exc:
            log.warning("the Config API store changed but cannot be applied here: %s", exc)
        except Exception:  # a bug: logged, and the next change is still followed
            log.exception("could not apply a Config API change made through another worker")


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


def supervise(args: argparse.Namespace, count: int, config_file: Path) -> int:
    """The parent of ``count`` workers serving ``config_file`` (see the module doc); returns when
    they have stopped."""
    from eventrelay.config import load_config
    from eventrelay.config.store import merge_api_entities

    config = merge_api_entities(load_config(config_file))
    # The deployment's lock on its data directory (storage/dirlock.py), held by this parent and
    # inherited by every worker: an independent second serve is refused, the workers are not.
    lock = lock_data_dir(Path(config.storage.path))
    lock_env, lock_fds = lock.for_children()
    env: dict[str, str] = dict(lock_env)  # for the workers, over this process's environment when each starts
    token = None
    if config.admin.token is None:
        token = env[ADMIN_TOKEN_ENV] = secrets.token_urlsafe(32)
    if isinstance(config.storage, SqliteStorage):
        env[MULTIPROCESS_DIR_ENV] = str(_fresh_dir(Path(config.storage.path) / METRICS_DIR))
        _check_data_dir(config)
        asyncio.run(_recover_queue(config))
    sockets = _listening_sockets(args.host, args.port, count)
    try:
        return asyncio.run(_Supervisor(args, config_file, config, sockets, env, lock_fds).run(token))
    finally:
        for sock in sockets:
            sock.close()
        lock.release()


@dataclass
class _Supervisor:
    args: argparse.Namespace
    config_file: Path
    config: Config
    sockets: list[socket.socket]
    env: dict[str, str]  # over os.environ (which localaws may give base credentials) for each worker
    inherited: tuple[int, ...] = ()  # descriptors every worker inherits (the data directory's lock)

    async def run(self, token: str | None) -> int:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping.set)
        localaws = None
        if self.config.localaws is not None:
            from eventrelay.cli.serve import start_localaws

            localaws = await start_localaws(self.config)
        try:
            slots = [asyncio.create_task(self._keep(index, stopping)) for index in range(len(self.sockets))]
            from eventrelay.cli import running
            from eventrelay.cli.serve import announce

            note = f", {len(self.sockets)} workers"
            announce(self.config, self.config_file, self.args, self.port, not self.args.config, token, note)
            try:
                await asyncio.gather(*slots)
            finally:
                running.forget(self.config)
        finally:
            if localaws is not None:
                await localaws.stop()
        return 0

    async def _keep(self, index: int, stopping: asyncio.Event) -> None:
        """Worker ``index``: started, restarted when it exits, stopped with SIGTERM on ``stopping``."""
        sock = self.sockets[index]
        while not stopping.is_set():
            env = {**os.environ, **self.env}
            proc = await asyncio.create_subprocess_exec(
                *self._command(sock), env=env, pass_fds=(sock.fileno(), *self.inherited)
            )
            exited = asyncio.ensure_future(proc.wait())
            stop = asyncio.ensure_future(stopping.wait())
            await asyncio.wait({exited, stop}, return_when=asyncio.FIRST_COMPLETED)
            if stop.done():
                await self._stop(proc)
                exited.cancel()
            else:
                stop.cancel()
                log.warning("worker %d (pid %d) exited with %s; starting it again", index, proc.pid, proc.returncode)
            self._forget_metrics(proc.pid)
            if not stopping.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), RESTART_DELAY)

    async def _stop(self, proc: asyncio.subprocess.Process) -> None:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        grace = max((d.delivery.timeout for d in self.config.destinations), default=0.0) + STOP_MARGIN
        try:
            await asyncio.wait_for(proc.wait(), grace)
        except TimeoutError:
            log.warning("worker pid %d did not stop within %.0f s; killing it", proc.pid, grace)
            proc.kill()
            await proc.wait()

    def _command(self, sock: socket.socket) -> list[str]:
        args = self.args
        return [
            sys.executable,
            "-m",
            "eventrelay.cli.main",
            "serve",
            "--config",
            str(self.config_file.resolve()),
            "--role",
            args.role,
            "--log-level",
            args.log_level,
            "--host",
            args.host,
            "--port",
            str(self.port),
            "--workers",
            str(len(self.sockets)),
            "--worker-socket",
            str(sock.fileno()),
            "--worker-parent",
            str(os.getpid()),
        ]

    @property
    def port(self) -> int:
        return int(self.sockets[0].getsockname()[1])

    def _forget_metrics(self, pid: int | None) -> None:
        """A stopped worker's live gauges leave the sum (its counters stay: they count what it did)."""
        directory = self.env.get(MULTIPROCESS_DIR_ENV)
        if directory is None or pid is None:
            return
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]


def _check_data_dir(config: Config) -> None:
    """Refuse a damaged data directory before the queue is opened (as ``Runtime.start`` does)."""
    from eventrelay.runtime.build import data_layout
    from eventrelay.storage import datadir

    layout = data_layout(config)
    datadir.check(layout.directory, layout.files, check_integrity=layout.integrity_check)


async def _recover_queue(config: Config) -> None:
    """Open and close the SQLite queue unshared: leases of a previous run released, jobs counted."""
    from eventrelay.runtime.build import open_queue

    queue = open_queue(config)
    await queue.start()
    await queue.close()


def _listening_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` sockets listening on ``host:port`` with ``SO_REUSEPORT`` (port 0: one the OS picks)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            port = sock.getsockname()[1]
            sock.listen(LISTEN_BACKLOG)
            sock.set_inheritable(True)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        raise EventRelayError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    return sockets


def _fresh_dir(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def _die_with_parent(parent: int | None) -> None:
    """SIGKILL this process when its parent dies (Linux ``prctl``); exit now if it already has."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        log.warning("prctl(PR_SET_PDEATHSIG) failed (errno %d): this worker may outlive its parent", ctypes.get_errno())
    if parent is not None and os.getppid() != parent:
        os._exit(1)
