"""Embedding lookups: rows of tables picked by ids; a table's gradient stays row-sparse."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nerwin.engine.sparse import RowSparseGrad
from nerwin.engine.tensor import Context, Function, Tensor

Array = np.ndarray


class Gather(Function):
    """Rows of a table (V, d) by ids (n, ...) -> (n, ..., d), or (n, -1) with flatten.

    The table's gradient is row-sparse: the ids and their gradient rows.
    """

    @staticmethod
    def forward(ctx: Context, table: Array, ids: Array, flatten: bool = False) -> Array:
        ctx.ids, ctx.table_shape = ids, table.shape
        rows = table[ids]
        return rows.reshape(len(ids), -1) if flatten else rows

    @staticmethod
    def backward(ctx: Context, grad_out: Array) -> tuple[RowSparseGrad, None]:
        return RowSparseGrad(ctx.ids, grad_out, ctx.table_shape), None


class GatherConcat(Function):
    """Rows of k tables gathered by k id arrays (n, w), joined: (n, sum of w * d_i).

    Each table's gradient is row-sparse, as Gather's.
    """

    @staticmethod
    def forward(ctx: Context, *arrays: Array) -> Array:
        k = len(arrays) // 2
        tables, ids = arrays[:k], arrays[k:]
        n = len(ids[0])
        widths = [i.shape[1] * t.shape[1] for t, i in zip(tables, ids)]
        out = np.empty((n, sum(widths)), dtype=tables[0].dtype)
        start = 0
        for table, index, width in zip(tables, ids, widths):  # gather straight into x, no copies
            table.take(
                index,
                axis=0,
                out=out[:, start : start + width].reshape(index.shape + table.shape[1:]),
            )
            start += width
        ctx.ids, ctx.shapes, ctx.widths = ids, [t.shape for t in tables], widths
        return out

    @staticmethod
    def backward(ctx: Context, grad_out: Array) -> tuple[RowSparseGrad | None, ...]:
        grads, start = [], 0
        for index, shape, width in zip(ctx.ids, ctx.shapes, ctx.widths):
            grads.append(RowSparseGrad(index, grad_out[:, start : start + width], shape))
            start += width
        return (*grads, *[None] * len(ctx.ids))


def gather(table: Tensor, ids: Array, flatten: bool = False) -> Tensor:
    """Rows `ids` of `table`; with flatten, each id row's vectors joined into one row."""
    return Gather.apply(table, Tensor(np.asarray(ids)), flatten=flatten)


def gather_concat(tables: Sequence[Tensor], ids: Sequence[Array]) -> Tensor:
    """Each table's rows for its ids (n, w), flattened per row and joined in one op."""
    return GatherConcat.apply(*tables, *[Tensor(np.asarray(i)) for i in ids])
