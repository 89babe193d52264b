"""Tests for nerwin.engine.activations: erf accuracy, forwards vs numpy, logistic stability."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nerwin.engine import ACTIVATIONS, Tensor, activation
from nerwin.engine.activations import erf

_math_erf = np.vectorize(math.erf, otypes=[np.float64])
FINITE = st.floats(allow_nan=False, allow_infinity=False)


def _prelu_slope() -> np.ndarray:
    return np.array([0.1, 0.25, 0.4, 0.05, 0.3])


def _logistic(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


NUMPY_FORMULAS = {
    "logistic": _logistic,
    "tanh": lambda x: (np.exp(x) - np.exp(-x)) / (np.exp(x) + np.exp(-x)),
    "hardtanh": lambda x: np.where(x < -1.0, -1.0, np.where(x > 1.0, 1.0, x)),
    "relu": lambda x: x * (x > 0),
    "leaky_relu": lambda x: np.where(x > 0, x, 0.01 * x),
    "prelu": lambda x: np.where(x > 0, x, _prelu_slope() * x),
    "swish": lambda x: x * _logistic(x),
    "gelu": lambda x: 0.5 * x * (1.0 + _math_erf(x / math.sqrt(2.0))),
    "gelu_sigmoid": lambda x: x * _logistic(1.702 * x),
}


def test_activations_registry_has_all_nine():
    assert set(ACTIVATIONS) == set(NUMPY_FORMULAS)
    assert len(ACTIVATIONS) == 9
    assert activation("tanh") == ACTIVATIONS["tanh"].apply


def test_activations_erf_matches_math_erf_float64():
    x = np.concatenate(
        [
            np.linspace(-8.0, 8.0, 160_001),
            np.arange(-6.0, 6.0, 1.0 / 256.0),  # table points and the midpoints
            [0.0, -0.0, 1e-300, -1e-300, 5.999999, 6.000001, -40.0, 1e3],
        ]
    )
    got = erf(x)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, _math_erf(x), rtol=0, atol=1e-14)


def test_activations_erf_float32():
    x = np.linspace(-8.0, 8.0, 32_001).astype(np.float32)
    got = erf(x)
    assert got.dtype == np.float32
    want = _math_erf(x.astype(np.float64))
    np.testing.assert_allclose(got.astype(np.float64), want, rtol=0, atol=6e-8)  # ulp/2 near 1


@pytest.mark.parametrize("name", sorted(NUMPY_FORMULAS))
def test_activations_forward_matches_numpy(name, rng):
    x = np.concatenate(
        [
            rng.normal(size=(5, 5)) * 3.0,
            [[0.0, 1.0, -1.0, 0.5, -0.5], [2.0, -2.0, 1e-8, -1e-8, 7.5]],
        ]
    )
    extra = [Tensor(_prelu_slope())] if name == "prelu" else []
    out = ACTIVATIONS[name].apply(Tensor(x), *extra)
    assert out.shape == x.shape and out.dtype == np.float64
    np.testing.assert_allclose(out.data, NUMPY_FORMULAS[name](x), rtol=1e-12, atol=1e-15)


def test_activations_logistic_exact_at_extremes():
    for dtype in (np.float32, np.float64):
        x = Tensor(np.array([1e4, -1e4, 1000.0, -1000.0], dtype=dtype), requires_grad=True)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with np.errstate(over="raise", invalid="raise", divide="raise"):
                y = ACTIVATIONS["logistic"].apply(x)
                y.sum().backward()
        assert y.dtype == dtype and y.data.tolist() == [1.0, 0.0, 1.0, 0.0]
        assert x.grad.tolist() == [0.0, 0.0, 0.0, 0.0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_activations_logistic_raises_no_fp_flags(dtype):
    x = Tensor(np.array([1e4, -1e4], dtype=dtype), requires_grad=True)
    with np.errstate(all="raise"):
        y = ACTIVATIONS["logistic"].apply(x)
        y.sum().backward()
    assert y.data.tolist() == [1.0, 0.0]


def _logistic_of(value: float) -> float:
    return ACTIVATIONS["logistic"].apply(Tensor(np.array([value]))).item()


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=-30.0, max_value=30.0))
def test_activations_logistic_strictly_between_zero_and_one(x):
    assert 0.0 < _logistic_of(x) < 1.0


@settings(max_examples=200, deadline=None)
@given(FINITE)
def test_activations_logistic_symmetry(x):
    s = _logistic_of(x)
    assert 0.0 <= s <= 1.0
    assert 1.0 - s == pytest.approx(_logistic_of(-x), abs=2.3e-16)


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=-1e6, max_value=1e6))
def test_activations_erf_odd_and_bounded(x):
    value = erf(np.array([x]))[0]
    assert -1.0 <= value <= 1.0
    assert erf(np.array([-x]))[0] == -value
    assert value == pytest.approx(math.erf(x), abs=1e-14)


@settings(max_examples=100, deadline=None)
@given(st.floats(min_value=-1e6, max_value=1e6))
def test_activations_relu_family_ordering(x):
    arr = Tensor(np.array([x]))
    relu = ACTIVATIONS["relu"].apply(arr).item()
    leaky = ACTIVATIONS["leaky_relu"].apply(arr).item()
    assert relu >= 0.0 and relu >= x
    assert leaky == (x if x > 0 else 0.01 * x)
    assert -1.0 <= ACTIVATIONS["hardtanh"].apply(arr).item() <= 1.0
