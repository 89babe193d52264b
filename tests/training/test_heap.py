"""nerwin.training.heap: glibc keeps freed heap memory for the next step's arrays."""

from __future__ import annotations

import sys

import pytest

from nerwin.training import heap


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's (Linux)")
def test_heap_keep_freed_memory_applies_on_linux() -> None:
    assert heap.keep_freed_memory() is True


def test_heap_keep_freed_memory_is_a_no_op_elsewhere(monkeypatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    assert heap.keep_freed_memory() is False


def test_heap_keep_freed_memory_without_mallopt_returns_false(monkeypatch) -> None:
    monkeypatch.setattr(heap.ctypes, "CDLL", lambda name: object())  # a libc without mallopt
    assert heap.keep_freed_memory() is False
