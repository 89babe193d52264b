"""BLAS threads: matrix products run on a set number of threads for the duration of a call."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any, TypeVar

THREADS_VARIABLE = "NERWIN_THREADS"  # BLAS threads for nerwin's calls (default 1)
_local = threading.local()  # per thread: already inside a block?
_lock = threading.Lock()  # guards the process-wide limit below
_inside = 0  # threads inside a block
_limit: Any = None  # the threadpoolctl limit held while _inside > 0
_controller: Any = None
F = TypeVar("F", bound=Callable[..., Any])


def thread_count() -> int:
    """The BLAS threads nerwin's calls use: $NERWIN_THREADS, else 1 (fastest for these sizes)."""
    raw = os.environ.get(THREADS_VARIABLE, "").strip()
    return int(raw) if raw.isdigit() and int(raw) > 0 else 1


def _threadpools() -> Any:
    """The process's BLAS/OpenMP pools, found once (numpy is imported by then)."""
    global _controller
    if _controller is None:
        import numpy  # noqa: F401  (its BLAS must be loaded before the pools are listed)
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return _controller


@contextmanager
def blas_threads(count: int | None = None) -> Iterator[None]:
    """Limit BLAS to `count` threads (default thread_count()) inside the block, then restore.

    The limit is process-wide, so it is held while any thread is inside a block: the first
    thread in sets it, the last one out restores the pools as they were.
    """
    global _limit, _inside
    if getattr(_local, "depth", 0):  # this thread is already inside a block
        yield
        return
    _local.depth = 1
    with _lock:
        if _inside == 0:
            _limit = _threadpools().limit(limits=count or thread_count(), user_api="blas")
        _inside += 1
    try:
        yield
    finally:
        _local.depth = 0
        with _lock:
            _inside -= 1
            if _inside == 0:
                _limit.restore_original_limits()
                _limit = None


def limited(function: F) -> F:
    """Run `function` under blas_threads(): the library's entry points use it."""

    @wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        with blas_threads():
            return function(*args, **kwargs)

    return call  # type: ignore[return-value]


def limited_iterator(function: F) -> F:
    """Like limited(), for a generator: the limit holds while each item is computed."""

    @wraps(function)
    def call(*args: Any, **kwargs: Any) -> Iterator[Any]:
        items = function(*args, **kwargs)
        while True:
            with blas_threads():
                try:
                    item = next(items)
                except StopIteration:
                    return
            yield item

    return call  # type: ignore[return-value]
