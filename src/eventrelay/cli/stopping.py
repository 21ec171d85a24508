"""SIGTERM and SIGINT for the whole life of ``serve``: the first one starts a graceful stop, the
ones after it cannot cut that stop short.

A graceful stop stops claiming, lets every attempt in flight finish (up to its timeout), records
it and settles it in the queue, then exits. An attempt cut off half-way (the function ran, its
answer was never read) is attempted again after the restart: a duplicate invocation. uvicorn
handles the signals only while its server runs and restores the default handlers when it
returns, so a second SIGTERM during the drain (an impatient supervisor, Ctrl-C pressed twice)
used to kill the process with attempts in flight. Here the handlers are installed before
delivery starts and removed after the runtime stopped: a repeated signal is logged, with what
to do to stop at once (SIGKILL, which returns the attempts in flight to the queue).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

log = logging.getLogger("eventrelay")


class StopSignals:
    """Turns the stop signals into ``on_stop`` callbacks, once."""

    def __init__(self) -> None:
        self.received: signal.Signals | None = None  # the first stop signal, once one came
        self._callbacks: list[Callable[[], None]] = []
        self._repeated = False
        self._loop: asyncio.AbstractEventLoop | None = None

    def install(self) -> None:
        """Handle the stop signals on the running loop from now on."""
        self._loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            self._loop.add_signal_handler(sig, self._received, sig)

    def remove(self) -> None:
        """After the stop completed: the process only has its exit left, which a late stop
        signal need not turn into a kill (exit status 143 instead of 0), so they are ignored."""
        if self._loop is None:
            return
        for sig in STOP_SIGNALS:
            self._loop.remove_signal_handler(sig)
            signal.signal(sig, signal.SIG_IGN)
        self._loop = None

    def on_stop(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when the first stop signal arrives (at once if one already did)."""
        self._callbacks.append(callback)
        if self.received is not None:
            callback()

    def _received(self, sig: signal.Signals) -> None:
        if self.received is None:
            self.received = sig
            log.info(
                "%s: stopping: no new work is claimed; attempts in flight finish (up to their timeout) "
                "and are recorded",
                sig.name,
            )
            for callback in self._callbacks:
                callback()
            return
        if not self._repeated:
            self._repeated = True
            log.warning(
                "%s again: still stopping gracefully (attempts in flight finish within their timeout); "
                "SIGKILL stops at once, and those attempts are then made again after the restart",
                sig.name,
            )
