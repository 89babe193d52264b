"""WindowClassifier: parameter names and shapes, forward, predict, overfitting, copies, seeding."""

from __future__ import annotations

import numpy as np
import pytest

from nerwin.data.caps import N_CAPS
from nerwin.engine import Tensor, is_grad_enabled
from nerwin.model.classifier import PRELU_INIT, ModelShape, WindowClassifier
from nerwin.model.sgd import SGD

V, D, WIN = 40, 8, 5


def _model(rng: np.random.Generator, **kw) -> WindowClassifier:
    shape = ModelShape(
        **{
            "vocab_size": V,
            "embedding_dim": D,
            "window": WIN,
            "hidden": (16,),
            "caps_dim": 0,
            "n_caps": 0,
            **kw,
        }
    )
    return WindowClassifier.initialise(shape, rng)


def _batch(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    return rng.integers(0, V, (n, WIN)), rng.integers(0, N_CAPS, (n, WIN))


def test_model_parameter_names_and_shapes_one_layer(rng: np.random.Generator) -> None:
    model = _model(rng, hidden=(16,), caps_dim=3, n_caps=N_CAPS)
    shapes = {k: t.shape for k, t in model.params.items()}
    assert shapes == {
        "E": (V, D),
        "F": (N_CAPS, 3),
        "W": (WIN * (D + 3), 16),
        "b": (16,),
        "u": (16, 1),
        "c": (1,),
    }
    assert all(t.requires_grad and t.name == k for k, t in model.params.items())


def test_model_parameter_names_without_caps(rng: np.random.Generator) -> None:
    shapes = {k: t.shape for k, t in _model(rng).params.items()}
    assert shapes == {"E": (V, D), "W": (WIN * D, 16), "b": (16,), "u": (16, 1), "c": (1,)}


def test_model_parameter_names_and_shapes_two_layers(rng: np.random.Generator) -> None:
    model = _model(rng, hidden=(16, 4), caps_dim=2, n_caps=N_CAPS)
    shapes = {k: t.shape for k, t in model.params.items()}
    assert shapes == {
        "E": (V, D),
        "F": (N_CAPS, 2),
        "W1": (WIN * (D + 2), 16),
        "b1": (16,),
        "W2": (16, 4),
        "b2": (4,),
        "u": (4, 1),
        "c": (1,),
    }


def test_model_prelu_slopes(rng: np.random.Generator) -> None:
    one = _model(rng, activation="prelu")
    assert one.params["a"].shape == (16,)
    np.testing.assert_array_equal(one.params["a"].data, PRELU_INIT)
    two = _model(rng, hidden=(16, 4), activation="prelu")
    assert two.params["a1"].shape == (16,) and two.params["a2"].shape == (4,)
    assert "a" not in two.params
    assert "a" not in _model(rng, activation="relu").params


def test_model_biases_start_at_zero_and_dtype(rng: np.random.Generator) -> None:
    model = _model(rng, hidden=(16, 4))
    for name in ("b1", "b2", "c"):
        np.testing.assert_array_equal(model.params[name].data, 0.0)
    assert all(t.dtype == np.float32 for t in model.params.values())
    assert all(t.data.flags.c_contiguous for t in model.params.values())


def test_model_initialise_uses_given_embeddings(rng: np.random.Generator) -> None:
    table = rng.normal(size=(V, D))
    shape = ModelShape(V, D, WIN, (16,))
    model = WindowClassifier.initialise(shape, rng, embeddings=table)
    np.testing.assert_array_equal(model.params["E"].data, table.astype(np.float32))


@pytest.mark.parametrize("hidden", [(16,), (16, 4), (8, 8, 8)])
@pytest.mark.parametrize("caps_dim", [0, 3])
def test_model_forward_shape(
    rng: np.random.Generator, hidden: tuple[int, ...], caps_dim: int
) -> None:
    model = _model(rng, hidden=hidden, caps_dim=caps_dim, n_caps=N_CAPS if caps_dim else 0)
    words, caps = _batch(rng, 7)
    out = model.forward(words, caps if caps_dim else None)
    assert isinstance(out, Tensor)
    assert out.shape == (7,)
    assert np.isfinite(out.data).all()


def test_model_forward_depends_on_caps(rng: np.random.Generator) -> None:
    model = _model(rng, caps_dim=3, n_caps=N_CAPS)
    words, caps = _batch(rng, 6)
    a = model.forward(words, caps).data
    b = model.forward(words, (caps + 1) % N_CAPS).data
    assert not np.allclose(a, b)


def test_model_predict_proba_in_open_unit_interval(rng: np.random.Generator) -> None:
    model = _model(rng, caps_dim=3, n_caps=N_CAPS)
    words, caps = _batch(rng, 50)
    probs = model.predict_proba(words, caps)
    assert isinstance(probs, np.ndarray) and probs.shape == (50,)
    assert ((probs > 0) & (probs < 1)).all()
    logits = model.forward(words, caps).data.astype(np.float64)
    np.testing.assert_allclose(probs, 1 / (1 + np.exp(-logits)), rtol=1e-5)


def test_model_predict_proba_extreme_logits_stay_finite(rng: np.random.Generator) -> None:
    model = _model(rng)
    model.params["c"].data[:] = 1e4
    with np.errstate(over="raise", invalid="raise"):
        high = model.predict_proba(*_batch(rng, 4)[:1])
    model.params["c"].data[:] = -1e4
    with np.errstate(over="raise", invalid="raise"):
        low = model.predict_proba(*_batch(rng, 4)[:1])
    np.testing.assert_array_equal(high, 1.0)
    np.testing.assert_array_equal(low, 0.0)


def test_model_predict_proba_records_no_graph(rng: np.random.Generator, monkeypatch) -> None:
    model = _model(rng)
    seen = []
    forward = model.forward

    def spy(words, caps=None, extra=None):
        out = forward(words, caps, extra)
        seen.append((is_grad_enabled(), out._ctx, out.requires_grad))
        return out

    monkeypatch.setattr(model, "forward", spy)
    model.predict_proba(_batch(rng, 5)[0])
    assert seen == [(False, None, False)]
    assert is_grad_enabled()  # restored afterwards
    assert all(t.grad is None for t in model.params.values())


def test_model_loss_backward_fills_every_gradient(rng: np.random.Generator) -> None:
    model = _model(rng, hidden=(16, 4), caps_dim=3, n_caps=N_CAPS, activation="prelu")
    words, caps = _batch(rng, 9)
    model.loss(words, caps, (rng.random(9) < 0.5).astype(np.float32)).backward()
    assert all(t.grad is not None for t in model.params.values())


def test_model_overfits_twenty_windows(rng: np.random.Generator) -> None:
    model = _model(rng, caps_dim=3, n_caps=N_CAPS)
    words, caps = _batch(rng, 20)
    labels = np.array([0, 1] * 10, dtype=np.float32)
    optimizer = SGD(model.params, lr=0.5)
    first = float(model.loss(words, caps, labels).data)
    for _ in range(300):
        loss = model.loss(words, caps, labels)
        loss.backward()
        optimizer.step()
    final = float(model.loss(words, caps, labels).data)
    assert final < 0.05 < first
    np.testing.assert_array_equal(model.predict_proba(words, caps) >= 0.5, labels == 1)


def test_model_astype_copies(rng: np.random.Generator) -> None:
    model = _model(rng, caps_dim=3, n_caps=N_CAPS)
    wide = model.astype("float64")
    assert wide.shape.dtype == "float64" and model.shape.dtype == "float32"
    assert set(wide.params) == set(model.params)
    for name, t in wide.params.items():
        assert t.dtype == np.float64 and t.requires_grad
        np.testing.assert_array_equal(t.data, model.params[name].data.astype(np.float64))
        assert not np.shares_memory(t.data, model.params[name].data)
    before = model.params["E"].data.copy()
    wide.params["E"].data[:] = 7.0
    np.testing.assert_array_equal(model.params["E"].data, before)
    same = model.astype("float32")
    same.params["W"].data[:] = 0.0
    assert np.abs(model.params["W"].data).sum() > 0  # a copy even when the dtype is unchanged
    words, caps = _batch(rng, 5)
    np.testing.assert_allclose(
        model.astype("float64").forward(words, caps).data,
        model.forward(words, caps).data,
        rtol=1e-5,
        atol=1e-6,
    )


def test_model_init_deterministic_per_seed() -> None:
    shape = ModelShape(V, D, WIN, (16, 4), "prelu", 3, N_CAPS)
    a = WindowClassifier.initialise(shape, np.random.default_rng(7)).arrays()
    b = WindowClassifier.initialise(shape, np.random.default_rng(7)).arrays()
    c = WindowClassifier.initialise(shape, np.random.default_rng(8)).arrays()
    assert a.keys() == b.keys() == c.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert not np.array_equal(a["E"], c["E"]) and not np.array_equal(a["W1"], c["W1"])
