"""Tensor, Function and Context: the reverse-mode core of the engine."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import count
from typing import Any

import numpy as np

from nerwin.engine.sparse import RowSparseGrad

Array = np.ndarray


class _GradMode(threading.local):
    """Whether ops record a graph, per thread (no_grad in one thread leaves the others alone)."""

    enabled = True


_GRAD = _GradMode()
_RECORDED = count()  # numbers recorded op applications in creation order: a topological order


class GradientShapeError(AssertionError):
    """An op returned a gradient whose shape differs from its input's (an engine bug)."""


@contextmanager
def no_grad() -> Iterator[None]:
    """Within this block ops record no graph and save nothing for backward."""
    previous, _GRAD.enabled = _GRAD.enabled, False
    try:
        yield
    finally:
        _GRAD.enabled = previous


def is_grad_enabled() -> bool:
    """True unless inside `no_grad()`."""
    return _GRAD.enabled


class Context:
    """What one op application remembers for its backward."""

    def __init__(self, needs_input_grad: tuple[bool, ...], recording: bool):
        self.needs_input_grad = needs_input_grad
        self.recording = recording
        self.saved: tuple[Array, ...] = ()
        self.parents: tuple[Tensor, ...] = ()
        self.op: type[Function] | None = None
        self.seq = -1  # this application's place in creation order (set when recorded)

    def save_for_backward(self, *arrays: Array) -> None:
        """Keep arrays for backward; a no-op when no graph is recorded."""
        if self.recording:
            self.saved = arrays


class Function:
    """An op: `forward(ctx, *arrays, **attrs) -> array`, `backward(ctx, grad_out) -> grads`."""

    @staticmethod
    def forward(ctx: Context, *arrays: Array, **attrs: Any) -> Array:
        raise NotImplementedError

    @staticmethod
    def backward(ctx: Context, grad_out: Array) -> tuple[Array | RowSparseGrad | None, ...]:
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs: Any, **attrs: Any) -> Tensor:
        """Run forward on the inputs' arrays and link the result into the graph."""
        tensors = tuple([x if isinstance(x, Tensor) else Tensor(x) for x in inputs])
        needs = tuple([t.requires_grad for t in tensors])
        recording = _GRAD.enabled and True in needs
        ctx = Context(needs, recording)
        out = Tensor(cls.forward(ctx, *[t.data for t in tensors], **attrs), recording)
        if recording:
            ctx.parents, ctx.op, ctx.seq = tensors, cls, next(_RECORDED)
            out._ctx = ctx
        return out


class Tensor:
    """A numpy array with an optional gradient and the op that produced it.

    The operators (+ - * / @, unary -, sum, mean, max, reshape, exp, log) are attached by
    `nerwin.engine.ops` when the package is imported; this module knows no op.
    """

    __slots__ = ("_ctx", "data", "grad", "name", "requires_grad")
    __array_priority__ = 1000  # make `ndarray * Tensor` defer to Tensor.__rmul__

    def __init__(self, data: Any, requires_grad: bool = False, name: str | None = None):
        self.data = data if isinstance(data, np.ndarray) else np.asarray(data)
        self.grad: Array | RowSparseGrad | None = None
        self.requires_grad = requires_grad
        self._ctx: Context | None = None
        self.name = name

    shape = property(lambda self: self.data.shape, doc="Shape of the data.")
    dtype = property(lambda self: self.data.dtype, doc="dtype of the data.")
    ndim = property(lambda self: self.data.ndim, doc="Number of dimensions.")

    def __repr__(self) -> str:
        op = f", op={self._ctx.op.__name__}" if self._ctx and self._ctx.op else ""
        return f"Tensor(shape={self.shape}, dtype={self.dtype}{op})"

    def item(self) -> float:
        """The value of a one-element tensor as a Python float."""
        return float(self.data.reshape(-1)[0])

    def zero_grad(self) -> None:
        """Forget the accumulated gradient."""
        self.grad = None

    def backward(self, grad: Array | None = None) -> None:
        """Fill `.grad` of every tensor this one depends on, in one reverse pass."""
        if grad is None:
            if self.data.size != 1:
                raise ValueError(f"backward() without a gradient needs a scalar, got {self.shape}")
            seed = np.ones(self.data.shape, self.data.dtype)
        else:
            seed = np.asarray(grad, dtype=self.data.dtype)
        order = topological_order(self)
        for node in order:  # leaves accumulate across calls; op outputs hold this pass only
            node.grad = None
        _accumulate(self, seed, "seed")
        for node in reversed(order):
            if node.grad is None:
                continue
            if isinstance(node.grad, RowSparseGrad):  # only leaves keep the row-sparse form
                node.grad = node.grad.to_dense()
            ctx = node._ctx
            grads = ctx.op.backward(ctx, node.grad)
            for parent, g in zip(ctx.parents, grads):
                if g is not None and parent.requires_grad:
                    _accumulate(parent, g, ctx.op.__name__)


def topological_order(root: Tensor) -> list[Tensor]:
    """Op outputs that `root` depends on, each after its inputs (iterative, no recursion limit).

    One visit per node finds them; sorting by creation number then orders them, since an op's
    inputs are recorded before its output. Should an edge break that (a graph unpickled from
    another process, a context made outside `Function.apply`), a depth-first walk orders them.
    Leaves (parameters, inputs) are left out: backward only visits nodes that have an op.
    """
    if root._ctx is None:
        return []
    found = {id(root): root}
    stack = [root]
    while stack:
        ctx = stack.pop()._ctx
        for parent in ctx.parents:
            if parent._ctx is None:
                continue
            if parent._ctx.seq >= ctx.seq:
                return _depth_first_order(root)
            if id(parent) not in found:
                found[id(parent)] = parent
                stack.append(parent)
    return sorted(found.values(), key=_creation)


def _creation(node: Tensor) -> int:
    """Where the op that made `node` was recorded."""
    return node._ctx.seq


def _depth_first_order(root: Tensor) -> list[Tensor]:
    """The same nodes as topological_order, ordered by a depth-first walk (no creation numbers)."""
    order: list[Tensor] = []
    visited: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    while stack:
        node, inputs_done = stack.pop()
        if inputs_done:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        stack.extend(
            [(p, False) for p in node._ctx.parents if p._ctx is not None and id(p) not in visited]
        )
    return order


def _accumulate(tensor: Tensor, grad: Array | RowSparseGrad, op_name: str) -> None:
    """Add `grad` into `tensor.grad`, refusing a gradient of the wrong shape."""
    if grad.shape != tensor.data.shape:
        raise GradientShapeError(
            f"{op_name}.backward returned a gradient of shape {tuple(grad.shape)} "
            f"for an input of shape {tuple(tensor.data.shape)}"
        )
    tensor.grad = grad if tensor.grad is None else tensor.grad + grad


def parameters_zero_grad(params: Sequence[Tensor]) -> None:
    """Clear the gradients of `params` before the next backward."""
    for p in params:
        p.grad = None
