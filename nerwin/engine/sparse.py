"""RowSparseGrad: the gradient of an embedding table as touched rows only."""

from __future__ import annotations

from typing import Any

import numpy as np


class RowSparseGrad:
    """Gradient of a (V, d) table held as `rows[i]` added to row `ids[i]`; ids may repeat."""

    __slots__ = ("ids", "rows", "shape")
    __array_ufunc__ = None  # make `ndarray + RowSparseGrad` call __radd__ instead of broadcasting

    def __init__(self, ids: np.ndarray, rows: np.ndarray, shape: tuple[int, ...]):
        self.ids = np.asarray(ids).reshape(-1)
        self.rows = rows.reshape(len(self.ids), *shape[1:])
        self.shape = tuple(shape)

    @property
    def dtype(self) -> np.dtype:
        """dtype of the rows."""
        return self.rows.dtype

    def coalesce(self) -> RowSparseGrad:
        """The same gradient with unique, sorted ids and their rows summed."""
        unique, inverse = np.unique(self.ids, return_inverse=True)
        summed = np.zeros((len(unique), *self.shape[1:]), dtype=self.rows.dtype)
        np.add.at(summed, inverse, self.rows)
        return RowSparseGrad(unique, summed, self.shape)

    def to_dense(self) -> np.ndarray:
        """The full (V, d) array; for checks only, never in a training step."""
        dense = np.zeros(self.shape, dtype=self.rows.dtype)
        np.add.at(dense, self.ids, self.rows)
        return dense

    def __add__(self, other: Any) -> Any:
        if isinstance(other, RowSparseGrad):
            ids = np.concatenate([self.ids, other.ids])
            return RowSparseGrad(ids, np.concatenate([self.rows, other.rows]), self.shape)
        return self.to_dense() + other

    __radd__ = __add__

    def __repr__(self) -> str:
        return f"RowSparseGrad(shape={self.shape}, touched={len(np.unique(self.ids))})"
