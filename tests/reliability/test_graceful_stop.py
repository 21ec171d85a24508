"""SIGTERM with a slow function: every attempt in flight finishes and is recorded, none runs twice.

eventrelay runs as ``serve --config`` subprocess delivering to an Invoke endpoint of this test
(``invoke_double.SlowFunction``: 200-500 ms per invocation, invocations counted per messageId),
so what a stop does to invocations in flight is counted on the function's side, not eventrelay's.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.reliability.conftest import Server, wait_until
from tests.reliability.direct import send, write_config
from tests.reliability.invoke_double import SlowFunction, slow_function
from tests.support.process import free_port
from tests.support.serve import serve_env

ROUNDS = 3
EVENTS_PER_ROUND = 400
IN_FLIGHT_AT_STOP = 20  # invocations the function is running when SIGTERM is sent, at least
RESEND_INTERVAL = 0.05  # seconds between SIGTERMs: an operator or supervisor repeating the signal
STOP_TIMEOUT = 30.0  # seconds a stop may take: attempts finish within their 5 s timeout


def _stop_mid_delivery(server: Server, function: SlowFunction, *, repeat: bool) -> None:
    assert wait_until(lambda: function.in_flight() >= IN_FLIGHT_AT_STOP, timeout=30, interval=0.01), (
        "delivery never got going"
    )
    assert server.proc is not None
    proc, server.proc = server.proc, None
    deadline = time.monotonic() + STOP_TIMEOUT
    proc.send_signal(signal.SIGTERM)
    while repeat and proc.poll() is None and time.monotonic() < deadline:  # an impatient supervisor
        time.sleep(RESEND_INTERVAL)
        proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=STOP_TIMEOUT) == 0


@pytest.mark.slow
@pytest.mark.parametrize("repeat", [False, True], ids=["once", "repeated"])
def test_sigterm_mid_delivery_with_a_slow_function_invokes_nothing_twice(tmp_path: Path, repeat: bool) -> None:
    """SIGTERM while ~64 invocations of 200-500 ms run, restart, three rounds: every accepted
    event is invoked exactly once and no invocation is cut off. ``repeated``: SIGTERM again every
    50 ms until the process exits (a second signal used to kill it mid-drain)."""
    with slow_function((0.2, 0.5)) as function:
        port = free_port()
        server = Server(tmp_path, write_config(tmp_path, function.url), port, tmp_path / "unused", serve_env("info"))
        accepted: set[str] = set()
        try:
            for _ in range(ROUNDS):
                server.start()
                accepted |= send(server.url, EVENTS_PER_ROUND)
                _stop_mid_delivery(server, function, repeat=repeat)
            server.start()
            assert wait_until(lambda: accepted <= function.finished(), timeout=60), (
                f"{len(accepted - function.finished())} accepted events never reached the function"
            )
        finally:
            if server.proc is not None:
                server.kill()
        cut = sum(function.cut.values())
        assert function.duplicates() == {}, f"{len(function.duplicates())} events invoked twice ({cut} cut off)"
        assert cut == 0, f"{cut} invocations had their connection closed before the answer"
