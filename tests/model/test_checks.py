"""nerwin.model.checks: whole-model gradient checks, numeric and by hand, per activation."""

from __future__ import annotations

import numpy as np
import pytest

from nerwin.engine import ACTIVATIONS
from nerwin.engine.gradcheck import dense, relative_error
from nerwin.model.checks import (
    check_model,
    check_model_by_hand,
    demo_batch,
    demo_model,
    hand_gradients,
)

CAPS = [True, False]


def _failures(results) -> list[str]:
    return [r.line() for r in results if not r.ok]


@pytest.mark.parametrize("caps", CAPS, ids=["caps", "no caps"])
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_checks_check_model_passes(rng, name, caps):
    model = demo_model(rng, name, caps=caps)
    words, caps_ids, labels = demo_batch(rng, model)
    results = check_model(model, words, caps_ids, labels, rng)
    assert {r.name for r in results} == {f"model dJ/d{k}" for k in model.params}
    assert ("model dJ/dF" in {r.name for r in results}) == caps
    assert not _failures(results), "\n".join(_failures(results))


@pytest.mark.parametrize("caps", CAPS, ids=["caps", "no caps"])
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_checks_check_model_by_hand_passes(rng, name, caps):
    model = demo_model(rng, name, caps=caps)
    words, caps_ids, labels = demo_batch(rng, model)
    results = check_model_by_hand(model, words, caps_ids, labels)
    assert {r.name for r in results} == {f"by hand dJ/d{k}" for k in model.params}
    assert not _failures(results), "\n".join(_failures(results))


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_checks_check_model_two_hidden_layers(rng, name):
    model = demo_model(rng, name, hidden=(5, 4))
    words, caps_ids, labels = demo_batch(rng, model)
    results = check_model(model, words, caps_ids, labels, rng)
    names = {r.name for r in results}
    assert {"model dJ/dW1", "model dJ/dW2", "model dJ/db1", "model dJ/db2"} <= names
    assert names == {f"model dJ/d{k}" for k in model.params}
    assert not _failures(results), "\n".join(_failures(results))


def test_checks_by_hand_refuses_two_hidden_layers(rng):
    model = demo_model(rng, "tanh", hidden=(5, 4))
    words, caps_ids, labels = demo_batch(rng, model)
    with pytest.raises(ValueError, match="one hidden layer"):
        check_model_by_hand(model, words, caps_ids, labels)


@pytest.mark.parametrize("perturbed", ["W", "u", "E"])
def test_checks_hand_gradients_detect_perturbed_parameter(rng, perturbed):
    model = demo_model(rng, "tanh")
    words, caps_ids, labels = demo_batch(rng, model)
    model.loss(words, caps_ids, labels).backward()

    def worst() -> float:
        expected = hand_gradients(model, words, caps_ids, labels)
        return max(
            float(relative_error(dense(model.params[k].grad, v.shape), v).max())
            for k, v in expected.items()
        )

    assert worst() <= 1e-6  # control: unperturbed, hand and autodiff agree
    model.params[perturbed].data += 0.1  # the autodiff gradients are now stale
    assert worst() > 1e-4


@pytest.mark.parametrize("caps", CAPS, ids=["caps", "no caps"])
def test_checks_demo_batch_repeats_word_ids(rng, caps):
    model = demo_model(rng, "tanh", caps=caps)
    words, caps_ids, labels = demo_batch(rng, model)
    assert words.shape == (6, model.shape.window)
    ids, counts = np.unique(words, return_counts=True)
    assert counts.max() >= 2 and len(ids) < words.size
    assert np.all(words[:2, :2] == 0)  # padding shared by the first two windows
    assert np.all((words >= 0) & (words < model.shape.vocab_size))
    assert set(labels.tolist()) == {0.0, 1.0}
    if caps:
        assert caps_ids.shape == words.shape
        assert np.all((caps_ids >= 0) & (caps_ids < model.shape.n_caps))
    else:
        assert caps_ids is None


@pytest.mark.parametrize("name", ["relu", "tanh"])
def test_checks_check_model_covers_aux_heads(rng, name):
    model = demo_model(rng, name, aux=True)
    words, caps_ids, labels = demo_batch(rng, model)
    results = check_model(model, words, caps_ids, labels, rng)
    checked = {r.name.split("dJ/d")[1].split("[")[0].split()[0] for r in results}
    assert {"U_aux", "c_aux"} <= checked
    assert all(r.ok for r in results), [r for r in results if not r.ok]
