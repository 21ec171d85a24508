"""Worker processes per function version: ``python -m awslambdaric module.function``, reused.

Each worker polls its own Runtime API listener (one loopback port per worker, so the server knows which
process asks). A worker that runs past the function's timeout is killed (SIGKILL) and replaced; one that
exits fails its invocation with ``Runtime.ExitError``. Up to ``concurrency`` workers run per function;
further invocations wait in a queue for the next free worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import orjson

from eventrelay.localaws.functions import FunctionSpec
from eventrelay.localaws.invocation import Invocation

log = logging.getLogger(__name__)

CODE_CHECK_SECONDS = 0.5  # how often the handler file's mtime is checked (a stat per invoke costs too much)
MEMORY_CHECK_SECONDS = 1.0  # how often a worker's peak memory is read from /proc for REPORT lines
MAX_INIT_LOG_BYTES = 8 * 1024  # output of a failing start kept for the invocations it fails
EXIT_GRACE_SECONDS = 0.2  # after the process exits, wait this long for its last output before finishing
SECRET_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")

Echo = Callable[[str, bytes], None]
"""Called with (function name, a chunk of what a handler printed)."""


class RuntimeHost:
    """What a worker needs from the Runtime API server: a listener of its own."""

    async def listen(self, worker: Worker) -> int:  # pragma: no cover - protocol
        raise NotImplementedError

    async def unlisten(self, worker: Worker) -> None:  # pragma: no cover - protocol
        raise NotImplementedError


class Pool:
    """Workers of one function version."""

    def __init__(
        self, spec: FunctionSpec, version: str, region: str, host: RuntimeHost, echo: Echo | None = None
    ) -> None:
        self.spec = spec
        self.version = version
        self.region = region
        self.host = host
        self.echo = echo
        self.workers: set[Worker] = set()
        self.queue: deque[Invocation] = deque()
        self.idle: deque[tuple[Worker, asyncio.Future[Invocation]]] = deque()
        self.closed = False
        self._spawning: set[asyncio.Task[None]] = set()
        self.code_stamp = _code_stamp(spec)
        self._code_checked = time.monotonic()

    def submit(self, inv: Invocation) -> None:
        self._refresh_code()
        while self.idle:
            _worker, waiter = self.idle.popleft()
            if not waiter.done():
                waiter.set_result(inv)
                return
        self.queue.append(inv)
        self._scale()

    async def next_for(self, worker: Worker) -> Invocation:
        """The next invocation for a worker polling ``/invocation/next`` (waits while there is none)."""
        worker.polled = True
        while self.queue:
            inv = self.queue.popleft()
            if not inv.done:
                return inv
        waiter: asyncio.Future[Invocation] = asyncio.get_running_loop().create_future()
        self.idle.append((worker, waiter))
        worker.waiter = waiter
        try:
            return await waiter
        finally:
            worker.waiter = None

    def _refresh_code(self) -> None:
        """When the handler's file changed since the workers loaded it, replace them (idle ones now, busy
        ones when they finish), so an edited handler runs on the next event without a restart."""
        now = time.monotonic()
        if now - self._code_checked < CODE_CHECK_SECONDS:
            return
        self._code_checked = now
        stamp = _code_stamp(self.spec)
        if stamp == self.code_stamp:
            return
        self.code_stamp = stamp
        log.info("%s changed: its workers restart with the new code", self.spec.handler)
        for worker in self.workers:
            worker.stale = True
        idle, self.idle = self.idle, deque()
        for worker, waiter in idle:
            waiter.cancel()
            worker.kill()

    def _scale(self) -> None:
        """Start workers while invocations wait and fewer than ``concurrency`` workers exist."""
        starting = sum(1 for w in self.workers if not w.polled)
        waiting = sum(1 for inv in self.queue if not inv.done)
        while not self.closed and waiting > starting and len(self.workers) < self.spec.concurrency:
            worker = Worker(self)
            self.workers.add(worker)
            task = asyncio.get_running_loop().create_task(self._start(worker))
            self._spawning.add(task)
            task.add_done_callback(self._spawning.discard)
            starting += 1

    async def _start(self, worker: Worker) -> None:
        try:
            await worker.start()
        except Exception as exc:  # the interpreter or awslambdaric cannot start: fail what waits
            log.error("cannot start a worker for %s: %s", self.spec.name, exc)
            self.workers.discard(worker)
            self._fail_queued(None, f"Runtime failed to start: {exc}")

    def worker_exited(self, worker: Worker, returncode: int | None) -> None:
        self.workers.discard(worker)
        if worker.waiter is not None and not worker.waiter.done():
            worker.waiter.cancel()
        self.idle = deque((w, f) for w, f in self.idle if w is not worker)
        if self.closed:
            return
        if not worker.polled:  # died during init: what waits would only trigger the same failure again
            self._fail_queued(worker.init_error, _exit_reason(returncode), bytes(worker.init_log))
            return
        self._scale()

    def _fail_queued(self, init_error: bytes | None, reason: str, init_log: bytes = b"") -> None:
        while self.queue:
            inv = self.queue.popleft()
            inv.begin()
            inv.append_log(init_log)  # what the runtime printed while it failed to start (INIT, as AWS logs it)
            if init_error is not None:
                inv.fail(_with_request_id(init_error, inv.request_id))
            else:
                inv.fail_platform("Runtime.ExitError", reason)

    async def close(self) -> None:
        self.closed = True
        for task in list(self._spawning):
            task.cancel()
        for worker in list(self.workers):
            worker.kill()
        for worker in list(self.workers):
            await worker.wait_closed()
        while self.queue:
            inv = self.queue.popleft()
            inv.begin()
            inv.fail_platform("Runtime.ExitError", "the local endpoint is shutting down")


class Worker:
    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.port = 0
        self.polled = False
        self.stale = False
        """Its code changed on disk: it takes no further invocation."""
        self.current: Invocation | None = None
        self.waiter: asyncio.Future[Invocation] | None = None
        self.init_error: bytes | None = None
        self.init_log = bytearray()
        self.transport: asyncio.SubprocessTransport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._exited = asyncio.get_running_loop().create_future()
        self._echo_partial = b""
        self._memory_checked = -MEMORY_CHECK_SECONDS
        self._memory_mb: int | None = None

    async def start(self) -> None:
        self.port = await self.pool.host.listen(self)
        spec = self.pool.spec
        loop = asyncio.get_running_loop()
        self.transport, _ = await loop.subprocess_exec(
            lambda: _WorkerProtocol(self),
            sys.executable,
            "-m",
            "awslambdaric",
            spec.handler,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=str(spec.code_dir),
            env=self._env(spec.code_dir),
        )

    def _env(self, code_dir: Path) -> dict[str, str]:
        spec, pool = self.pool.spec, self.pool
        env = {k: v for k, v in os.environ.items() if k not in SECRET_ENV and not k.startswith("AWS_ENDPOINT_URL")}
        pythonpath = os.pathsep.join(p for p in (str(code_dir), env.get("PYTHONPATH", "")) if p)
        env.update(
            {
                "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{self.port}",
                "_HANDLER": spec.handler,
                "LAMBDA_TASK_ROOT": str(code_dir),
                "PYTHONPATH": pythonpath,
                "PYTHONUNBUFFERED": "1",
                "AWS_LAMBDA_FUNCTION_NAME": spec.name,
                "AWS_LAMBDA_FUNCTION_VERSION": pool.version,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
                "AWS_LAMBDA_FUNCTION_TIMEOUT": str(int(spec.timeout)),
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
                "AWS_LAMBDA_LOG_STREAM_NAME": f"local/[{pool.version}]{id(self):x}",
                "AWS_REGION": pool.region,
                "AWS_DEFAULT_REGION": pool.region,
                "AWS_EXECUTION_ENV": f"AWS_Lambda_python{sys.version_info.major}.{sys.version_info.minor}",
            }
        )
        return env

    @property
    def gone(self) -> bool:
        return self._exited.done()

    def dispatch(self, inv: Invocation) -> None:
        """The invocation goes to this worker now: its clock starts."""
        self.current = inv
        inv.begin()
        self._timer = asyncio.get_running_loop().call_later(inv.target.spec.timeout, self._timed_out, inv)

    def finished(self, inv: Invocation) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        inv.max_memory_mb = self._max_memory_mb()
        if self.current is inv:
            self.current = None

    def _timed_out(self, inv: Invocation) -> None:
        if self.current is inv:
            self.current = None
            inv.max_memory_mb = self._max_memory_mb()
            inv.timed_out()
            self.kill()

    def kill(self) -> None:
        if self.transport is not None and self.transport.get_returncode() is None:
            with contextlib.suppress(ProcessLookupError):
                self.transport.kill()

    async def wait_closed(self) -> None:
        if self.transport is None:
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._exited), 5)

    def output(self, data: bytes) -> None:
        if self.current is not None:
            self.current.append_log(data)
        elif not self.polled and len(self.init_log) < MAX_INIT_LOG_BYTES:
            self.init_log += data
        if self.pool.echo is not None:
            lines = (self._echo_partial + data).split(b"\n")
            self._echo_partial = lines.pop()
            for line in lines:
                self.pool.echo(self.pool.spec.name, line + b"\n")

    def exited(self, returncode: int | None) -> None:
        if self._exited.done():
            return
        self._exited.set_result(None)
        if self._timer is not None:
            self._timer.cancel()
        inv, self.current = self.current, None
        if inv is not None:
            inv.fail_platform("Runtime.ExitError", _exit_reason(returncode))
        if self.transport is not None:
            self.transport.close()
        asyncio.get_running_loop().create_task(self.pool.host.unlisten(self))
        self.pool.worker_exited(self, returncode)

    def _max_memory_mb(self) -> int | None:
        now = time.monotonic()
        if now - self._memory_checked < MEMORY_CHECK_SECONDS:
            return self._memory_mb
        self._memory_checked = now
        self._memory_mb = self._read_max_memory_mb()
        return self._memory_mb

    def _read_max_memory_mb(self) -> int | None:
        if self.transport is None:
            return None
        try:
            status = Path(f"/proc/{self.transport.get_pid()}/status").read_text()
        except OSError:
            return None
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
        return None


class _WorkerProtocol(asyncio.SubprocessProtocol):
    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.returncode: int | None = None
        self.process_done = False
        self.pipe_done = False

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        self.worker.output(data)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        self.pipe_done = True
        if self.process_done:
            self.worker.exited(self.returncode)

    def process_exited(self) -> None:
        self.process_done = True
        transport = self.worker.transport
        self.returncode = transport.get_returncode() if transport is not None else None
        if self.pipe_done:
            self.worker.exited(self.returncode)
        else:  # a child of the handler may keep the pipe open: do not wait for it long
            asyncio.get_running_loop().call_later(EXIT_GRACE_SECONDS, self.worker.exited, self.returncode)


def _code_stamp(spec: FunctionSpec) -> int:
    """The handler module's modification time (0 when it cannot be read)."""
    module = os.path.join(str(spec.code_dir), spec.handler.rsplit(".", 1)[0].replace(".", "/"))
    for candidate in (f"{module}.py", os.path.join(module, "__init__.py")):
        with contextlib.suppress(OSError):
            return os.stat(candidate).st_mtime_ns
    return 0


def _exit_reason(returncode: int | None) -> str:
    if returncode is None:
        return "Runtime exited without providing a reason"
    if returncode < 0:
        names = {9: "killed", 6: "aborted", 11: "segmentation fault", 15: "terminated"}
        return f"Runtime exited with error: signal: {names.get(-returncode, str(-returncode))}"
    return f"Runtime exited with error: exit status {returncode}"


def _with_request_id(error: bytes, request_id: str) -> bytes:
    try:
        body = orjson.loads(error)
    except orjson.JSONDecodeError:
        return error
    if isinstance(body, dict):
        body["requestId"] = request_id
        return orjson.dumps(body)
    return error


def free_socket(host: str) -> socket.socket:
    """A listening-ready socket bound to a free loopback port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    return sock
