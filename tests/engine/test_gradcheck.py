"""Tests for nerwin.engine.gradcheck: the numeric estimate, the error formula, negative controls."""

from __future__ import annotations

import numpy as np
import pytest

from nerwin.engine import Function, RowSparseGrad, Tensor, gather
from nerwin.engine.gradcheck import (
    MAX_COORDS,
    central_difference,
    check_gradients,
    relative_error,
    sample_indices,
)
from nerwin.engine.tensor import Context


class _Sin(Function):
    """y = sin(x) with the right local gradient."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(x)
        return np.sin(x)

    @staticmethod
    def backward(ctx: Context, grad_out: np.ndarray) -> tuple[np.ndarray]:
        (x,) = ctx.saved
        return (grad_out * np.cos(x),)


class _BadSin(_Sin):
    """y = sin(x) whose backward is deliberately wrong: 2x instead of cos x."""

    @staticmethod
    def backward(ctx: Context, grad_out: np.ndarray) -> tuple[np.ndarray]:
        (x,) = ctx.saved
        return (grad_out * 2.0 * x,)


def test_gradcheck_central_difference_known_function(rng):
    x = rng.normal(size=(3, 4))
    before = x.copy()
    for index in [(0, 0), (1, 2), (2, 3)]:
        estimate = central_difference(lambda: float(np.sin(x).sum()), x, index, eps=1e-4)
        assert estimate == pytest.approx(np.cos(before[index]), abs=1e-8)
    np.testing.assert_array_equal(x, before)  # each coordinate is restored exactly
    cubic = central_difference(lambda: float(x[1, 1] ** 3), x, (1, 1), eps=1e-3)
    assert cubic == pytest.approx(3 * before[1, 1] ** 2 + 1e-6, abs=1e-8)  # f''' eps^2 / 6 = 1e-6


def test_gradcheck_relative_error_formula():
    analytic = np.array([3.0, 0.5, -2.0, 0.0, 1e-3])
    numeric = np.array([1.0, 0.2, -2.5, 1e-9, 2e-3])
    # |a - n| / max(1, |a|, |n|): 2/3, 0.3/1, 0.5/2.5, 1e-9/1, 1e-3/1
    np.testing.assert_allclose(
        relative_error(analytic, numeric), [2 / 3, 0.3, 0.2, 1e-9, 1e-3], rtol=1e-12
    )
    assert relative_error(np.array([7.0]), np.array([7.0]))[0] == 0.0


def _sin_results(op: type[Function], rng: np.random.Generator):
    x = Tensor(rng.normal(size=(3, 4)), requires_grad=True)
    return check_gradients(lambda: op.apply(x).sum(), {"x": x}, rng=rng)


def test_gradcheck_wrong_backward_fails(rng):
    (good,) = _sin_results(_Sin, rng)
    assert good.ok and good.checked == 12, good.line()
    (bad,) = _sin_results(_BadSin, rng)
    assert not bad.ok
    assert bad.max_rel > 1e-2
    assert "FAIL" in bad.line() and "ok" not in bad.line().split()[-1]


def test_gradcheck_too_large_eps_fails(rng):
    x = Tensor(rng.normal(size=(2, 3)), requires_grad=True)
    (fine,) = check_gradients(lambda: x.exp().sum(), {"x": x}, rng=rng)
    assert fine.ok, fine.line()
    (coarse,) = check_gradients(lambda: x.exp().sum(), {"x": x}, eps=1.0, rng=rng)
    assert not coarse.ok  # (e^(x+1) - e^(x-1)) / 2 = sinh(1) e^x, 17% too large


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.int64])
def test_gradcheck_rejects_non_float64(dtype):
    x = Tensor(np.ones((2, 2), dtype=dtype), requires_grad=True)
    with pytest.raises(TypeError, match="float64"):
        check_gradients(lambda: x.sum(), {"x": x})


def test_gradcheck_large_tensor_sample_is_seeded(rng):
    x = Tensor(rng.normal(size=(30, 20)), requires_grad=True)  # 600 > MAX_COORDS coordinates
    first = sample_indices(x, np.random.default_rng(7))
    again = sample_indices(x, np.random.default_rng(7))
    other = sample_indices(x, np.random.default_rng(8))
    assert first == again
    assert first != other
    assert len(first) == len(set(first)) == MAX_COORDS
    assert all(0 <= i < 30 and 0 <= j < 20 for i, j in first)

    def run():
        return check_gradients(lambda: (x * x).sum(), {"x": x})  # rng=None: a fixed default seed

    (a,), (b,) = run(), run()
    assert a == b and a.ok and a.checked == MAX_COORDS


def test_gradcheck_small_tensor_checks_every_coordinate(rng):
    x = Tensor(rng.normal(size=(4, 5)), requires_grad=True)
    assert sample_indices(x, rng) == list(np.ndindex(4, 5))


def test_gradcheck_row_sparse_table_touched_rows_plus_one(rng):
    table = Tensor(rng.normal(size=(200, 3)), requires_grad=True)  # 600 > MAX_COORDS
    ids = np.array([[3, 3, 17], [42, 3, 17]])
    weights = rng.normal(size=(2, 3, 3))

    def loss() -> Tensor:
        return (gather(table, ids).exp() * weights).sum()

    loss().backward()
    assert isinstance(table.grad, RowSparseGrad)
    indices = sample_indices(table, np.random.default_rng(0))
    rows = sorted({i for i, _ in indices})
    untouched = [r for r in rows if r not in (3, 17, 42)]
    assert len(rows) == 4 and len(untouched) == 1
    assert sorted(indices) == [(r, j) for r in rows for j in range(3)]  # every column of each row
    (row,) = untouched
    assert np.all(table.grad.to_dense()[row] == 0.0)
    for j in range(3):
        numeric = central_difference(lambda: float(loss().data), table.data, (row, j))
        assert numeric == 0.0

    table.grad = None
    (result,) = check_gradients(loss, {"table": table}, rng=np.random.default_rng(0))
    assert result.ok, result.line()
    assert result.checked == 4 * 3
