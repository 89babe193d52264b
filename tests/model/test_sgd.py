"""SGD: dense and row-sparse updates, per-parameter scales, gradients cleared."""

from __future__ import annotations

import numpy as np
import pytest

from nerwin.engine import RowSparseGrad, Tensor, gather
from nerwin.model.refcount import unreferenced
from nerwin.model.sgd import SGD, flat_indices, sparse_update


def _dense(grad: RowSparseGrad) -> np.ndarray:
    out = np.zeros(grad.shape, dtype=np.float64)
    np.add.at(out, grad.ids, grad.rows)
    return out


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_optim_sparse_update_repeated_ids_equals_dense(rng: np.random.Generator, dtype) -> None:
    table = rng.normal(size=(30, 4)).astype(dtype)
    ids = np.array([3, 7, 3, 3, 0, 29, 7, 12])
    grad = RowSparseGrad(ids, rng.normal(size=(len(ids), 4)).astype(dtype), table.shape)
    expected = table.astype(np.float64) - 0.1 * _dense(grad)
    sparse_update(table, grad, 0.1)
    assert table.dtype == dtype
    tol = 1e-12 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(table, expected, rtol=tol, atol=tol)


def test_optim_sparse_update_counts_every_repeat(rng: np.random.Generator) -> None:
    table = np.zeros((5, 2))
    grad = RowSparseGrad(np.array([1, 1, 1]), np.ones((3, 2)), table.shape)
    sparse_update(table, grad, 0.5)
    np.testing.assert_array_equal(table[1], [-1.5, -1.5])  # not -0.5: repeats are summed


def test_optim_sparse_update_leaves_untouched_rows_bit_for_bit(rng: np.random.Generator) -> None:
    table = rng.normal(size=(50, 6))
    table[10] = [np.nan, np.inf, -0.0, 1e-310, -np.inf, 5.0]  # odd bit patterns stay exactly
    before = table.copy()
    ids = np.array([1, 4, 4, 40])
    sparse_update(table, RowSparseGrad(ids, rng.normal(size=(4, 6)), table.shape), 0.3)
    untouched = np.setdiff1d(np.arange(50), ids)
    assert table[untouched].tobytes() == before[untouched].tobytes()
    assert not np.array_equal(table[ids], before[ids])


def test_optim_sparse_update_handles_multidimensional_ids(rng: np.random.Generator) -> None:
    table = rng.normal(size=(10, 3))
    ids = rng.integers(0, 10, (4, 5))  # a batch of windows, as Gather receives them
    rows = rng.normal(size=(4, 5, 3))
    grad = RowSparseGrad(ids, rows, table.shape)
    expected = table - 0.2 * _dense(grad)
    sparse_update(table, grad, 0.2)
    np.testing.assert_allclose(table, expected, rtol=1e-12, atol=1e-12)


def test_optim_step_dense_update(rng: np.random.Generator) -> None:
    w = Tensor(rng.normal(size=(3, 2)), requires_grad=True)
    g = rng.normal(size=(3, 2))
    expected = w.data - 0.25 * g
    w.grad = g.copy()
    SGD({"W": w}, lr=0.25).step()
    np.testing.assert_allclose(w.data, expected, rtol=0, atol=1e-15)


def test_optim_step_sparse_gradient_from_backward(rng: np.random.Generator) -> None:
    table = Tensor(rng.normal(size=(20, 3)), requires_grad=True)
    ids = np.array([[2, 5, 2], [5, 5, 19]])
    weights = rng.normal(size=(2, 3, 3))
    (gather(table, ids) * weights).sum().backward()
    assert isinstance(table.grad, RowSparseGrad)
    dense = table.grad.to_dense()
    expected = table.data - 0.1 * dense
    before = table.data.copy()
    SGD({"E": table}, lr=0.1).step()
    np.testing.assert_allclose(table.data, expected, rtol=1e-12, atol=1e-12)
    untouched = np.setdiff1d(np.arange(20), ids)
    assert table.data[untouched].tobytes() == before[untouched].tobytes()


def test_optim_scale_zero_leaves_embeddings_unchanged(rng: np.random.Generator) -> None:
    E = Tensor(rng.normal(size=(10, 4)), requires_grad=True)
    W = Tensor(rng.normal(size=(4, 2)), requires_grad=True)
    E_before, W_before = E.data.copy(), W.data.copy()
    E.grad = RowSparseGrad(np.array([1, 2, 2]), rng.normal(size=(3, 4)), E.shape)
    W.grad = rng.normal(size=(4, 2))
    SGD({"E": E, "W": W}, lr=0.5, scales={"E": 0.0}).step()
    np.testing.assert_array_equal(E.data, E_before)
    assert not np.array_equal(W.data, W_before)
    assert E.grad is None and W.grad is None


def test_optim_scale_multiplies_lr(rng: np.random.Generator) -> None:
    E = Tensor(np.zeros((4, 2)), requires_grad=True)
    W = Tensor(np.zeros(2), requires_grad=True)
    E.grad = RowSparseGrad(np.array([1]), np.ones((1, 2)), E.shape)
    W.grad = np.ones(2)
    SGD({"E": E, "W": W}, lr=0.5, scales={"E": 0.1}).step()
    np.testing.assert_allclose(E.data[1], -0.05)
    np.testing.assert_allclose(W.data, -0.5)


def test_optim_grads_cleared_after_step(rng: np.random.Generator) -> None:
    params = {
        "E": Tensor(rng.normal(size=(6, 2)), requires_grad=True),
        "W": Tensor(rng.normal(size=(2, 2)), requires_grad=True),
        "b": Tensor(np.zeros(2), requires_grad=True),
    }
    (gather(params["E"], np.array([0, 3])) @ params["W"] + params["b"]).sum().backward()
    assert all(p.grad is not None for p in params.values())
    SGD(params, lr=0.1).step()
    assert all(p.grad is None for p in params.values())


def test_optim_step_skips_params_without_grad(rng: np.random.Generator) -> None:
    a = Tensor(rng.normal(size=3), requires_grad=True)
    before = a.data.copy()
    SGD({"a": a}, lr=1.0).step()
    assert a.data.tobytes() == before.tobytes()


def test_optim_step_updates_in_place_and_keeps_dtype(rng: np.random.Generator) -> None:
    w = Tensor(rng.normal(size=(3,)).astype(np.float32), requires_grad=True)
    buffer = w.data
    w.grad = np.ones(3, np.float32)
    SGD({"w": w}, lr=0.1).step()
    assert w.data is buffer and w.data.dtype == np.float32


def test_optim_step_shared_gradient_array_updates_both_parameters(rng: np.random.Generator) -> None:
    a = Tensor(rng.normal(size=(3, 2)), requires_grad=True)
    b = Tensor(rng.normal(size=(3, 2)), requires_grad=True)
    weights = rng.normal(size=(3, 2))
    ((a + b) * weights).sum().backward()
    assert a.grad is b.grad  # Add hands one array to both inputs
    expected_a, expected_b = a.data - 0.5 * weights, b.data - 0.1 * weights
    SGD({"a": a, "b": b}, lr=0.5, scales={"b": 0.2}).step()
    np.testing.assert_allclose(a.data, expected_a, rtol=0, atol=1e-15)
    np.testing.assert_allclose(b.data, expected_b, rtol=0, atol=1e-15)


def test_optim_step_gradient_viewed_by_another_parameter() -> None:
    a = Tensor(np.ones((2, 3)), requires_grad=True)
    b = Tensor(np.ones(6), requires_grad=True)
    table = Tensor(np.ones((4, 3)), requires_grad=True)
    (
        (a + b.reshape(2, 3) + gather(table, np.array([0, 1]))) * Tensor(np.full((2, 3), 2.0))
    ).sum().backward()
    SGD({"a": a, "b": b, "E": table}, lr=0.5).step()  # b's and E's gradients are views of a's
    np.testing.assert_array_equal(a.data, 0.0)
    np.testing.assert_array_equal(b.data, 0.0)
    np.testing.assert_array_equal(table.data[:2], 0.0)


def test_optim_step_gradient_that_is_the_parameter_or_kept_by_the_caller() -> None:
    w = Tensor(np.full(3, 4.0), requires_grad=True)
    w.grad = w.data  # e.g. a weight-decay term set by hand
    SGD({"w": w}, lr=0.1).step()
    np.testing.assert_allclose(w.data, 3.6)
    v, kept = Tensor(np.zeros(3), requires_grad=True), np.ones(3)
    v.grad = kept
    SGD({"v": v}, lr=0.1).step()
    np.testing.assert_array_equal(kept, 1.0)


def test_optim_two_optimizers_sharing_a_gradient_array() -> None:
    p, q = Tensor(np.ones(3), requires_grad=True), Tensor(np.ones(3), requires_grad=True)
    ((p + q) * Tensor(np.full(3, 2.0))).sum().backward()
    SGD({"p": p}, lr=0.5).step()
    SGD({"q": q}, lr=0.5).step()
    np.testing.assert_array_equal(q.data, 0.0)


def test_optim_step_leaves_the_backward_seed_alone(rng: np.random.Generator) -> None:
    w = Tensor(rng.normal(size=(4,)), requires_grad=True)
    seed = rng.normal(size=(4,))
    kept = seed.copy()
    y = w + 0.0
    y.backward(seed)  # Add passes the seed straight through as w's gradient
    SGD({"w": w}, lr=0.3).step()
    np.testing.assert_array_equal(seed, kept)
    np.testing.assert_array_equal(y.grad, kept)


def test_optim_training_step_scales_weight_gradients_in_place() -> None:
    from nerwin.model.classifier import ModelShape, WindowClassifier

    model = WindowClassifier.initialise(
        ModelShape(50, 4, 5, (8,), "relu", 3, 5), np.random.default_rng(0)
    )
    optimizer = SGD(model.params, 0.1)
    words = np.random.default_rng(1).integers(0, 50, (6, 5))
    model.loss(words, np.zeros((6, 5), int), np.array([0, 1, 0, 1, 0, 0], np.float32)).backward()
    optimizer.step()
    assert optimizer._steps == {}  # no scratch buffer was needed: W's gradient was nobody else's


def test_optim_step_matches_a_plain_update_bit_for_bit(rng: np.random.Generator) -> None:
    w = Tensor(rng.normal(size=(5, 4)).astype(np.float32), requires_grad=True)
    x = rng.normal(size=(3, 5)).astype(np.float32)
    (Tensor(x) @ w).sum().backward()
    expected = w.data - w.grad * np.float32(0.3)
    SGD({"W": w}, lr=0.3).step()
    assert w.data.tobytes() == expected.tobytes()


def test_optim_flat_indices_do_not_wrap_for_big_tables() -> None:
    ids = np.array(
        [0, 2**29 + 1], dtype=np.int32
    )  # row 2**29 + 1 of a d = 4 table starts past 2**31
    index = flat_indices(ids, 4)
    assert index.dtype == np.int64
    np.testing.assert_array_equal(index, [0, 1, 2, 3] + [(2**29 + 1) * 4 + k for k in range(4)])


def test_optim_unreferenced_only_for_an_array_nothing_else_holds() -> None:
    mine = np.ones(3)
    assert unreferenced(mine)
    other = mine
    assert not unreferenced(mine)  # a second variable holds it
    del other
    assert unreferenced(mine)
    assert not unreferenced(mine[1:])  # a view (it holds its base)
    frozen = np.ones(3)
    frozen.flags.writeable = False
    assert not unreferenced(frozen)
    assert not unreferenced([1.0, 2.0])  # not an ndarray
