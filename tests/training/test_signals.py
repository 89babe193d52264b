"""signals: the first SIGINT/SIGTERM becomes a stop request; handlers are restored afterwards."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from nerwin.training.signals import stop_on_signals


def test_signals_first_signal_sets_the_flag_and_handlers_come_back() -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with stop_on_signals() as stop:
        assert not stop.requested()
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested() and stop.name == "SIGTERM"
    assert {s: signal.getsignal(s) for s in before} == before


def test_signals_a_second_sigint_interrupts_at_once() -> None:
    after_first = []
    with pytest.raises(KeyboardInterrupt), stop_on_signals() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        after_first.append(stop.requested())  # the first one only asked to stop
        assert stop.name == "SIGINT"
        os.kill(os.getpid(), signal.SIGINT)
    assert after_first == [True]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_signals_outside_the_main_thread_install_nothing() -> None:
    before = signal.getsignal(signal.SIGTERM)
    seen = []

    def train() -> None:
        with stop_on_signals() as stop:
            seen.append((stop.requested(), signal.getsignal(signal.SIGTERM)))

    thread = threading.Thread(target=train)
    thread.start()
    thread.join()
    assert seen == [(False, before)]
