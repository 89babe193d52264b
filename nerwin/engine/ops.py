"""The engine's ops: one Function per operation, forward and local gradient side by side.

The end of this module attaches the Tensor operators (+ - * / @, sum, mean, max, reshape, exp,
log) to Tensor; `nerwin.engine` imports it, so they exist whenever the engine is imported.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

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
        out = np.asarray(a.mean(axis=axis, keepdims=keepdims))
        ctx.count = a.size // max(out.size, 1)  # entries averaged into each output
        return out

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
        return np.asarray(top if keepdims else np.squeeze(top, axis=axis))

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


class Dropout(Function):
    """Inverted dropout, x * mask / keep for a given mask; the gradient flows the same way."""

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


def dropout(x: Tensor, rate: float, rng: np.random.Generator) -> Tensor:
    """Zero each entry of `x` with chance `rate` (in steps of 1/256), scaling the rest to match."""
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


# --- Tensor operators: thin calls of the ops above, attached to Tensor (tensor.py knows no op) ---


def _operand(like: Tensor, other: Any) -> Tensor:
    """`other` as a Tensor; a number or an array takes the dtype of `like`."""
    return other if isinstance(other, Tensor) else Tensor(np.asarray(other, dtype=like.dtype))


def _documented(method: Callable[..., Tensor], op: type[Function]) -> Callable[..., Tensor]:
    """`method`, with the docstring of the op it calls."""
    method.__doc__ = op.__doc__
    return method


def _binary(op: type[Function], reflected: bool = False) -> Callable[..., Tensor]:
    """The method `self op other`, or `other op self` when reflected (`2.0 - t`)."""
    if reflected:
        return _documented(lambda self, other: op.apply(_operand(self, other), self), op)
    return _documented(lambda self, other: op.apply(self, _operand(self, other)), op)


def _unary(op: type[Function]) -> Callable[..., Tensor]:
    """The method `op(self)`: -t, t.exp(), t.log()."""
    return _documented(lambda self: op.apply(self), op)


def _reduction(op: type[Function]) -> Callable[..., Tensor]:
    """The method `self.op(axis=None, keepdims=False)`: t.sum(), t.mean(), t.max()."""
    return _documented(
        lambda self, axis=None, keepdims=False: op.apply(self, axis=axis, keepdims=keepdims), op
    )


def _reshape(self: Tensor, *shape: Any) -> Tensor:
    """The same values in a new shape: t.reshape(2, 6) or t.reshape((2, 6))."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return Reshape.apply(self, shape=shape)


TENSOR_METHODS: dict[str, Callable[..., Tensor]] = {
    "__add__": _binary(Add),
    "__radd__": _binary(Add, reflected=True),
    "__sub__": _binary(Sub),
    "__rsub__": _binary(Sub, reflected=True),
    "__mul__": _binary(Mul),
    "__rmul__": _binary(Mul, reflected=True),
    "__truediv__": _binary(Div),
    "__rtruediv__": _binary(Div, reflected=True),
    "__matmul__": _binary(MatMul),
    "__neg__": _unary(Neg),
    "sum": _reduction(Sum),
    "mean": _reduction(Mean),
    "max": _reduction(Max),
    "reshape": _reshape,
    "exp": _unary(Exp),
    "log": _unary(Log),
}


def register_tensor_methods() -> None:
    """Attach TENSOR_METHODS to Tensor, as tinygrad's `register('mul', Mul)` does."""
    for name, method in TENSOR_METHODS.items():
        method.__name__, method.__qualname__ = name, f"Tensor.{name}"
        setattr(Tensor, name, method)


register_tensor_methods()
