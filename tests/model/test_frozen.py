"""The frozen scoring path: precomputed first-layer rows give the matrix path's probabilities."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nerwin import api
from nerwin.config import load_config
from nerwin.data.caps import N_CAPS
from nerwin.data.conll import read_conll
from nerwin.data.vocab import SPECIALS, Vocab
from nerwin.engine import ACTIVATIONS
from nerwin.errors import ConfigError
from nerwin.model.classifier import ModelShape, WindowClassifier
from nerwin.model.folder import load_model
from nerwin.model.frozen import FrozenScorer
from nerwin.model.tagger import CACHE_VARIABLE, FrozenTagger, Tagger, cache_megabytes

ROOT = Path(__file__).resolve().parents[2]
BUNDLED_TRAIN = ROOT / "data" / "default" / "train.txt"
BUNDLED_DEV = ROOT / "data" / "default" / "dev.txt"
TOLERANCE = 1e-5  # max |P(frozen) - P(matrix)|: float32 rounding
# Model kinds trained briefly for the agreement checks (config overrides).
KINDS = {
    "reference (d 50, H 300 relu, caps 5)": [],
    "two layers, tanh": ["model.hidden=[64,32]", "model.activation=tanh"],
    "prelu with suffix and shape": [
        "model.activation=prelu",
        "model.hidden=[100]",
        "model.suffix_dim=8",
        "model.shape_dim=4",
    ],
    "ensemble of two": ["train.ensemble=2", "model.hidden=[50]"],
}


def _train_kinds(tmp: Path, train: Path, dev: Path) -> dict[str, Tagger]:
    taggers = {}
    for i, (kind, overrides) in enumerate(KINDS.items()):
        config = load_config(
            None, [f"data.train={train}", f"data.dev={dev}", "train.epochs=1", *overrides]
        )
        result = api.train(config, tmp / f"kind{i}")
        taggers[kind] = load_model(result.out_dir / "model")[0]
    assert len(taggers["ensemble of two"].models) == 2
    return taggers


def assert_agree(tagger: Tagger, sentences: list[list[str]]) -> dict[str, float]:
    """Frozen paths against the matrix path on `sentences`; the largest differences found."""
    data = tagger.encode(sentences)
    matrix = tagger.window_probabilities(data, frozen=False)
    session = tagger.frozen()
    found = {
        "windows": tagger.window_probabilities(data, frozen=True),
        "words": session.probabilities(sentences),
        "words again (cached rows)": session.probabilities(sentences),
        "small cache (rows computed per chunk)": tagger.frozen(cache_mb=1).probabilities(sentences),
        "automatic choice": tagger.window_probabilities(data),
    }
    np.testing.assert_array_equal(found["words"], found["words again (cached rows)"])
    assert session.scorer is not None and session.scorer.cached_rows > 0
    cut = tagger.threshold
    worst = {}
    for name, probs in found.items():
        assert probs.dtype == matrix.dtype and probs.shape == matrix.shape, name
        worst[name] = float(np.abs(probs - matrix).max())
        assert worst[name] <= TOLERANCE, (name, worst[name])
        differ = (probs >= cut) != (matrix >= cut)
        assert np.all(np.abs(matrix[differ] - cut) <= TOLERANCE), name  # only at the threshold
    off = tagger.frozen(cache_mb=0)
    assert off.scorer is None
    np.testing.assert_array_equal(off.probabilities(sentences), matrix)  # 0 MB = matrix path
    return worst


@pytest.fixture(scope="module")
def bundled_kinds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Tagger]:
    return _train_kinds(tmp_path_factory.mktemp("frozen-kinds"), BUNDLED_TRAIN, BUNDLED_DEV)


@pytest.mark.parametrize("kind", list(KINDS))
def test_frozen_agrees_with_matrix_path_on_bundled_dev(
    bundled_kinds: dict[str, Tagger], kind: str
) -> None:
    sentences = [list(s.words) for s in read_conll(BUNDLED_DEV).sentences]
    worst = assert_agree(bundled_kinds[kind], sentences)
    assert max(worst.values()) > 0 or kind.startswith("ensemble")  # really another path


@pytest.mark.shared_data
def test_frozen_agrees_with_matrix_path_on_conll2003_dev(shared_conll: Path, tmp_path) -> None:
    # Train each kind for one epoch on the first 3,000 sentences of CoNLL-2003 train (a few
    # seconds), then compare the paths on all 51,362 tokens of dev.
    lines, blanks = [], 0
    with open(shared_conll / "train.txt", encoding="utf-8") as handle:
        for line in handle:
            lines.append(line)
            blanks += not line.strip()
            if blanks > 3000:
                break
    train = tmp_path / "train3000.txt"
    train.write_text("".join(lines), encoding="utf-8")
    dev = shared_conll / "dev.txt"
    sentences = [list(s.words) for s in read_conll(dev).sentences]
    for kind, tagger in _train_kinds(tmp_path, train, dev).items():
        worst = assert_agree(tagger, sentences)
        print(f"{kind}: max |diff| " + ", ".join(f"{k} {v:.1e}" for k, v in worst.items()))


# -- every activation, untrained models -------------------------------------------------------


def _random_tagger(
    rng: np.random.Generator, activation: str, hidden=(24,), members: int = 1, n_words: int = 60
):
    words = [_letters(i) for i in range(n_words)] + ["Paris", "London"]  # no digits: 1 -> 0
    vocab = Vocab(list(SPECIALS) + words)
    shape = ModelShape(len(vocab), 6, 5, hidden, activation, 3, N_CAPS)
    models = [WindowClassifier.initialise(shape, rng) for _ in range(members)]
    for model in models:  # larger weights than the initialisation: scores far from 0
        for name in ("W", "W1", "W2", "u"):
            if name in model.params:
                model.params[name].data *= 3
    return Tagger(models[0], vocab, 0.5, {}, tuple(models[1:])), words


def _letters(i: int) -> str:
    word = ""
    while True:
        i, r = divmod(i, 26)
        word += chr(ord("a") + r)
        if not i:
            return "w" + word


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("hidden", [(24,), (24, 12)])
def test_frozen_agrees_for_every_activation(
    rng: np.random.Generator, activation: str, hidden: tuple[int, ...]
) -> None:
    tagger, words = _random_tagger(rng, activation, hidden, members=2)
    sentences = [
        [str(w).upper() if rng.random() < 0.3 else str(w) for w in rng.choice(words, size=n)]
        for n in rng.integers(1, 30, size=40)
    ]
    assert_agree(tagger, sentences)


# -- the row cache ----------------------------------------------------------------------------


def test_frozen_cache_keeps_the_lowest_keys_when_room_is_short(rng: np.random.Generator) -> None:
    tagger, _ = _random_tagger(rng, "relu", (8,))
    model = tagger.model
    row_bytes = 5 * 8 * 4
    scorer = FrozenScorer((model,), cache_bytes=row_bytes * (5 * 256 + 1 + 10))  # 10 + scratch
    assert scorer.capacity == 10
    keys = np.array([[40, 7, 3, 90, 12, 3, 55, 61, 70, 80, 81, 82]] * 5)  # (w, n)
    words, caps = np.divmod(keys.T, scorer.n_caps)
    want = WindowClassifier.predict_proba(model, words, caps)
    np.testing.assert_allclose(scorer.probabilities(keys), want, atol=1e-6)
    assert scorer.cached == 10
    cached = np.flatnonzero(scorer._slot_of > 0)
    assert cached.tolist() == sorted(set(keys[0].tolist()))[:10]  # most frequent words first
    np.testing.assert_allclose(scorer.probabilities(keys), want, atol=1e-6)


def test_frozen_batches_with_many_uncached_keys_are_scored_in_parts(
    rng: np.random.Generator,
) -> None:
    tagger, _ = _random_tagger(rng, "relu", (8,), members=2, n_words=4000)
    scorer = FrozenScorer(tagger.models, cache_bytes=0)  # no room: every key goes to scratch
    assert scorer.capacity == 0
    n = 3000  # windows of random keys: far more distinct keys than the scratch area holds
    keys = rng.integers(0, scorer.n_keys, size=(5, n))
    assert len(np.unique(keys)) > scorer.scratch_rows
    words, caps = np.divmod(keys.T, scorer.n_caps)
    want = sum(WindowClassifier.predict_proba(m, words, caps) for m in tagger.models) / 2
    np.testing.assert_allclose(scorer.probabilities(keys), want, atol=1e-6)
    assert scorer.cached == 0


def test_frozen_rows_are_computed_once_per_key(rng: np.random.Generator) -> None:
    tagger, _ = _random_tagger(rng, "relu", n_words=4000)  # too many keys to compute them all
    session = tagger.frozen()
    assert not session.scorer.eager
    session.probabilities([["Paris", "wb", "wc"]])
    first = session.scorer.cached_rows
    assert first == 5  # (paris, Title), (wb, lower), (wc, lower) and the two padding keys
    session.probabilities([["wc", "Paris"]])
    assert session.scorer.cached_rows == first  # nothing new
    session.probabilities([["PARIS"]])  # same word, another caps class: a new key
    assert session.scorer.cached_rows == first + 1


def test_frozen_tiny_key_space_is_computed_at_once(rng: np.random.Generator) -> None:
    tagger, _ = _random_tagger(rng, "relu")
    scorer = FrozenScorer(tagger.models, 256 << 20)
    keys = scorer.keys(np.array([[1, 1, 5, 2, 2]]), np.array([[0, 0, 1, 0, 0]]))
    scorer.probabilities(keys)
    assert scorer.eager and scorer.cached_rows == tagger.model.shape.vocab_size * N_CAPS


def test_frozen_cache_megabytes_from_argument_or_environment(monkeypatch) -> None:
    monkeypatch.delenv(CACHE_VARIABLE, raising=False)
    assert cache_megabytes() == 160
    assert cache_megabytes(12.5) == 12.5
    monkeypatch.setenv(CACHE_VARIABLE, "64")
    assert cache_megabytes() == 64 and cache_megabytes(0) == 0
    monkeypatch.setenv(CACHE_VARIABLE, "lots")
    with pytest.raises(ConfigError, match=CACHE_VARIABLE):
        cache_megabytes()
    with pytest.raises(ConfigError, match=">= 0"):
        cache_megabytes(-1)


def test_frozen_tagger_checks_its_input(rng: np.random.Generator) -> None:
    tagger, _ = _random_tagger(rng, "relu")
    session = FrozenTagger(tagger)
    with pytest.raises(TypeError):
        session.probabilities("Paris is nice")
    assert session.probabilities([]).shape == (0,)
    assert session.probabilities([[]]).shape == (0,)
    with pytest.raises(ValueError, match="3 words"):
        session.token_probabilities(["a", "b", "c"], np.array([2]))
