"""Tests for nerwin.engine.ops: op-table gradchecks, forwards vs numpy, gather, stable loss."""

from __future__ import annotations

import warnings
from typing import ClassVar

import numpy as np
import pytest

from nerwin.engine import (
    RowSparseGrad,
    Tensor,
    affine,
    concat,
    gather,
    maximum,
    ops,
    sigmoid_bce,
    stable_sigmoid,
)
from nerwin.engine.gradcheck import check_gradients
from nerwin.engine.opcases import OP_CASES, check_op

IDS = np.array([[0, 2, 2, 5, 0], [5, 5, 1, 0, 3]])  # repeated ids, as PAD and "the" repeat


@pytest.fixture
def strict_fp():
    """Overflow, invalid and divide raise, and any Python warning is an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            yield


@pytest.mark.parametrize("case", OP_CASES, ids=lambda case: case.name)
def test_ops_gradcheck_table(case, rng):
    results = check_op(case, rng)
    assert results, case.name
    failed = [r.line() for r in results if not r.ok]
    assert not failed, "\n".join(failed)


def test_ops_gradcheck_reflected_operators(rng):
    x = Tensor(np.abs(rng.normal(size=(3, 4))) + 0.5, requires_grad=True)
    results = check_gradients(
        lambda: (2.0 - x + 1.5 / x + 3.0 * x + 0.5 + np.ones(4) * x).sum(), {"x": x}, rng=rng
    )
    assert all(r.ok for r in results), [r.line() for r in results]


def _inputs(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "a": rng.normal(size=(3, 4)),
        "row": rng.normal(size=(4,)),
        "pos": np.abs(rng.normal(size=(4,))) + 0.5,
        "w": rng.normal(size=(4, 5)),
        "bias": rng.normal(size=(5,)),
        "c": rng.normal(size=(3, 2)),
        "table": rng.normal(size=(7, 3)),
    }


FORWARD_CASES = {
    "add": (lambda t: t["a"] + t["row"], lambda n: n["a"] + n["row"]),
    "radd": (lambda t: 2.0 + t["a"], lambda n: 2.0 + n["a"]),
    "sub": (lambda t: t["a"] - t["row"], lambda n: n["a"] - n["row"]),
    "rsub": (lambda t: 2.0 - t["a"], lambda n: 2.0 - n["a"]),
    "neg": (lambda t: -t["a"], lambda n: -n["a"]),
    "mul": (lambda t: t["a"] * t["row"], lambda n: n["a"] * n["row"]),
    "ndarray * tensor": (lambda t: np.full(4, 3.0) * t["a"], lambda n: 3.0 * n["a"]),
    "div": (lambda t: t["a"] / t["pos"], lambda n: n["a"] / n["pos"]),
    "rdiv": (lambda t: 1.0 / t["pos"], lambda n: 1.0 / n["pos"]),
    "matmul": (lambda t: t["a"] @ t["w"], lambda n: n["a"] @ n["w"]),
    "affine": (lambda t: affine(t["a"], t["w"], t["bias"]), lambda n: n["a"] @ n["w"] + n["bias"]),
    "sum all": (lambda t: t["a"].sum(), lambda n: np.sum(n["a"])),
    "sum axis=0": (lambda t: t["a"].sum(axis=0), lambda n: np.sum(n["a"], axis=0)),
    "sum axis=1 keepdims": (
        lambda t: t["a"].sum(axis=1, keepdims=True),
        lambda n: np.sum(n["a"], axis=1, keepdims=True),
    ),
    "mean all": (lambda t: t["a"].mean(), lambda n: np.mean(n["a"])),
    "mean axis=1": (lambda t: t["a"].mean(axis=1), lambda n: np.mean(n["a"], axis=1)),
    "max all": (lambda t: t["a"].max(), lambda n: np.max(n["a"])),
    "max axis=1": (lambda t: t["a"].max(axis=1), lambda n: np.max(n["a"], axis=1)),
    "max axis=0 keepdims": (
        lambda t: t["a"].max(axis=0, keepdims=True),
        lambda n: np.max(n["a"], axis=0, keepdims=True),
    ),
    "maximum": (lambda t: maximum(t["a"], t["row"]), lambda n: np.maximum(n["a"], n["row"])),
    "reshape": (lambda t: t["a"].reshape(2, 6), lambda n: n["a"].reshape(2, 6)),
    "reshape tuple": (lambda t: t["a"].reshape((6, 2)), lambda n: n["a"].reshape(6, 2)),
    "concat axis=1": (
        lambda t: concat([t["a"], t["c"]], axis=1),
        lambda n: np.concatenate([n["a"], n["c"]], axis=1),
    ),
    "concat axis=0": (
        lambda t: concat([t["a"], t["a"]], axis=0),
        lambda n: np.concatenate([n["a"], n["a"]], axis=0),
    ),
    "gather": (lambda t: gather(t["table"], IDS), lambda n: n["table"][IDS]),
    "exp": (lambda t: t["a"].exp(), lambda n: np.exp(n["a"])),
    "log": (lambda t: t["pos"].log(), lambda n: np.log(n["pos"])),
}


@pytest.mark.parametrize("name", FORWARD_CASES)
def test_ops_forward_matches_numpy(name, rng):
    arrays = _inputs(rng)
    tensors = {k: Tensor(v.copy(), requires_grad=True) for k, v in arrays.items()}
    engine_fn, numpy_fn = FORWARD_CASES[name]
    got = engine_fn(tensors)
    want = np.asarray(numpy_fn(arrays))
    assert isinstance(got, Tensor)
    assert got.shape == want.shape
    np.testing.assert_allclose(got.data, want, rtol=1e-14, atol=1e-15)
    for k, v in arrays.items():  # forward never writes into its inputs
        np.testing.assert_array_equal(tensors[k].data, v)


def _gather_grad(rng: np.random.Generator) -> tuple[RowSparseGrad, np.ndarray]:
    table = Tensor(rng.normal(size=(7, 3)), requires_grad=True)
    out = gather(table, IDS)
    grad_out = rng.normal(size=out.shape)
    out.backward(grad_out)
    expected = np.zeros((7, 3))
    np.add.at(expected, IDS, grad_out)
    return table.grad, expected


def test_ops_gather_grad_scatter_adds_repeated_ids(rng):
    grad, expected = _gather_grad(rng)
    assert isinstance(grad, RowSparseGrad)
    assert grad.shape == (7, 3)
    assert len(grad.ids) == IDS.size  # one row per lookup; repeats kept until coalesced
    np.testing.assert_allclose(grad.to_dense(), expected, rtol=1e-15)
    naive = np.zeros((7, 3))
    naive[IDS.reshape(-1)] += grad.rows  # control: fancy-index += drops repeats, so differs
    assert not np.allclose(naive, expected)


def test_ops_row_sparse_grad_coalesce_unique_sorted(rng):
    grad, expected = _gather_grad(rng)
    merged = grad.coalesce()
    np.testing.assert_array_equal(merged.ids, np.unique(IDS))
    assert np.all(np.diff(merged.ids) > 0)
    assert merged.rows.shape == (len(merged.ids), 3) and merged.shape == (7, 3)
    np.testing.assert_allclose(merged.to_dense(), expected, rtol=1e-14)


def test_ops_row_sparse_grad_add_row_sparse(rng):
    first = RowSparseGrad(np.array([1, 4, 1]), rng.normal(size=(3, 2)), (6, 2))
    second = RowSparseGrad(np.array([4, 0]), rng.normal(size=(2, 2)), (6, 2))
    total = first + second
    assert isinstance(total, RowSparseGrad) and total.shape == (6, 2)
    np.testing.assert_allclose(total.to_dense(), first.to_dense() + second.to_dense(), rtol=1e-15)


def test_ops_row_sparse_grad_add_dense(rng):
    sparse = RowSparseGrad(np.array([1, 4, 1]), rng.normal(size=(3, 2)), (6, 2))
    other = rng.normal(size=(6, 2))
    total = sparse + other
    assert isinstance(total, np.ndarray) and total.dtype == np.float64
    np.testing.assert_allclose(total, sparse.to_dense() + other, rtol=1e-15)


def test_ops_dense_add_row_sparse_grad(rng):
    sparse = RowSparseGrad(np.array([1, 4, 1]), rng.normal(size=(3, 2)), (6, 2))
    other = rng.normal(size=(6, 2))
    total = other + sparse  # ndarray on the left: must not become an object array
    assert isinstance(total, np.ndarray) and total.dtype == np.float64
    np.testing.assert_allclose(total, sparse.to_dense() + other, rtol=1e-15)


@pytest.mark.parametrize("gather_first", [True, False], ids=["gather first", "dense first"])
def test_ops_gather_grad_accumulates_with_dense_use(rng, gather_first):
    table = Tensor(rng.normal(size=(7, 3)), requires_grad=True)
    weights = rng.normal(size=(2, 5, 3))
    looked_up = (gather(table, IDS) * weights).sum()
    direct = (table * 2.0).sum()
    loss = looked_up + direct if gather_first else direct + looked_up
    loss.backward()
    expected = np.full((7, 3), 2.0)
    np.add.at(expected, IDS, weights)
    grad = table.grad.to_dense() if isinstance(table.grad, RowSparseGrad) else table.grad
    assert isinstance(grad, np.ndarray) and grad.dtype == np.float64
    np.testing.assert_allclose(grad, expected, rtol=1e-14)


EXTREMES = [(dtype, mag) for dtype in (np.float32, np.float64) for mag in (1000.0, 1e4)]
EXTREME_IDS = [f"{np.dtype(d).name} {m:g}" for d, m in EXTREMES]


def _extreme_bce(dtype, mag):
    z = Tensor(np.array([mag, -mag, mag, -mag], dtype=dtype), requires_grad=True)
    loss = sigmoid_bce(z, np.array([1.0, 1.0, 0.0, 0.0]))
    loss.backward()
    return z, loss


@pytest.mark.parametrize("dtype, mag", EXTREMES, ids=EXTREME_IDS)
def test_ops_sigmoid_bce_exact_at_extreme_logits(dtype, mag, strict_fp):
    for z, y, want in [(mag, 1.0, 0.0), (-mag, 1.0, mag), (-mag, 0.0, 0.0), (mag, 0.0, mag)]:
        one = sigmoid_bce(Tensor(np.array([z], dtype=dtype)), np.array([y]))
        assert one.dtype == dtype
        assert one.item() == pytest.approx(want, abs=1e-12)
    z, loss = _extreme_bce(dtype, mag)  # losses 0, mag, mag, 0 -> mean mag / 2
    assert loss.dtype == dtype and np.isfinite(loss.data)
    assert loss.item() == pytest.approx(mag / 2, rel=1e-7)
    assert z.grad.dtype == dtype and np.all(np.isfinite(z.grad))
    expected = (stable_sigmoid(z.data.astype(np.float64)) - np.array([1.0, 1.0, 0.0, 0.0])) / 4
    np.testing.assert_array_equal(expected, [0.0, -0.25, 0.25, 0.0])
    np.testing.assert_array_equal(z.grad, expected.astype(dtype))


@pytest.mark.parametrize("dtype, mag", EXTREMES, ids=EXTREME_IDS)
def test_ops_sigmoid_bce_raises_no_fp_flags(dtype, mag):
    with np.errstate(all="raise"):
        _z, loss = _extreme_bce(dtype, mag)
    assert loss.item() == pytest.approx(mag / 2, rel=1e-7)


def test_ops_sigmoid_bce_matches_naive_formula(rng):
    z = Tensor(rng.normal(size=8) * 3, requires_grad=True)
    y = rng.integers(0, 2, 8).astype(np.float64)
    loss = sigmoid_bce(z, y)
    loss.backward()
    p = 1.0 / (1.0 + np.exp(-z.data))
    naive = np.mean(-y * np.log(p) - (1 - y) * np.log(1 - p))
    assert loss.item() == pytest.approx(naive, rel=1e-12)
    np.testing.assert_allclose(z.grad, (p - y) / 8, rtol=1e-12, atol=1e-16)


@pytest.mark.parametrize("dtype, mag", EXTREMES, ids=EXTREME_IDS)
def test_ops_stable_sigmoid_exact_at_extremes(dtype, mag, strict_fp):
    s = stable_sigmoid(np.array([mag, -mag, 0.0], dtype=dtype))
    assert s.dtype == dtype
    assert s.tolist() == [1.0, 0.0, 0.5]


@pytest.mark.parametrize("dtype, mag", EXTREMES, ids=EXTREME_IDS)
def test_ops_stable_sigmoid_raises_no_fp_flags(dtype, mag):
    with np.errstate(all="raise"):
        s = stable_sigmoid(np.array([mag, -mag], dtype=dtype))
    assert s.tolist() == [1.0, 0.0]


def test_ops_stable_sigmoid_symmetry(strict_fp):
    x = np.linspace(-50.0, 50.0, 20_001)
    np.testing.assert_allclose(1.0 - stable_sigmoid(x), stable_sigmoid(-x), rtol=0, atol=2.3e-16)
    naive = 1.0 / (1.0 + np.exp(-x))
    np.testing.assert_allclose(stable_sigmoid(x), naive, rtol=1e-15, atol=1e-300)


def test_ops_max_ties_split_gradient():
    x = Tensor(np.array([[1.0, 3.0, 3.0, 0.0], [5.0, 2.0, 5.0, 1.0]]), requires_grad=True)
    x.max(axis=1).backward(np.array([1.0, 4.0]))
    np.testing.assert_array_equal(x.grad, [[0.0, 0.5, 0.5, 0.0], [2.0, 0.0, 2.0, 0.0]])
    y = Tensor(np.array([[1.0, 4.0], [4.0, 0.0]]), requires_grad=True)
    y.max().backward()
    np.testing.assert_array_equal(y.grad, [[0.0, 0.5], [0.5, 0.0]])


def test_ops_maximum_ties_split_half_half():
    a = Tensor(np.array([1.0, 5.0, 2.0, -3.0]), requires_grad=True)
    b = Tensor(np.array([1.0, 3.0, 4.0, -3.0]), requires_grad=True)
    maximum(a, b).backward(np.array([2.0, 1.0, 1.0, 4.0]))
    np.testing.assert_array_equal(a.grad, [1.0, 1.0, 0.0, 2.0])
    np.testing.assert_array_equal(b.grad, [1.0, 0.0, 1.0, 2.0])


def test_ops_matmul_one_row_matches_general_path(rng):
    a_row, b_data = rng.normal(size=(1, 4)), rng.normal(size=(4, 5))
    g_row = rng.normal(size=(1, 5))
    a = Tensor(a_row, requires_grad=True)
    b = Tensor(b_data, requires_grad=True)
    (a @ b).backward(g_row)
    # the general path: the same row padded with a zero row whose upstream gradient is 0
    a2 = Tensor(np.vstack([a_row, np.zeros((1, 4))]), requires_grad=True)
    b2 = Tensor(b_data, requires_grad=True)
    (a2 @ b2).backward(np.vstack([g_row, np.zeros((1, 5))]))
    assert b.grad.shape == (4, 5) and a.grad.shape == (1, 4)
    np.testing.assert_allclose(b.grad, b2.grad, rtol=1e-15)
    np.testing.assert_allclose(b.grad, a_row.T @ g_row, rtol=1e-15)
    np.testing.assert_allclose(a.grad, a2.grad[:1], rtol=1e-15)


def test_ops_affine_one_row_matches_general_path(rng):
    x_row, w_data, bias, g_row = (
        rng.normal(size=(1, 4)),
        rng.normal(size=(4, 3)),
        rng.normal(size=3),
        rng.normal(size=(1, 3)),
    )
    x, w, b = (Tensor(v, requires_grad=True) for v in (x_row, w_data, bias))
    affine(x, w, b).backward(g_row)
    np.testing.assert_allclose(w.grad, x_row.T @ g_row, rtol=1e-15)
    np.testing.assert_allclose(b.grad, g_row[0], rtol=1e-15)
    np.testing.assert_allclose(x.grad, g_row @ w_data.T, rtol=1e-15)


@pytest.mark.parametrize("rate", [0.1, 0.3, 0.5])
def test_ops_dropout_drops_about_rate_and_keeps_the_mean(rate):
    x = Tensor(np.ones((400, 300), np.float32), requires_grad=True)
    y = ops.dropout(x, rate, np.random.default_rng(0))
    dropped = y.data == 0
    assert abs(dropped.mean() - rate) < 0.01
    assert abs(y.data.mean() - 1.0) < 0.01 and y.data.dtype == np.float32
    y.sum().backward()
    assert np.array_equal(x.grad, y.data)  # the gradient passes exactly the kept, scaled units


def test_ops_dropout_rate_zero_is_the_same_tensor():
    x = Tensor(np.ones((3, 4)), requires_grad=True)
    assert ops.dropout(x, 0.0, np.random.default_rng(0)) is x


def test_ops_dropout_same_generator_state_same_mask():
    x = Tensor(np.ones((5, 7)))
    a = ops.dropout(x, 0.4, np.random.default_rng([3, 9])).data
    b = ops.dropout(x, 0.4, np.random.default_rng([3, 9])).data
    c = ops.dropout(x, 0.4, np.random.default_rng([3, 10])).data
    assert np.array_equal(a, b) and not np.array_equal(a, c)


class _Counting(np.ndarray):
    """An ndarray that counts its mean() and max() calls (np.max(a) calls a.max too)."""

    calls: ClassVar[list[str]] = []

    def mean(self, *args, **kwargs):
        _Counting.calls.append("mean")
        return np.asarray(self).mean(*args, **kwargs)

    def max(self, *args, **kwargs):
        _Counting.calls.append("max")
        return np.asarray(self).max(*args, **kwargs)


@pytest.mark.parametrize("method", ["mean", "max"])
@pytest.mark.parametrize("axis", [None, 0, 1, -1])
@pytest.mark.parametrize("keepdims", [False, True])
def test_ops_mean_max_reduce_once_and_equal_numpy_bit_for_bit(rng, method, axis, keepdims):
    data = rng.normal(size=(5, 7)).astype(np.float32)
    x = Tensor(data.view(_Counting), requires_grad=True)
    _Counting.calls.clear()
    out = getattr(x, method)(axis=axis, keepdims=keepdims)
    assert _Counting.calls == [method]
    want = np.asarray(getattr(np, method)(data, axis=axis, keepdims=keepdims))
    assert out.shape == want.shape and out.dtype == want.dtype
    assert np.asarray(out.data).tobytes() == want.tobytes()
