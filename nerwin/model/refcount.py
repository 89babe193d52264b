"""Whether an array is held by its caller's one local variable only (CPython reference counts)."""

from __future__ import annotations

import sys

import numpy as np


def _count_of_a_private_array() -> int:
    """What sys.getrefcount says, one call down, of an array held by one local variable only."""
    private = np.empty(1)
    return _reference_count(private)


def _reference_count(array: np.ndarray) -> int:
    """sys.getrefcount of an array passed in (the same call depth as in unreferenced)."""
    return sys.getrefcount(array)


_PRIVATE_REFS = _count_of_a_private_array() if sys.implementation.name == "cpython" else -1


def unreferenced(array: object) -> bool:
    """True when only the caller's local variable holds `array`, an ndarray owning its memory.

    Call it with that variable directly (no helper in between). Anything else that holds the
    array (another parameter's gradient, a view of it, a parameter's data, a second variable)
    adds a reference, so such arrays are never reported free to overwrite. Always False outside
    CPython.
    """
    return (
        isinstance(array, np.ndarray)
        and array.base is None
        and array.flags.writeable
        and sys.getrefcount(array) <= _PRIVATE_REFS
    )
