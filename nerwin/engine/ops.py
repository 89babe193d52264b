"""The engine's ops: one Function per operation, forward and local gradient side by side."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from nerwin.engine.sparse import RowSparseGrad
from nerwin.engine.tensor import Context, Function, Tensor

Array = np.ndarray


def unbroadcast(grad: Array, shape: tuple[int, ...]) -> Array:
    """Sum `grad` over the axes numpy broadcasting added or stretched, back to `shape`."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad.reshape(shape)


class Add(Function):
    """a + b with broadcasting."""

    @staticmethod
    def forward(ctx: Context, a: Array, b: Array) -> Array:
        ctx.shapes = (a.shape, b.shape)
        return a + b

    @staticmethod
    def backward(ctx: Context, grad_out: Array) -> tuple[Array, Array]:
        return unbroadcast(grad_out, ctx.shapes[0]), unbroadcast(grad_out, ctx.shapes[1])


class Sub(Function):
    """a - b with broadcasting."""

    @staticmethod
    def forward(ctx: Context, a: Array, b: Array) -> Array:
        ctx.shapes = (a.shape, b.shape)
        return a - b

    @staticmethod
    def backward(ctx: Context, grad_out: Array) -> tuple[Array, Array]:
        return unbroadcast(grad_out, ctx.shapes[0]), unbroadcast(-grad_out, ctx.shapes[1])


class Neg(Function):
    """-a."""

    @staticmethod
    def forward(ctx: Context, a: Array) -> Array:
        return -a

    @staticmethod
    def backward(ctx: Context, grad_out: Array) -> tuple[Array]:
        return (-grad_out,)


class Mul(Function):
    """a * b elementwise, with broadcasting."""

    @staticmethod
    def forward(ctx: Context, a: Array, b: Array) -> Array:
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx: Context, grad_out: Array) -> tuple[Array, Array]:
        a, b = ctx.saved
        return unbroadcast(grad_out * b, a.shape), unbroadcast(grad_out * a, b.shape)


class Div(Function):
    """a / b elementwise, with broadcasting."""

    @staticmethod
    def forward(ctx: Context, a: Array, b: Array) -> Array:
        ctx.save_for_backward(a, b)
        return a / b

    @staticmethod
    def backward(ctx: Context, grad_out: Array) -> tuple[Array, Array]:
        a, b = ctx.saved
        grad_a = grad_out / b
        return unbroadcast(grad_a, a.shape), unbroadcast(-grad_a * a / b, b.shape)


class MatMul(Function):
    """a @ b for 2-D a (n, k) and 2-D b (k, m)."""

    @staticmethod
    def forward(ctx: Context, a: Array, b: Array) -> Array:
        ctx.save_for_backward(a, b)
        return a @ b

    @staticmethod
    def backward(ctx: Context, grad_out: Array) -> tuple[Array, Array]:
        a, b = ctx.saved
        return _times_transpose(grad_out, b), _outer_or_matmul(a, grad_out)


class Affine(Function):
    """x @ W + b in one op: x (n, k), W (k, m), b (m,) -> (n, m)."""

    @staticmethod
    def forward(ctx: Context, x: Array, w: Array, b: Array) -> Array:
        ctx.save_for_backward(x, w)
        out = x @ w
        out += b
        return out

    @staticmethod
    def backward(ctx: Context, grad_out: Array) -> tuple[Array | None, Array, Array]:
        x, w = ctx.saved
        grad_x = _times_transpose(grad_out, w) if ctx.needs_input_grad[0] else None
        return grad_x, _outer_or_matmul(x, grad_out), np.add.reduce(grad_out, axis=0)


def _times_transpose(grad_out: Array, w: Array) -> Array:
    """grad_out @ w.T; an outer product when w has one column (BLAS is slow with k = 1).

    Computed as (w @ grad_out.T).T: the same products bit for bit, but BLAS's fast path for a
    C-ordered left matrix (82 -> 55 us at 32 x 300 by 300 x 275 here).
    """
    if w.shape[1] == 1:
        return np.multiply.outer(grad_out[:, 0], w[:, 0])
    return (w @ grad_out.T).T


def _outer_or_matmul(x: Array, grad_out: Array) -> Array:
    """x.T @ grad_out; an outer product for one row (numpy's BLAS path is slow there)."""
    if x.shape[0] == 1:
        return np.multiply.outer(x[0], grad_out[0])
    return x.T @ grad_out


class Sum(Function):
    """Sum over an axis (or all)."""

    @staticmethod
    def forward(ctx: Context, a: Array, axis: Any = None, keepdims: bool = False) -> Array:
        ctx.shape, ctx.axis, ctx.keepdims = a.shape, axis, keepdims
        return np.asarray(a.sum(axis=axis, keepdims=keepdims))

    @staticmethod
    def backward(ctx: Context, grad_out: Array) -> tuple[Array]:
        return (_expand_reduced(grad_out, ctx.shape, ctx.axis, ctx.keepdims),)


class Mean(Function):
    """Mean over an axis (or all)."""

    @staticmethod
    def forward(ctx: Context, a: Array, axis: Any = None, keepdims: bool = False) -> Array:
        ctx.shape, ctx.axis, ctx.keepdims = a.shape, axis, keepdims
        ctx.count = a.size // max(np.asarray(a.mean(axis=axis, keepdims=True)).size, 1)
        return np.asarray(a.mean(axis=axis, keepdims=keepdims))

    @staticmethod
    def backward(ctx: Context, grad_out: Array) -> tuple[Array]:
        grad = _expand_reduced(grad_out, ctx.shape, ctx.axis, ctx.keepdims)
        return (grad / np.asarray(ctx.count, dtype=grad.dtype),)


def _expand_reduced(grad_out: Array, shape: tuple[int, ...], axis: Any, keepdims: bool) -> Array:
    """Broadcast the gradient of a reduction back to the input's shape."""
    if axis is not None and not keepdims:
        grad_out = np.expand_dims(grad_out, axis)
    return np.broadcast_to(grad_out, shape).copy()


class Max(Function):
    """Maximum over an axis (or all); tied maxima split the gradient equally."""

    @staticmethod
    def forward(ctx: Context, a: Array, axis: int | None = None, keepdims: bool = False) -> Array:
        top = a.max(axis=axis, keepdims=True)
        ctx.save_for_backward((a == top).astype(a.dtype))
        ctx.axis, ctx.keepdims, ctx.shape = axis, keepdims, a.shape
        return np.asarray(top if keepdims else top.reshape(np.max(a, axis=axis).shape))

    @staticmethod
    def backward(ctx: Context, grad_out: Array) -> tuple[Array]:
        (is_top,) = ctx.saved
        share = is_top / is_top.sum(axis=ctx.axis, keepdims=True)
        return (share * _expand_reduced(grad_out, ctx.shape, ctx.axis, ctx.keepdims),)


class Maximum(Function):
    """Elementwise max(a, b); where a == b each gets half the gradient."""

    @staticmethod
    def forward(ctx: Context, a: Array, b: Array) -> Array:
        ctx.save_for_backward(a, b)
        return np.maximum(a, b)

    @staticmethod
    def backward(ctx: Context, grad_out: Array) -> tuple[Array, Array]:
        a, b = ctx.saved
        to_a = (a > b) + 0.5 * (a == b)
        grad_a = grad_out * to_a.astype(grad_out.dtype)
        return unbroadcast(grad_a, a.shape), unbroadcast(grad_out - grad_a, b.shape)


class Reshape(Function):
    """The same values in another shape."""

    @staticmethod
    def forward(ctx: Context, a: Array, shape: tuple[int, ...] = ()) -> Array:
        ctx.shape = a.shape
        return a.reshape(shape)

    @staticmethod
    def backward(ctx: Context, grad_out: Array) -> tuple[Array]:
        return (grad_out.reshape(ctx.shape),)


class Concat(Function):
    """Concatenate along an axis."""

    @staticmethod
    def forward(ctx: Context, *arrays: Array, axis: int = 0) -> Array:
        ctx.axis = axis
        ctx.splits = np.cumsum([a.shape[axis] for a in arrays])[:-1]
        return np.concatenate(arrays, axis=axis)

    @staticmethod
    def backward(ctx: Context, grad_out: Array) -> tuple[Array, ...]:
        bounds = [0, *ctx.splits, grad_out.shape[ctx.axis]]
        index = [slice(None)] * grad_out.ndim
        parts = []
        for start, stop in itertools.pairwise(bounds):
            index[ctx.axis] = slice(start, stop)
            parts.append(grad_out[tuple(index)])
        return tuple(parts)


class Gather(Function):
    """Rows of a table: table (V, d), ids (n, ...) -> (n, ..., d), or (n, -1) with flatten; row-sparse gradient."""

    @staticmethod
    def forward(ctx: Context, table: Array, ids: Array, flatten: bool = False) -> Array:
        ctx.ids, ctx.table_shape = ids, table.shape
        rows = table[ids]
        return rows.reshape(len(ids), -1) if flatten else rows

    @staticmethod
    def backward(ctx: Context, grad_out: Array) -> tuple[RowSparseGrad, None]:
        return RowSparseGrad(ctx.ids, grad_out, ctx.table_shape), None


class GatherConcat(Function):
    """Rows of k tables gathered by k id arrays (n, w) and joined: (n, sum of w * d_i); row-sparse grads."""

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


class Dropout(Function):
    """Inverted dropout with a given keep mask: x * mask / keep; the gradient passes the same units."""

    @staticmethod
    def forward(ctx: Context, x: Array, mask: Array, keep: float) -> Array:
        scaled = mask * np.asarray(1.0 / keep, dtype=x.dtype)
        ctx.scaled = scaled
        return x * scaled

    @staticmethod
    def backward(ctx: Context, grad_out: Array) -> tuple[Array]:
        return (grad_out * ctx.scaled,)


class Exp(Function):
    """e**a elementwise."""

    @staticmethod
    def forward(ctx: Context, a: Array) -> Array:
        out = np.exp(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: Context, grad_out: Array) -> tuple[Array]:
        (out,) = ctx.saved
        return (grad_out * out,)


class Log(Function):
    """Natural log elementwise (a > 0)."""

    @staticmethod
    def forward(ctx: Context, a: Array) -> Array:
        ctx.save_for_backward(a)
        return np.log(a)

    @staticmethod
    def backward(ctx: Context, grad_out: Array) -> tuple[Array]:
        (a,) = ctx.saved
        return (grad_out / a,)


EXP_CUTOFF = 80.0  # e**-80 is still a normal float32; beyond it e**-|z| is taken as exactly 0


def exp_neg_abs(z: Array) -> Array:
    """e**-|z| without overflow or underflow: exactly 0 where |z| > EXP_CUTOFF."""
    magnitude = np.abs(z)
    if magnitude.size and magnitude.max() <= EXP_CUTOFF:  # the usual case: one exp, nothing to mask
        return np.exp(-magnitude)
    e = np.exp(-np.minimum(magnitude, EXP_CUTOFF))
    e[magnitude > EXP_CUTOFF] = 0.0
    return e


def stable_sigmoid(z: Array, e: Array | None = None) -> Array:
    """1 / (1 + e**-z) for any finite z, without overflow or underflow (e = exp_neg_abs(z) if known)."""
    e = exp_neg_abs(z) if e is None else e
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(z.dtype, copy=False)


class SigmoidBCE(Function):
    """Mean of weight * cross-entropy(sigmoid(z), y) from logits z; finite for any z."""

    @staticmethod
    def forward(ctx: Context, z: Array, y: Array, weight: Array | None = None) -> Array:
        e = exp_neg_abs(z)
        probs = (np.where(z >= 0, 1.0, e) / (1.0 + e)).astype(z.dtype, copy=False)
        ctx.save_for_backward(probs, y) if weight is None else ctx.save_for_backward(
            probs, y, weight
        )
        losses = np.maximum(z, 0.0) + np.log1p(e) - y * z
        if weight is not None:
            losses = losses * weight
        return np.asarray(np.add.reduce(losses, axis=None) / losses.size, dtype=z.dtype)  # = mean()

    @staticmethod
    def backward(ctx: Context, grad_out: Array) -> tuple[Array, None, None]:
        probs, y, *weight = ctx.saved
        grad = (probs - y) * (grad_out / probs.size)
        if weight:
            grad = grad * weight[0]
        return grad.astype(probs.dtype, copy=False), None, None


def gather(table: Tensor, ids: Array, flatten: bool = False) -> Tensor:
    """Rows `ids` of `table`; with flatten, each id row's vectors joined into one row."""
    return Gather.apply(table, Tensor(np.asarray(ids)), flatten=flatten)


def gather_concat(tables: Sequence[Tensor], ids: Sequence[Array]) -> Tensor:
    """Each table's rows for its ids (n, w), flattened per row and joined in one op."""
    return GatherConcat.apply(*tables, *[Tensor(np.asarray(i)) for i in ids])


def dropout(x: Tensor, rate: float, rng: np.random.Generator) -> Tensor:
    """Zero each entry of `x` with chance `rate` (in steps of 1/256) and scale the rest up to match."""
    cut = max(1, round((1.0 - rate) * 256))  # one random byte per entry: 3x faster than float draws
    if cut >= 256:
        return x
    mask = np.frombuffer(rng.bytes(x.data.size), dtype=np.uint8).reshape(x.shape) < cut
    return Dropout.apply(x, mask=mask, keep=cut / 256)


def concat(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """Join tensors along `axis`."""
    return Concat.apply(*tensors, axis=axis)


def affine(x: Tensor, w: Tensor, b: Tensor) -> Tensor:
    """x @ w + b."""
    return Affine.apply(x, w, b)


def maximum(a: Tensor, b: Tensor) -> Tensor:
    """Elementwise maximum of two tensors."""
    return Maximum.apply(a, b)


def sigmoid_bce(z: Tensor, y: Array, weight: Array | None = None) -> Tensor:
    """Mean binary cross-entropy of logits `z` against 0/1 targets `y`."""
    inputs = (z, Tensor(np.asarray(y, dtype=z.dtype)))
    if weight is not None:
        inputs += (Tensor(np.asarray(weight, dtype=z.dtype)),)
    return SigmoidBCE.apply(*inputs)
