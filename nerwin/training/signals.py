"""Stopping training on SIGINT/SIGTERM: the first signal asks the loop to stop between two steps."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopFlag:
    """Set by SIGINT/SIGTERM; training checks it between steps."""

    def __init__(self) -> None:
        self.name = ""  # the signal's name once one arrived, e.g. "SIGINT"

    def requested(self) -> bool:
        """True once a stop signal arrived."""
        return bool(self.name)


@contextmanager
def stop_on_signals() -> Iterator[StopFlag]:
    """Turn the first SIGINT/SIGTERM into a stop request (a second SIGINT interrupts at once).

    Outside the main thread no handler can be installed: the flag then never gets set.
    The previous handlers are back in place on exit.
    """
    flag = StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handle(signum: int, _frame: object) -> None:
        flag.name = signal.Signals(signum).name
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = {s: signal.signal(s, handle) for s in STOP_SIGNALS}
    try:
        yield flag
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
