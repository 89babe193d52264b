"""Numeric gradient checks: central differences in float64 against one backward pass."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from nerwin.engine.sparse import RowSparseGrad
from nerwin.engine.tensor import Tensor, no_grad

Array = np.ndarray
DEFAULT_EPS = 1e-4
DEFAULT_TOL = 1e-6
MAX_COORDS = 400  # coordinates sampled per large tensor


@dataclass(frozen=True)
class GradResult:
    """How one gradient compared with its numeric estimate."""

    name: str
    max_abs: float
    max_rel: float
    worst: tuple[int, ...]
    checked: int
    tol: float

    @property
    def ok(self) -> bool:
        """True when the worst relative error is within tolerance."""
        return bool(self.max_rel <= self.tol)

    def line(self) -> str:
        """One report line: name, errors, worst index, ok/FAIL."""
        status = "ok" if self.ok else "FAIL"
        return (
            f"{self.name:<36} max_abs={self.max_abs:.1e}  max_rel={self.max_rel:.1e}  "
            f"at {self.worst!s:<10} n={self.checked:<4} {status}"
        )


def relative_error(analytic: Array, numeric: Array) -> Array:
    """|a - n| / max(1, |a|, |n|), the CS224N gradient-check formula."""
    scale = np.maximum(1.0, np.maximum(np.abs(analytic), np.abs(numeric)))
    return np.abs(analytic - numeric) / scale


def central_difference(
    f: Callable[[], float], array: Array, index: tuple[int, ...], eps: float = DEFAULT_EPS
) -> float:
    """(f(x + eps) - f(x - eps)) / 2 eps at one coordinate of `array` (restored after)."""
    original = array[index]
    array[index] = original + eps
    plus = f()
    array[index] = original - eps
    minus = f()
    array[index] = original
    return (plus - minus) / (2.0 * eps)


def dense(grad: Array | RowSparseGrad | None, shape: tuple[int, ...]) -> Array:
    """A gradient as a dense float64 array (zeros when None)."""
    if grad is None:
        return np.zeros(shape)
    if isinstance(grad, RowSparseGrad):
        return grad.to_dense().astype(np.float64)
    return np.asarray(grad, dtype=np.float64)


def sample_indices(
    tensor: Tensor, rng: np.random.Generator, limit: int = MAX_COORDS
) -> list[tuple[int, ...]]:
    """Every coordinate of a small tensor, else a seeded sample (of a table: its touched rows)."""
    if tensor.data.size <= limit:
        return [tuple(int(i) for i in idx) for idx in np.ndindex(tensor.shape)]
    if isinstance(tensor.grad, RowSparseGrad):
        return _table_indices(tensor, rng)
    flat = rng.choice(tensor.data.size, size=limit, replace=False)
    return [tuple(int(i) for i in np.unravel_index(k, tensor.shape)) for k in flat]


def _table_indices(tensor: Tensor, rng: np.random.Generator) -> list[tuple[int, ...]]:
    """Every coordinate of every touched row, plus one untouched row (its gradient must be 0)."""
    touched = np.unique(tensor.grad.ids)
    untouched = np.setdiff1d(np.arange(tensor.shape[0]), touched)
    rows = list(touched) + ([int(rng.choice(untouched))] if len(untouched) else [])
    return [(int(r), j) for r in rows for j in range(tensor.shape[1])]


def check_gradients(
    loss_fn: Callable[[], Tensor],
    inputs: Mapping[str, Tensor],
    *,
    eps: float = DEFAULT_EPS,
    tol: float = DEFAULT_TOL,
    prefix: str = "",
    rng: np.random.Generator | None = None,
) -> list[GradResult]:
    """Compare one backward pass of scalar `loss_fn()` with central differences, per input."""
    rng = rng or np.random.default_rng(0)
    for tensor in inputs.values():
        if tensor.dtype != np.float64:
            raise TypeError(f"gradient checks run in float64, got {tensor.dtype}")
        tensor.grad = None
    loss_fn().backward()

    def value() -> float:
        with no_grad():
            return float(loss_fn().data)

    results = []
    for name, tensor in inputs.items():
        analytic = dense(tensor.grad, tensor.shape)
        indices = sample_indices(tensor, rng)
        numeric = np.array([central_difference(value, tensor.data, i, eps) for i in indices])
        picked = np.array([analytic[i] for i in indices])
        rel = relative_error(picked, numeric)
        worst = int(np.argmax(rel))
        results.append(
            GradResult(
                f"{prefix}{name}",
                float(np.abs(picked - numeric).max()),
                float(rel[worst]),
                indices[worst],
                len(indices),
                tol,
            )
        )
    return results
