"""Tests for the suffix and word-shape features."""

from __future__ import annotations

import numpy as np
import pytest

from nerwin.data.encode import encode_sentences
from nerwin.data.features import PAD_ID, UNK_ID, TokenFeature, word_shape, word_suffix
from nerwin.data.vocab import build_vocab
from nerwin.model.checks import check_model, check_model_by_hand, demo_batch, demo_extra, demo_model


@pytest.mark.parametrize(
    "word, shape",
    [
        ("Paris", "Xx"),
        ("U.S.", "X.X."),
        ("1996-08-22", "d-d-d"),
        ("McDonald", "XxXx"),
        ("iPhone", "xXx"),
        ("São", "Xx"),
        (",", ","),
        ("LONDON", "X"),
    ],
)
def test_features_word_shape(word: str, shape: str) -> None:
    assert word_shape(word) == shape


def test_features_suffix_is_last_three_lowercased() -> None:
    assert [word_suffix(w) for w in ("Kazakhstan", "UK", "Berlin")] == ["tan", "uk", "lin"]


def test_features_fit_keeps_values_seen_twice_and_maps_the_rest_to_unk() -> None:
    feature = TokenFeature.fit("suffix", ["Pakistan", "Afghanistan", "Paris", "Berlin"])
    assert feature.values[:2] == ["<pad>", "<unk>"]
    assert "tan" in feature.index and "ris" not in feature.index
    ids = feature.encode(["Uzbekistan", "Paris"])
    assert ids.tolist() == [feature.index["tan"], UNK_ID]


def test_features_windows_pad_with_zero() -> None:
    sentences = [["Flights", "to", "Kazakhstan"], ["Oslo"]]
    feature = TokenFeature.fit("shape", [w for s in sentences for w in s], min_count=1)
    data = encode_sentences(sentences, build_vocab(sentences), 5, False, {"shape": feature})
    shape_windows = data.extra["shape"]
    assert shape_windows.shape == (4, 5)
    assert shape_windows[0, :2].tolist() == [PAD_ID, PAD_ID]
    assert shape_windows[3].tolist() == [PAD_ID, PAD_ID, feature.index["Xx"], PAD_ID, PAD_ID]


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_features_gradients_of_feature_tables(rng: np.random.Generator, activation: str) -> None:
    model = demo_model(rng, activation, features=True)
    words, caps, labels = demo_batch(rng, model)
    extra = demo_extra(rng, model)
    results = check_model(model, words, caps, labels, rng, extra) + check_model_by_hand(
        model, words, caps, labels, 1e-6, extra
    )
    names = {r.name for r in results}
    assert {
        "model dJ/dsuffix",
        "model dJ/dshape",
        "by hand dJ/dsuffix",
        "by hand dJ/dshape",
    } <= names
    assert all(r.ok for r in results), [r.line() for r in results if not r.ok]
