"""SGD, theta <- theta - lr * grad, with row-sparse updates of embedding tables."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from nerwin.engine import RowSparseGrad, Tensor
from nerwin.model.refcount import unreferenced


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
        """theta <- theta - lr * grad for each parameter with a gradient; gradients are cleared.

        lr * grad overwrites the gradient when nothing else holds it (the usual case after
        backward), sparing a pass over a W-sized buffer; otherwise it goes into a reused buffer.
        """
        for name, p in self.params.items():
            grad, p.grad = p.grad, None
            if grad is None:
                continue
            lr = self.lr * self.scales.get(name, 1.0)
            if isinstance(grad, RowSparseGrad):
                sparse_update(p.data, grad, lr)
                continue
            private = unreferenced(grad) and grad.dtype == p.data.dtype  # ours to overwrite
            step = np.multiply(
                grad,
                np.asarray(lr, p.data.dtype),
                out=grad if private else self._buffer(name, p.data),
            )
            np.subtract(p.data, step, out=p.data)

    def _buffer(self, name: str, data: np.ndarray) -> np.ndarray:
        """The reused scratch array for lr * grad of parameter `name`."""
        step = self._steps.get(name)
        if step is None or step.shape != data.shape or step.dtype != data.dtype:
            step = self._steps[name] = np.empty_like(data)
        return step


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
