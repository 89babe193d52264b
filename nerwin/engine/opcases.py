"""The table of op checks shared by `nerwin gradcheck` and the tests: one row per op and shape."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from nerwin.engine import ops
from nerwin.engine.activations import ACTIVATIONS, KINKS
from nerwin.engine.embedding import gather, gather_concat
from nerwin.engine.gradcheck import GradResult, check_gradients
from nerwin.engine.loss import sigmoid_bce
from nerwin.engine.tensor import Tensor

Array = np.ndarray
Builder = Callable[[np.random.Generator], tuple[Callable[..., Tensor], dict[str, Array]]]
KINK_MARGIN = 0.05  # inputs are kept this far from kinks and ties (much more than eps)


@dataclass(frozen=True)
class OpCase:
    """One op applied to inputs drawn by `build`; `note` says how inputs avoid kinks."""

    name: str
    build: Builder
    note: str = ""


def away_from(values: Array, kinks: tuple[float, ...], margin: float = KINK_MARGIN) -> Array:
    """Push values at least `margin` away from each kink (ReLU's 0, hard tanh's +-1)."""
    for kink in kinks:
        offset = values - kink
        close = np.abs(offset) < margin
        values = np.where(close, kink + np.sign(offset + 1e-12) * margin, values)
    return values


def _normal(rng: np.random.Generator, *shape: int) -> Array:
    return rng.normal(size=shape)


def _binary(
    op: Callable[[Tensor, Tensor], Tensor],
    a: tuple[int, ...],
    b: tuple[int, ...],
    positive_b: bool = False,
) -> Builder:
    def build(rng: np.random.Generator):
        y = _normal(rng, *b)
        if positive_b:
            y = np.abs(y) + 0.5
        return op, {"a": _normal(rng, *a), "b": y}

    return build


def _unary(
    op: Callable[[Tensor], Tensor],
    shape: tuple[int, ...],
    make: Callable[[Array], Array] = lambda x: x,
) -> Builder:
    return lambda rng: (op, {"x": make(_normal(rng, *shape))})


def _distinct(rng: np.random.Generator, *shape: int) -> Array:
    """Values with gaps of at least 0.1, so max has no near-ties."""
    return rng.permutation(np.arange(np.prod(shape)) * 0.1 - 1.0).reshape(shape)


def _gather_case(rng: np.random.Generator):
    ids = np.array([[0, 2, 2, 5, 0], [5, 5, 1, 0, 3]])  # repeated ids, as PAD and "the" are
    return (lambda table: gather(table, ids)), {"table": _normal(rng, 7, 3)}


def _gather_flat_case(rng: np.random.Generator):
    ids = np.array([[1, 1, 4, 2, 2], [0, 4, 4, 3, 1]])
    return (lambda table: gather(table, ids, flatten=True)), {"table": _normal(rng, 6, 3)}


def _gather_concat_case(rng: np.random.Generator):
    words = np.array([[1, 1, 4, 2, 2], [0, 4, 4, 3, 1]])
    caps = np.array([[0, 2, 2, 1, 0], [1, 1, 0, 0, 2]])
    return (
        (lambda e, f: gather_concat([e, f], [words, caps])),
        {"E": _normal(rng, 6, 3), "F": _normal(rng, 3, 2)},
    )


def _gather_computed_case(rng: np.random.Generator):
    ids = np.array([[0, 2, 2, 5, 0], [5, 5, 1, 0, 3]])
    return (lambda table: gather(table * table, ids)), {"table": _normal(rng, 7, 3)}


def _bce_case(rng: np.random.Generator, weighted: bool):
    y = rng.integers(0, 2, 8).astype(np.float64)
    w = np.where(y == 1, 3.0, 1.0) if weighted else None
    return (lambda z: sigmoid_bce(z, y, w)), {"z": _normal(rng, 8) * 3}


def _dropout_case(rng: np.random.Generator):
    mask = rng.random((4, 5)) < 0.75  # fixed for the check: the op is linear in x given its mask
    return (lambda x: ops.Dropout.apply(x, mask=mask, keep=0.75)), {"x": _normal(rng, 4, 5)}


def _maximum_case(rng: np.random.Generator):
    a = _normal(rng, 4, 3)
    b = a + np.where(rng.random((4, 3)) < 0.5, -1, 1) * (0.1 + rng.random((4, 3)))
    return ops.maximum, {"a": a, "b": b}


def _activation_case(name: str) -> OpCase:
    cls = ACTIVATIONS[name]
    shift = KINKS.get(name, ())

    def build(rng: np.random.Generator):
        x = away_from(_normal(rng, 6, 5) * 2, shift)
        if name == "prelu":
            return cls.apply, {"x": x, "slope": rng.uniform(0.1, 0.4, 5)}
        return cls.apply, {"x": x}

    note = f"inputs kept {KINK_MARGIN} away from {shift}" if shift else ""
    return OpCase(f"activation {name}", build, note)


OP_CASES: list[OpCase] = [
    OpCase("add (3,4)+(3,4)", _binary(lambda a, b: a + b, (3, 4), (3, 4))),
    OpCase("add broadcast (3,4)+(4,)", _binary(lambda a, b: a + b, (3, 4), (4,))),
    OpCase("add broadcast (3,1)+(1,4)", _binary(lambda a, b: a + b, (3, 1), (1, 4))),
    OpCase("sub broadcast (2,3,4)-(3,1)", _binary(lambda a, b: a - b, (2, 3, 4), (3, 1))),
    OpCase("neg", _unary(lambda x: -x, (3, 4))),
    OpCase("mul (3,4)*(3,4)", _binary(lambda a, b: a * b, (3, 4), (3, 4))),
    OpCase("mul broadcast (3,4)*(3,1)", _binary(lambda a, b: a * b, (3, 4), (3, 1))),
    OpCase(
        "div broadcast (3,4)/(4,)",
        _binary(lambda a, b: a / b, (3, 4), (4,), positive_b=True),
        "divisor kept >= 0.5 from 0",
    ),
    OpCase("matmul (3,4)@(4,5)", _binary(lambda a, b: a @ b, (3, 4), (4, 5))),
    OpCase("matmul one row (1,4)@(4,5)", _binary(lambda a, b: a @ b, (1, 4), (4, 5))),
    OpCase(
        "affine x@W+b",
        lambda rng: (
            ops.affine,
            {"x": _normal(rng, 3, 4), "W": _normal(rng, 4, 2), "b": _normal(rng, 2)},
        ),
    ),
    OpCase("sum all", _unary(lambda x: x.sum(), (3, 4))),
    OpCase("sum axis=0", _unary(lambda x: x.sum(axis=0), (3, 4))),
    OpCase("sum axis=1 keepdims", _unary(lambda x: x.sum(axis=1, keepdims=True), (3, 4))),
    OpCase("mean all", _unary(lambda x: x.mean(), (3, 4))),
    OpCase("mean axis=1", _unary(lambda x: x.mean(axis=1), (3, 4))),
    OpCase("reshape (3,4)->(2,6)", _unary(lambda x: x.reshape(2, 6), (3, 4))),
    OpCase("concat axis=1", _binary(lambda a, b: ops.concat([a, b], axis=1), (3, 2), (3, 4))),
    OpCase("gather repeated ids", _gather_case, "ids repeat; gradient is row-sparse"),
    OpCase("gather flatten", _gather_flat_case, "windows of ids joined into rows"),
    OpCase("gather_concat two tables", _gather_concat_case, "two tables, repeated ids, one op"),
    OpCase(
        "gather from table * table",
        _gather_computed_case,
        "a row-sparse gradient into a non-leaf: made dense there",
    ),
    OpCase(
        "max axis=1",
        lambda rng: ((lambda x: x.max(axis=1)), {"x": _distinct(rng, 3, 4)}),
        "entries 0.1 apart: no ties",
    ),
    OpCase(
        "max all",
        lambda rng: ((lambda x: x.max()), {"x": _distinct(rng, 3, 4)}),
        "entries 0.1 apart: no ties",
    ),
    OpCase("maximum(a, b)", _maximum_case, "|a - b| >= 0.1: no ties"),
    OpCase("dropout (fixed mask)", _dropout_case, "mask drawn once, then held fixed"),
    OpCase("exp", _unary(lambda x: x.exp(), (3, 4))),
    OpCase("log", _unary(lambda x: x.log(), (3, 4), lambda x: np.abs(x) + 0.5), "inputs >= 0.5"),
    OpCase("fan-out x*x + x", _unary(lambda x: x * x + x, (3, 4)), "x used three times"),
    OpCase("sigmoid_bce", lambda rng: _bce_case(rng, False)),
    OpCase("sigmoid_bce weighted", lambda rng: _bce_case(rng, True)),
    *[_activation_case(name) for name in ACTIVATIONS],
]


def check_op(case: OpCase, rng: np.random.Generator, **kwargs) -> list[GradResult]:
    """Check every input of one op case; non-scalar outputs are reduced by a fixed random dot."""
    fn, arrays = case.build(rng)
    inputs = {
        k: Tensor(np.asarray(v, dtype=np.float64), requires_grad=True) for k, v in arrays.items()
    }
    out_shape = fn(*inputs.values()).shape
    weights = Tensor(rng.normal(size=out_shape))

    def loss() -> Tensor:
        out = fn(*inputs.values())
        return out if out.data.size == 1 and out.ndim == 0 else (out * weights).sum()

    return check_gradients(loss, inputs, prefix=f"{case.name}: d/d", rng=rng, **kwargs)
