"""Tests for nerwin.engine.tensor: backward order, accumulation, no_grad, shape contract, dtypes."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest

from nerwin.engine import (
    Function,
    RowSparseGrad,
    Tensor,
    gather,
    is_grad_enabled,
    maximum,
    no_grad,
)
from nerwin.engine.opcases import OP_CASES
from nerwin.engine.tensor import (
    Context,
    GradientShapeError,
    parameters_zero_grad,
    topological_order,
)


def _leaf(value, dtype=np.float64) -> Tensor:
    return Tensor(np.array(value, dtype=dtype), requires_grad=True)


class _Spy(Function):
    """y = 2x; remembers every context it was given, so tests can inspect what it saved."""

    contexts: ClassVar[list[Context]] = []

    @staticmethod
    def forward(ctx: Context, x: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(x)
        _Spy.contexts.append(ctx)
        return 2.0 * x

    @staticmethod
    def backward(ctx: Context, grad_out: np.ndarray) -> tuple[np.ndarray]:
        return (2.0 * grad_out,)


class _WrongShape(Function):
    """Row sums (3, 4) -> (3,) whose backward forgets to broadcast back to (3, 4)."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray) -> np.ndarray:
        return x.sum(axis=1)

    @staticmethod
    def backward(ctx: Context, grad_out: np.ndarray) -> tuple[np.ndarray]:
        return (grad_out,)


def test_tensor_worked_example_values_and_gradients():
    x, y, z = _leaf(1.0), _leaf(2.0), _leaf(0.0)
    f = (x + y) * maximum(y, z)
    f.backward()
    assert f.item() == 6.0
    assert (float(x.grad), float(y.grad), float(z.grad)) == (2.0, 5.0, 0.0)
    assert x.grad.shape == y.grad.shape == z.grad.shape == ()


@pytest.mark.parametrize("value", [3.0, [1.5, -2.0, 0.25]], ids=["scalar", "vector"])
def test_tensor_fan_out_accumulates(value):
    a = _leaf(value)
    b = a + a
    c = b * b
    c.sum().backward()
    np.testing.assert_allclose(a.grad, 8.0 * a.data, rtol=1e-15)


def test_tensor_reused_node_gets_both_gradients():
    a = _leaf(1.5)
    b = a + a
    c = b + b
    c.backward()
    assert float(b.grad) == 2.0
    assert float(a.grad) == 4.0


def _one_op(a: Tensor) -> Tensor:
    return a * a


def _three_ops(a: Tensor) -> Tensor:
    return ((a * a) * 3.0 + a).sum()


@pytest.mark.parametrize("graph", [_one_op, _three_ops], ids=["one op", "three ops"])
def test_tensor_backward_twice_accumulates(graph):
    a = _leaf(1.5)
    loss = graph(a)
    loss.backward()
    once = np.array(a.grad, copy=True)
    loss.backward()
    np.testing.assert_allclose(a.grad, 2.0 * once, rtol=1e-15)


def test_tensor_zero_grad_clears_between_steps():
    a = _leaf([1.0, -2.0])
    for _ in range(3):
        a.zero_grad()
        assert a.grad is None
        (a * a).sum().backward()
        np.testing.assert_array_equal(a.grad, 2.0 * a.data)
    b = _leaf(2.0)
    (a.sum() * b).backward()
    parameters_zero_grad([a, b])
    assert a.grad is None and b.grad is None


def test_tensor_long_chain_has_no_recursion_error():
    x0 = _leaf(1.0)
    x = x0
    for _ in range(10_000):
        x = x * 1.0001 + 0.0
    assert (
        len(topological_order(x)) == 20_000
    )  # a Mul and an Add per step, each once (leaves left out)
    x.backward()
    np.testing.assert_allclose(x.item(), 1.0001**10_000, rtol=1e-12)
    np.testing.assert_allclose(float(x0.grad), 1.0001**10_000, rtol=1e-12)


def test_tensor_no_grad_builds_no_graph():
    a = _leaf([1.0, 2.0])
    _Spy.contexts.clear()
    with no_grad():
        assert not is_grad_enabled()
        out = _Spy.apply(a)
        product = a * 3.0
    assert is_grad_enabled()
    for result in (out, product):
        assert result._ctx is None
        assert result.requires_grad is False
    (ctx,) = _Spy.contexts
    assert ctx.saved == () and not ctx.recording
    recorded = _Spy.apply(a)  # control: outside no_grad the same op saves its input and links in
    assert recorded._ctx is _Spy.contexts[-1]
    assert recorded.requires_grad and len(recorded._ctx.saved) == 1


def test_tensor_no_grad_restores_after_exception():
    a = _leaf(2.0)
    with pytest.raises(RuntimeError, match="inside"), no_grad():
        raise RuntimeError("inside no_grad")
    assert is_grad_enabled()
    with no_grad():
        with no_grad():
            pass
        assert not is_grad_enabled()  # the inner block restores the outer state, not True
    out = a * a
    assert out._ctx is not None and out.requires_grad


def test_tensor_shape_check_names_op_and_shapes():
    x = Tensor(np.ones((3, 4)), requires_grad=True)
    loss = _WrongShape.apply(x).sum()
    with pytest.raises(GradientShapeError) as info:
        loss.backward()
    message = str(info.value)
    assert "_WrongShape" in message
    assert "(3,)" in message and "(3, 4)" in message
    assert x.grad is None  # the wrong gradient was refused, not accumulated


def _expected_broadcast_grad(weights: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Brute force: each output position adds its weight to the input element it read."""
    expected = np.zeros(shape)
    offset = weights.ndim - len(shape)
    for idx in np.ndindex(weights.shape):
        source = tuple(i if n > 1 else 0 for i, n in zip(idx[offset:], shape))
        expected[source] += weights[idx]
    return expected


@pytest.mark.parametrize(
    "shape_a, shape_b", [((3, 4), (4,)), ((3, 1), (1, 4))], ids=["(3,4)+(4,)", "(3,1)+(1,4)"]
)
def test_tensor_broadcast_add_grads_have_parameter_shape(rng, shape_a, shape_b):
    a = Tensor(rng.normal(size=shape_a), requires_grad=True)
    b = Tensor(rng.normal(size=shape_b), requires_grad=True)
    out = a + b
    weights = rng.normal(size=out.shape)
    (out * weights).sum().backward()
    for t in (a, b):
        assert t.grad.shape == t.shape
        np.testing.assert_allclose(t.grad, _expected_broadcast_grad(weights, t.shape), rtol=1e-13)


@pytest.mark.parametrize("case", OP_CASES, ids=lambda case: case.name)
def test_tensor_float32_inputs_give_float32_grads(case, rng):
    fn, arrays = case.build(rng)
    inputs = {
        k: Tensor(np.asarray(v, dtype=np.float32), requires_grad=True) for k, v in arrays.items()
    }
    out = fn(*inputs.values())
    assert out.dtype == np.float32
    loss = out if out.ndim == 0 else (out * rng.normal(size=out.shape).astype(np.float32)).sum()
    assert loss.dtype == np.float32
    loss.backward()
    for name, t in inputs.items():
        grad = t.grad.rows if isinstance(t.grad, RowSparseGrad) else t.grad
        assert grad.dtype == np.float32, name
        assert t.grad.shape == t.shape, name


def test_tensor_backward_on_non_scalar_needs_a_gradient():
    a = _leaf([1.0, 2.0, 3.0])
    out = a * 2.0
    with pytest.raises(ValueError, match="scalar"):
        out.backward()
    out.backward(np.array([1.0, 0.0, -1.0]))  # with an explicit gradient it works
    np.testing.assert_array_equal(a.grad, [2.0, 0.0, -2.0])


def test_tensor_backward_right_when_creation_numbers_disagree_with_the_graph() -> None:
    x = _leaf([1.0, 2.0])
    h = x * 1.0
    h = h * 2.0
    h._ctx.seq = 10**12  # as if unpickled from a process that had recorded many more ops
    w = _leaf([3.0, 3.0])
    (h * w).sum().backward()
    np.testing.assert_array_equal(x.grad, [6.0, 6.0])
    np.testing.assert_array_equal(w.grad, [2.0, 4.0])


def test_tensor_topological_order_falls_back_for_a_context_made_by_hand() -> None:
    x = _leaf([1.0])
    y = x * 3.0
    root = Tensor(y.data * 2.0, requires_grad=True)
    ctx = Context((True,), True)  # seq stays -1: not recorded through Function.apply
    ctx.parents, ctx.op = (
        (y,),
        type(y._ctx.op)(
            "Twice",
            (Function,),
            {
                "forward": staticmethod(lambda ctx, a: a * 2.0),
                "backward": staticmethod(lambda ctx, g: (g * 2.0,)),
            },
        ),
    )
    root._ctx = ctx
    assert topological_order(root) == [y, root]
    root.backward(np.ones(1))
    np.testing.assert_array_equal(x.grad, [6.0])


def test_tensor_sparse_grad_into_non_leaf_is_made_dense(rng):
    table = _leaf(rng.normal(size=(7, 3)))
    direct = _leaf(rng.normal(size=(7, 3)))
    ids = np.array([[0, 2, 2], [5, 0, 3]])
    scaled = table * 2.0
    (gather(scaled, ids).sum() + gather(direct, ids).sum()).backward()
    counts = np.bincount(ids.reshape(-1), minlength=7)[:, None] * np.ones((1, 3))
    assert isinstance(scaled.grad, np.ndarray)  # an op's output: made dense before Mul.backward
    np.testing.assert_array_equal(scaled.grad, counts)
    assert isinstance(table.grad, np.ndarray) and table.grad.shape == (7, 3)
    np.testing.assert_array_equal(table.grad, 2.0 * counts)
    assert isinstance(direct.grad, RowSparseGrad)  # a leaf keeps the row-sparse form for SGD
    np.testing.assert_array_equal(direct.grad.to_dense(), counts)


def test_tensor_no_grad_in_one_thread_leaves_others_recording() -> None:
    import threading

    inside, leave = threading.Event(), threading.Event()

    def frozen() -> None:
        with no_grad():
            inside.set()
            leave.wait(5)

    worker = threading.Thread(target=frozen)
    worker.start()
    inside.wait(5)
    x = Tensor(np.ones(2), requires_grad=True)
    y = (x * 2.0).sum()  # recorded here although the other thread is inside no_grad
    leave.set()
    worker.join()
    y.backward()
    assert np.array_equal(x.grad, [2.0, 2.0])
