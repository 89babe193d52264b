"""Non-linearities, each an op with its local gradient, and a registry by config name."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from nerwin.engine.loss import stable_sigmoid
from nerwin.engine.ops import unbroadcast
from nerwin.engine.tensor import Context, Function, Tensor

Array = np.ndarray
LEAKY_SLOPE = 0.01
GELU_SIGMOID_SCALE = 1.702
_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)

# erf by a 5th-order Taylor step from a 1/128 grid of exact values: |error| < 1e-15.
_ERF_STEP = 1.0 / 128.0
_ERF_LIMIT = 6.0  # erf(6) = 1 - 2e-17
_ERF_GRID = np.arange(0.0, _ERF_LIMIT + _ERF_STEP / 2, _ERF_STEP)
_ERF_TABLE = np.array([math.erf(t) for t in _ERF_GRID])


def erf(x: Array) -> Array:
    """The error function elementwise, accurate to about 1e-15, in x's float dtype."""
    t = np.minimum(np.abs(x.astype(np.float64)), _ERF_LIMIT)
    k = np.rint(t / _ERF_STEP).astype(np.intp)
    t0 = _ERF_GRID[k]
    d = t - t0
    slope = (2.0 / math.sqrt(math.pi)) * np.exp(-t0 * t0)
    s2 = t0 * t0
    poly = d * (
        1.0
        + d
        * (
            -t0
            + d
            * (
                (2.0 * s2 - 1.0) / 3.0
                + d
                * ((-2.0 * s2 * t0 + 3.0 * t0) / 6.0 + d * (4.0 * s2 * s2 - 12.0 * s2 + 3.0) / 30.0)
            )
        )
    )
    return (np.sign(x) * (_ERF_TABLE[k] + slope * poly)).astype(x.dtype, copy=False)


class Logistic(Function):
    """y = 1 / (1 + e**-x), computed without overflow."""

    @staticmethod
    def forward(ctx: Context, x: Array) -> Array:
        y = stable_sigmoid(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Context, grad_out: Array) -> tuple[Array]:
        (y,) = ctx.saved
        return (grad_out * y * (1.0 - y),)


class Tanh(Function):
    """y = tanh(x)."""

    @staticmethod
    def forward(ctx: Context, x: Array) -> Array:
        y = np.tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Context, grad_out: Array) -> tuple[Array]:
        (y,) = ctx.saved
        return (grad_out * (1.0 - y * y),)


class HardTanh(Function):
    """y = clip(x, -1, 1); gradient 1 strictly inside, 0 outside."""

    @staticmethod
    def forward(ctx: Context, x: Array) -> Array:
        ctx.save_for_backward(x)
        return np.clip(x, -1.0, 1.0)

    @staticmethod
    def backward(ctx: Context, grad_out: Array) -> tuple[Array]:
        (x,) = ctx.saved
        return (grad_out * (np.abs(x) < 1.0),)


class ReLU(Function):
    """y = max(x, 0); gradient 0 at x = 0."""

    @staticmethod
    def forward(ctx: Context, x: Array) -> Array:
        y = np.maximum(x, 0.0)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Context, grad_out: Array) -> tuple[Array]:
        (y,) = ctx.saved
        return (grad_out * (y > 0.0),)


class LeakyReLU(Function):
    """y = x for x > 0, else 0.01 x."""

    @staticmethod
    def forward(ctx: Context, x: Array) -> Array:
        ctx.save_for_backward(x)
        return np.where(x > 0.0, x, x * np.asarray(LEAKY_SLOPE, dtype=x.dtype))

    @staticmethod
    def backward(ctx: Context, grad_out: Array) -> tuple[Array]:
        (x,) = ctx.saved
        return (np.where(x > 0.0, grad_out, grad_out * np.asarray(LEAKY_SLOPE, dtype=x.dtype)),)


class PReLU(Function):
    """y = x for x > 0, else a x, with a learnable slope a (shape broadcastable to x)."""

    @staticmethod
    def forward(ctx: Context, x: Array, a: Array) -> Array:
        ctx.save_for_backward(x, a)
        return np.where(x > 0.0, x, a * x)

    @staticmethod
    def backward(ctx: Context, grad_out: Array) -> tuple[Array, Array]:
        x, a = ctx.saved
        positive = x > 0.0
        grad_a = np.where(positive, 0.0, grad_out * x).astype(x.dtype, copy=False)
        return np.where(positive, grad_out, grad_out * a), unbroadcast(grad_a, a.shape)


class Swish(Function):
    """y = x * logistic(x)."""

    @staticmethod
    def forward(ctx: Context, x: Array) -> Array:
        s = stable_sigmoid(x)
        ctx.save_for_backward(x, s)
        return x * s

    @staticmethod
    def backward(ctx: Context, grad_out: Array) -> tuple[Array]:
        x, s = ctx.saved
        return (grad_out * (s + x * s * (1.0 - s)),)


class GELU(Function):
    """y = x * Phi(x), Phi the standard normal CDF via erf (exact GELU)."""

    @staticmethod
    def forward(ctx: Context, x: Array) -> Array:
        cdf = 0.5 * (1.0 + erf(x * np.asarray(_SQRT_HALF, dtype=x.dtype)))
        ctx.save_for_backward(x, cdf)
        return x * cdf

    @staticmethod
    def backward(ctx: Context, grad_out: Array) -> tuple[Array]:
        x, cdf = ctx.saved
        pdf = np.exp(-0.5 * x * x) * np.asarray(_INV_SQRT_2PI, dtype=x.dtype)
        return (grad_out * (cdf + x * pdf),)


class GELUSigmoid(Function):
    """y = x * logistic(1.702 x), the sigmoid approximation of GELU."""

    @staticmethod
    def forward(ctx: Context, x: Array) -> Array:
        s = stable_sigmoid(x * np.asarray(GELU_SIGMOID_SCALE, dtype=x.dtype))
        ctx.save_for_backward(x, s)
        return x * s

    @staticmethod
    def backward(ctx: Context, grad_out: Array) -> tuple[Array]:
        x, s = ctx.saved
        return (grad_out * (s + GELU_SIGMOID_SCALE * x * s * (1.0 - s)),)


ACTIVATIONS: dict[str, type[Function]] = {
    "logistic": Logistic,
    "tanh": Tanh,
    "hardtanh": HardTanh,
    "relu": ReLU,
    "leaky_relu": LeakyReLU,
    "prelu": PReLU,
    "swish": Swish,
    "gelu": GELU,
    "gelu_sigmoid": GELUSigmoid,
}
LEARNABLE = {"prelu"}
KINKS = {
    "relu": (0.0,),
    "leaky_relu": (0.0,),
    "prelu": (0.0,),
    "hardtanh": (-1.0, 1.0),
}  # no derivative  # activations that take a learnable slope tensor as a second input


def activation(name: str) -> Callable[..., Tensor]:
    """The `apply` of the activation called `name` (see ACTIVATIONS)."""
    return ACTIVATIONS[name].apply
