"""SGD, theta <- theta - lr * grad, with row-sparse updates of embedding tables."""

from __future__ import annotations

import sys
from collections.abc import Mapping

import numpy as np

from nerwin.engine import RowSparseGrad, Tensor


class SGD:
    """Plain SGD; each parameter may have its own learning-rate scale (0 freezes it)."""

    def __init__(
        self, params: Mapping[str, Tensor], lr: float, scales: Mapping[str, float] | None = None
    ):
        self.params = dict(params)
        self.lr = lr
        self.scales = dict(scales or {})
        self._steps: dict[str, np.ndarray] = {}  # one reused buffer per dense parameter

    def step(self) -> None:
        """Apply one update from the current gradients, then clear them.

        A dense gradient array that nothing else references (the usual case after backward) is
        scaled in place, sparing a W-sized buffer; any other is copied into a reused buffer first.
        """
        for name, p in self.params.items():
            grad, p.grad = p.grad, None
            if grad is None:
                continue
            lr = self.lr * self.scales.get(name, 1.0)
            if isinstance(grad, RowSparseGrad):
                sparse_update(p.data, grad, lr)
                continue
            step = (
                grad
                if _unreferenced(grad) and grad.dtype == p.data.dtype
                else self._buffer(name, p.data)
            )
            np.multiply(grad, np.asarray(lr, p.data.dtype), out=step)
            np.subtract(p.data, step, out=p.data)

    def _buffer(self, name: str, data: np.ndarray) -> np.ndarray:
        """The reused scratch array for lr * grad of parameter `name`."""
        step = self._steps.get(name)
        if step is None or step.shape != data.shape or step.dtype != data.dtype:
            step = self._steps[name] = np.empty_like(data)
        return step


def _count_of_a_private_array() -> int:
    """What sys.getrefcount says, one call down, of an array held by one local variable only."""
    private = np.empty(1)
    return _reference_count(private)


def _reference_count(array: np.ndarray) -> int:
    """sys.getrefcount of an array passed in (the same call depth as in _unreferenced)."""
    return sys.getrefcount(array)


_PRIVATE_REFS = _count_of_a_private_array() if sys.implementation.name == "cpython" else -1


def _unreferenced(grad: object) -> bool:
    """True when only the caller's local variable holds `grad`, an array owning its memory.

    Another parameter's gradient, a view of it (which holds it as its base), a parameter's data,
    the caller's own variable: each adds a reference, so such arrays are never written in place.
    """
    return (
        isinstance(grad, np.ndarray)
        and grad.base is None
        and grad.flags.writeable
        and sys.getrefcount(grad) <= _PRIVATE_REFS
    )


_COLUMNS: dict[int, np.ndarray] = {}


def sparse_update(table: np.ndarray, grad: RowSparseGrad, lr: float) -> None:
    """table[ids] -= lr * rows, summing repeated ids; touches only those rows (never V x d)."""
    step = grad.rows.reshape(-1) * np.asarray(lr, table.dtype)
    np.subtract.at(table.reshape(-1), flat_indices(grad.ids, table.shape[1]), step)


def flat_indices(ids: np.ndarray, d: int) -> np.ndarray:
    """Element indices of rows `ids` of a C-ordered (V, d) table, row after row, in int64."""
    columns = _COLUMNS.get(d)
    if columns is None:
        columns = _COLUMNS[d] = np.arange(d)
    return (np.multiply(ids[:, None], d, dtype=np.int64) + columns).reshape(-1)  # int32 would wrap
