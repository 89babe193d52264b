"""A small reverse-mode autodiff engine over numpy arrays."""

from nerwin.engine.activations import ACTIVATIONS, activation
from nerwin.engine.ops import (
    affine,
    concat,
    gather,
    gather_concat,
    maximum,
    sigmoid_bce,
    stable_sigmoid,
)
from nerwin.engine.sparse import RowSparseGrad
from nerwin.engine.tensor import Function, Tensor, is_grad_enabled, no_grad

__all__ = [
    "ACTIVATIONS",
    "Function",
    "RowSparseGrad",
    "Tensor",
    "activation",
    "affine",
    "concat",
    "gather",
    "gather_concat",
    "is_grad_enabled",
    "maximum",
    "no_grad",
    "sigmoid_bce",
    "stable_sigmoid",
]
