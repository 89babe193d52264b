"""SGD, theta <- theta - lr * grad, with row-sparse updates of embedding tables."""
from __future__ import annotations

from typing import Mapping

import numpy as np

from nerwin.engine import RowSparseGrad, Tensor


class SGD:
    """Plain SGD; each parameter may have its own learning-rate scale (0 freezes it)."""

    def __init__(self, params: Mapping[str, Tensor], lr: float, scales: Mapping[str, float] | None = None):
        self.params = dict(params)
        self.lr = lr
        self.scales = dict(scales or {})
        self._steps: dict[str, np.ndarray] = {}  # one reused buffer per dense parameter

    def step(self) -> None:
        """Apply one update from the current gradients, then clear them.

        The gradients are consumed: a dense gradient array that no other parameter shares may be
        scaled in place (saving a pass over W), so read `.grad` before calling step(), not after.
        """
        shared = _shared_arrays([p.grad for p in self.params.values()])
        for name, p in self.params.items():
            grad, p.grad = p.grad, None
            if grad is None:
                continue
            lr = self.lr * self.scales.get(name, 1.0)
            if isinstance(grad, RowSparseGrad):
                sparse_update(p.data, grad, lr)
            else:
                step = self._scratch(name, p.data, grad, shared)
                np.multiply(grad, np.asarray(lr, p.data.dtype), out=step)
                np.subtract(p.data, step, out=p.data)

    def _scratch(self, name: str, data: np.ndarray, grad: np.ndarray, shared: set[int]) -> np.ndarray:
        """Where lr * grad goes: grad itself when it owns its memory alone, else a reused buffer."""
        if grad.flags.owndata and grad.flags.writeable and grad.dtype == data.dtype \
                and grad.shape == data.shape and id(grad) not in shared:
            return grad
        step = self._steps.get(name)
        if step is None or step.shape != data.shape or step.dtype != data.dtype:
            step = self._steps[name] = np.empty_like(data)
        return step


def _shared_arrays(grads: list) -> set[int]:
    """ids of arrays that are the gradient of more than one parameter (Add passes one array to both)."""
    seen: set[int] = set()
    shared: set[int] = set()
    for grad in grads:
        if grad is not None:
            (shared if id(grad) in seen else seen).add(id(grad))
    return shared


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
