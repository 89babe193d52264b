"""The fused loss: sigmoid cross-entropy from logits, and the overflow-free sigmoid it rests on."""

from __future__ import annotations

import numpy as np

from nerwin.engine.tensor import Context, Function, Tensor

Array = np.ndarray
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
    """1 / (1 + e**-z) for any finite z, never overflowing (pass e = exp_neg_abs(z) if known)."""
    e = exp_neg_abs(z) if e is None else e
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(z.dtype, copy=False)


class SigmoidBCE(Function):
    """Mean of weight * cross-entropy(sigmoid(z), y) from logits z; finite for any z."""

    @staticmethod
    def forward(ctx: Context, z: Array, y: Array, weight: Array | None = None) -> Array:
        e = exp_neg_abs(z)
        probs = (np.where(z >= 0, 1.0, e) / (1.0 + e)).astype(z.dtype, copy=False)
        ctx.save_for_backward(*((probs, y) if weight is None else (probs, y, weight)))
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


def sigmoid_bce(z: Tensor, y: Array, weight: Array | None = None) -> Tensor:
    """Mean binary cross-entropy of logits `z` against 0/1 targets `y`."""
    inputs = (z, Tensor(np.asarray(y, dtype=z.dtype)))
    if weight is not None:
        inputs += (Tensor(np.asarray(weight, dtype=z.dtype)),)
    return SigmoidBCE.apply(*inputs)
