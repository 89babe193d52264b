"""Gradient checks of a whole window classifier: numeric, and against hand-derived formulas."""

from __future__ import annotations

import numpy as np

from nerwin.engine import ACTIVATIONS, Tensor
from nerwin.engine.activations import KINKS
from nerwin.engine.gradcheck import GradResult, check_gradients, dense, relative_error
from nerwin.engine.loss import stable_sigmoid
from nerwin.model.classifier import AuxTargets, ModelShape, WindowClassifier

Array = np.ndarray


def demo_batch(
    rng: np.random.Generator, model: WindowClassifier, n: int = 6
) -> tuple[Array, Array | None, Array]:
    """A few windows with repeated word ids (padding at the edges) and mixed labels."""
    shape = model.shape
    vocab = min(shape.vocab_size, 8)  # few distinct ids, so they repeat
    words = rng.integers(0, vocab, (n, shape.window))
    words[0, :2] = words[1, :2] = 0
    caps = rng.integers(0, shape.n_caps, (n, shape.window)) if shape.caps_dim else None
    labels = (np.arange(n) % 2).astype(np.float64)
    return words, caps, labels


def demo_extra(rng: np.random.Generator, model: WindowClassifier, n: int = 6) -> dict[str, Array]:
    """Feature ids for the model's extra tables (suffix, shape, gazetteer), with repeats."""
    return {
        name: rng.integers(0, min(rows, 4), (n, model.shape.window))
        for name, rows, _ in model.shape.extra
    }


def demo_model(
    rng: np.random.Generator,
    activation: str = "tanh",
    caps: bool = True,
    hidden: tuple[int, ...] = (7,),
    features: bool = False,
    aux: bool = False,
) -> WindowClassifier:
    """A tiny float64 window classifier for checks (suffix/shape/gazetteer tables if `features`,
    heads if `aux`)."""
    extra = (("suffix", 5, 2), ("shape", 4, 2), ("gazetteer", 5, 2)) if features else ()
    shape = ModelShape(
        vocab_size=12,
        embedding_dim=4,
        window=5,
        hidden=hidden,
        activation=activation,
        caps_dim=3 if caps else 0,
        n_caps=6 if caps else 0,
        dtype="float64",
        extra=extra,
        aux_types=("ORG", "PER") if aux else (),
    )
    return WindowClassifier.initialise(shape, rng)


def smooth_windows(
    model: WindowClassifier,
    words: Array,
    caps: Array | None,
    margin: float,
    extra: dict[str, Array] | None = None,
) -> Array:
    """Indices of windows whose every pre-activation is at least `margin` from a kink."""
    kinks = KINKS.get(model.shape.activation, ())
    ok = np.ones(len(words), dtype=bool)
    for z in model.astype("float64").pre_activations(words, caps, extra):
        for kink in kinks:
            ok &= np.abs(z - kink).min(axis=1) >= margin
    return np.flatnonzero(ok)


def check_model(
    model: WindowClassifier,
    words: Array,
    caps: Array | None,
    labels: Array,
    rng: np.random.Generator,
    extra: dict[str, Array] | None = None,
    **kwargs,
) -> list[GradResult]:
    """Central differences for every parameter of `model` (float64) on one batch.

    A model with auxiliary heads gets random 0/1 targets for them, so U_aux and c_aux are
    checked too.
    """
    model = model.astype("float64")
    k = len(model.shape.aux_types)
    aux = AuxTargets(rng.integers(0, 2, (len(words), k)).astype(np.float64), 0.5) if k else None
    return check_gradients(
        lambda: model.loss(words, caps, labels, extra=extra, aux=aux),
        model.params,
        prefix="model dJ/d",
        rng=rng,
        **kwargs,
    )


def check_model_by_hand(
    model: WindowClassifier,
    words: Array,
    caps: Array | None,
    labels: Array,
    tol: float = 1e-6,
    extra: dict[str, Array] | None = None,
) -> list[GradResult]:
    """Autodiff gradients against delta = u * f'(z), dW = x^T delta, ... (one hidden layer)."""
    if len(model.shape.hidden) != 1:
        raise ValueError("the hand-derived check covers one hidden layer")
    model = model.astype("float64")
    for p in model.params.values():
        p.grad = None
    model.loss(words, caps, labels, extra=extra).backward()
    expected = hand_gradients(model, words, caps, labels, extra)
    results = []
    for name, want in expected.items():
        got = dense(model.params[name].grad, want.shape)
        rel = relative_error(got, want)
        worst = np.unravel_index(int(np.argmax(rel)), rel.shape)
        results.append(
            GradResult(
                f"by hand dJ/d{name}",
                float(np.abs(got - want).max()),
                float(rel[worst]),
                tuple(int(i) for i in worst),
                rel.size,
                tol,
            )
        )
    return results


def hand_gradients(
    model: WindowClassifier,
    words: Array,
    caps: Array | None,
    labels: Array,
    extra: dict[str, Array] | None = None,
) -> dict[str, Array]:
    """The matrix-calculus gradients of the mean cross-entropy, computed with plain numpy."""
    p = model.arrays()
    ids = {"E": words, "F": caps, **(extra or {})}
    n = len(words)
    x = np.concatenate(
        [p[name][ids[name][:, pos]] for name, pos, _ in model.input_blocks()], axis=1
    )
    z = x @ p["W"] + p["b"]
    h, f_prime = _activation_and_slope(model, z)
    s = h @ p["u"][:, 0] + p["c"][0]
    ds = (stable_sigmoid(s) - labels) / n  # dJ/ds for the mean cross-entropy
    delta = np.outer(ds, p["u"][:, 0]) * f_prime  # dJ/dz = dJ/ds * u * f'(z)
    grads = {"u": h.T @ ds[:, None], "c": np.array([ds.sum()]), "W": x.T @ delta, "b": delta.sum(0)}
    dx = delta @ p["W"].T  # dJ/dx = delta W^T
    for name, pos, block in model.input_blocks():  # each slot's gradient goes to its row
        grads.setdefault(name, np.zeros(p[name].shape))
        np.add.at(grads[name], ids[name][:, pos], dx[:, block])
    if "a" in p:
        grads["a"] = (np.outer(ds, p["u"][:, 0]) * np.where(z > 0, 0.0, z)).sum(0)
    return grads


def _activation_and_slope(
    model: WindowClassifier, z: Array, h: float = 1e-6
) -> tuple[Array, Array]:
    """f(z) and f'(z), the slope by an elementwise central difference (independent of backward)."""
    op = ACTIVATIONS[model.shape.activation]
    extra = [Tensor(model.params["a"].data)] if "a" in model.params else []

    def f(values: Array) -> Array:
        return op.apply(Tensor(values), *extra).data

    return f(z), (f(z + h) - f(z - h)) / (2 * h)
