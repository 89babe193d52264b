"""The training loop: learning, determinism, NaN guard, early stopping, pos_weight and unk_prob."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from nerwin.config import TrainConfig
from nerwin.data.caps import N_CAPS
from nerwin.data.encode import encode_sentences
from nerwin.data.vocab import UNK_ID, Vocab, build_vocab
from nerwin.errors import TrainingDiverged
from nerwin.metrics import PRF, Scores
from nerwin.model.classifier import ModelShape, WindowClassifier
from nerwin.training.loop import (
    Batch,
    EpochReport,
    Hooks,
    Interrupted,
    TrainingData,
    batches,
    shuffled,
    train_epochs,
)

PLACES = ["Paris", "Berlin", "Oslo", "Lima", "Cairo", "Tokyo"]
LETTERS = "abcdefghijklmnopqrstuvwxyz"
FILLER = [
    "the",
    "a",
    "man",
    "went",
    "saw",
    "big",
    "old",
    "dog",
    "house",
    "and",
    "then",
    "Anna",
    "Bob",
]


def _corpus(
    rng: np.random.Generator, n: int, n_rare: int = 0
) -> tuple[list[list[str]], np.ndarray]:
    """Sentences where a place word right after 'in' is a location (label 1), nothing else is.

    The first `n_rare` sentences end with a word seen only once (hapaxaa, hapaxba, ...; no
    digits, since digits normalise to 0).
    """
    sentences, labels = [], []
    for i in range(n):
        words = [FILLER[i] for i in rng.integers(0, len(FILLER), int(rng.integers(2, 7)))]
        tags = [0] * len(words)
        at = int(rng.integers(0, len(words) + 1))
        if rng.random() < 0.6:
            words[at:at] = ["in", PLACES[int(rng.integers(len(PLACES)))]]
            tags[at:at] = [0, 1]
        else:
            words[at:at] = ["in", FILLER[int(rng.integers(len(FILLER)))]]
            tags[at:at] = [0, 0]
        if i < n_rare:
            words.append("hapax" + LETTERS[i % 26] + LETTERS[i // 26])
            tags.append(0)
        sentences.append(words)
        labels += tags
    return sentences, np.array(labels, dtype=np.float32)


def _setup(
    seed: int = 0, n: int = 120, caps_dim: int = 2, activation: str = "tanh", n_rare: int = 0
) -> tuple[WindowClassifier, TrainingData, Vocab]:
    rng = np.random.default_rng(seed)
    sentences, labels = _corpus(rng, n, n_rare)
    vocab = build_vocab(sentences)
    windows = encode_sentences(sentences, vocab, 5, with_caps=caps_dim > 0)
    shape = ModelShape(len(vocab), 8, 5, (12,), activation, caps_dim, N_CAPS if caps_dim else 0)
    model = WindowClassifier.initialise(shape, np.random.default_rng(seed + 100))
    return model, TrainingData(windows, labels, vocab.counts == 1), vocab


def _cfg(**kw) -> TrainConfig:
    return TrainConfig(**{"epochs": 5, "batch_size": 16, "lr": 0.5, "patience": 10, **kw})


def _run(
    model: WindowClassifier, data: TrainingData, cfg: TrainConfig, evaluate=None, seed: int = 0
) -> list[EpochReport]:
    return [
        report
        for report, _ in train_epochs(
            model, data, cfg, np.random.default_rng(seed), hooks=Hooks(evaluate=evaluate)
        )
    ]


def test_training_loss_improves_across_epochs() -> None:
    model, data, _ = _setup()
    reports = _run(model, data, _cfg(epochs=6))
    losses = [r.loss for r in reports]
    assert [r.epoch for r in reports] == [1, 2, 3, 4, 5, 6]
    assert losses[-1] < 0.5 * losses[0], losses
    assert losses[-1] < losses[1] < losses[0]
    assert all(math.isfinite(x) for x in losses)
    assert reports[-1].stop and not any(r.stop for r in reports[:-1])
    probs = model.predict_proba(data.windows.words, data.windows.caps)
    assert ((probs >= 0.5) == (data.labels == 1)).mean() > 0.95


def test_training_report_fields() -> None:
    model, data, _ = _setup(n=30)
    (report,) = _run(model, data, _cfg(epochs=1, lr=0.2))
    assert report.lr == 0.2 and report.dev is None and report.best
    assert report.seconds > 0 and report.windows_per_s > 0
    assert set(report.to_dict()) == {
        "epoch",
        "loss",
        "lr",
        "seconds",
        "windows_per_s",
        "best",
        "diagnostics",
        "dev",
    }


def test_training_lr_decay() -> None:
    model, data, _ = _setup(n=30)
    reports = _run(model, data, _cfg(epochs=3, lr=0.4, lr_decay=1.0))
    assert [r.lr for r in reports] == pytest.approx([0.4, 0.2, 0.4 / 3])


def test_training_same_seed_same_weights() -> None:
    runs = []
    for _ in range(2):
        model, data, _ = _setup(seed=3)
        reports = _run(model, data, _cfg(epochs=3, unk_prob=0.3, pos_weight=2.0), seed=9)
        runs.append((model.arrays(), [r.loss for r in reports]))
    (a, loss_a), (b, loss_b) = runs
    assert loss_a == loss_b
    for name in a:
        assert a[name].tobytes() == b[name].tobytes(), name


def test_training_different_seed_different_weights() -> None:
    model_a, data_a, _ = _setup(seed=3)
    model_b, data_b, _ = _setup(seed=3)
    _run(model_a, data_a, _cfg(epochs=1), seed=1)
    _run(model_b, data_b, _cfg(epochs=1), seed=2)
    assert not np.array_equal(model_a.params["W"].data, model_b.params["W"].data)


def test_training_huge_lr_raises_diverged() -> None:
    model, data, _ = _setup(caps_dim=0, activation="relu")  # unbounded, so the logits overflow
    # the overflow is the point here
    with pytest.raises(TrainingDiverged) as info, np.errstate(over="ignore", invalid="ignore"):
        _run(model, data, _cfg(lr=1e6, epochs=20))
    assert info.value.lr == 1e6
    assert "lr=1e+06" in str(info.value)
    assert f"step {info.value.step}" in str(info.value)


def _nan_after(model: WindowClassifier, monkeypatch, calls_before_nan: int) -> list[int]:
    """Make model.loss return NaN from call number `calls_before_nan + 1` on."""
    calls = [0]
    loss = model.loss

    def patched(*args, **kwargs):
        calls[0] += 1
        out = loss(*args, **kwargs)
        if calls[0] > calls_before_nan:
            out.data = np.full_like(out.data, np.nan)
        return out

    monkeypatch.setattr(model, "loss", patched)
    return calls


def test_training_nan_loss_raises_diverged_naming_step_and_lr(monkeypatch) -> None:
    model, data, _ = _setup()
    _nan_after(model, monkeypatch, 2)
    with pytest.raises(TrainingDiverged) as info:
        _run(model, data, _cfg(lr=0.125))
    err = info.value
    assert err.step == 3 and err.lr == 0.125 and math.isnan(err.loss)
    assert "step 3" in str(err) and "lr=0.125" in str(err)


def test_training_nan_loss_does_not_update_weights(monkeypatch) -> None:
    model, data, _ = _setup()
    before = {k: v.copy() for k, v in model.arrays().items()}
    _nan_after(model, monkeypatch, 0)
    with pytest.raises(TrainingDiverged):
        _run(model, data, _cfg())
    for name, array in model.arrays().items():
        assert array.tobytes() == before[name].tobytes(), name


def test_training_nan_in_later_epoch_names_global_step(monkeypatch) -> None:
    model, data, _ = _setup()
    steps_per_epoch = math.ceil(len(data.labels) / 16)
    _nan_after(model, monkeypatch, steps_per_epoch + 1)  # the 2nd step of epoch 2
    with pytest.raises(TrainingDiverged) as info:
        _run(model, data, _cfg(lr=0.4, lr_decay=1.0))
    assert info.value.lr == pytest.approx(0.2)  # the decayed lr in force
    assert info.value.step == steps_per_epoch + 2  # steps count across epochs, not per epoch


def _scores(f1_percent: int) -> Scores:
    """Scores whose entity F1 is f1_percent / 100 (100 gold, 100 predicted)."""
    entity = PRF(f1_percent, 100, 100)
    return Scores(entity, PRF(0, 0, 0), 10, 1)


def _fake_evaluate(values: list[int]):
    seen = iter(values)
    return lambda model: _scores(next(seen))


def test_training_early_stopping_after_patience() -> None:
    model, data, _ = _setup(n=30)
    evaluate = _fake_evaluate([90, 80, 70, 60, 50, 40])
    reports = _run(model, data, _cfg(epochs=10, patience=2), evaluate)
    assert [r.epoch for r in reports] == [1, 2, 3]
    assert [r.best for r in reports] == [True, False, False]
    assert [r.stop for r in reports] == [False, False, True]
    assert [r.dev.entity.f1 for r in reports] == [0.9, 0.8, 0.7]


def test_training_best_flags_and_patience_reset() -> None:
    model, data, _ = _setup(n=30)
    f1 = [50, 70, 70, 60, 80, 75, 74, 73, 99, 99]
    reports = _run(model, data, _cfg(epochs=10, patience=3), _fake_evaluate(f1))
    assert [r.best for r in reports] == [True, True, False, False, True, False, False, False]
    assert [r.stop for r in reports] == [False] * 7 + [True]


def test_training_stops_at_last_epoch_without_evaluate() -> None:
    model, data, _ = _setup(n=30)
    reports = _run(model, data, _cfg(epochs=3, patience=1))
    assert len(reports) <= 3 and reports[-1].stop
    assert reports[0].best  # without dev scores the lowest loss is best


def _spy_on_batches(model: WindowClassifier, monkeypatch) -> list[tuple]:
    seen = []
    loss = model.loss

    def spy(words, caps, labels, weight=None, extra=None, **kwargs):
        seen.append((words.copy(), labels.copy(), None if weight is None else weight.copy()))
        return loss(words, caps, labels, weight, extra, **kwargs)

    monkeypatch.setattr(model, "loss", spy)
    return seen


def test_training_pos_weight_weighs_locations(monkeypatch) -> None:
    model, data, _ = _setup(n=40)
    seen = _spy_on_batches(model, monkeypatch)
    (report,) = _run(model, data, _cfg(epochs=1, pos_weight=2.5))
    assert math.isfinite(report.loss)
    labels = np.concatenate([s[1] for s in seen])
    weights = np.concatenate([s[2] for s in seen])
    np.testing.assert_array_equal(weights, np.where(labels == 1, 2.5, 1.0))
    assert sorted(labels) == sorted(data.labels)  # every window once per epoch


def test_training_pos_weight_one_passes_no_weights(monkeypatch) -> None:
    model, data, _ = _setup(n=20)
    seen = _spy_on_batches(model, monkeypatch)
    _run(model, data, _cfg(epochs=1))
    assert all(s[2] is None for s in seen)


def test_training_pos_weight_changes_training() -> None:
    model_a, data_a, _ = _setup(seed=4, n=40)
    model_b, data_b, _ = _setup(seed=4, n=40)
    _run(model_a, data_a, _cfg(epochs=1))
    _run(model_b, data_b, _cfg(epochs=1, pos_weight=3.0))
    assert not np.array_equal(model_a.params["W"].data, model_b.params["W"].data)


def _column_counts(windows: np.ndarray, size: int) -> np.ndarray:
    """(window, size) counts of each id per window column: independent of the row order."""
    return np.stack([np.bincount(col, minlength=size) for col in windows.T])


def test_training_unk_prob_replaces_only_rare_ids(monkeypatch) -> None:
    model, data, vocab = _setup(n=80, n_rare=30)
    rare = data.rare
    assert rare.sum() == 30 and not rare[:3].any()
    original = data.windows.words.copy()
    seen = _spy_on_batches(model, monkeypatch)
    _run(model, data, _cfg(epochs=1, unk_prob=0.9), seed=0)
    shown = np.concatenate([s[0] for s in seen])
    np.testing.assert_array_equal(data.windows.words, original)  # the data is not modified
    before, after = _column_counts(original, len(vocab)), _column_counts(shown, len(vocab))
    common = ~rare
    common[UNK_ID] = False
    np.testing.assert_array_equal(after[:, common], before[:, common])  # common words all kept
    hidden = before[:, rare] - after[:, rare]
    assert (hidden >= 0).all() and hidden.sum() > 0.5 * before[:, rare].sum()
    np.testing.assert_array_equal(after[:, UNK_ID] - before[:, UNK_ID], hidden.sum(axis=1))


def test_training_unk_prob_zero_keeps_rare_ids(monkeypatch) -> None:
    model, data, vocab = _setup(n=40, n_rare=20)
    seen = _spy_on_batches(model, monkeypatch)
    _run(model, data, _cfg(epochs=1, unk_prob=0.0), seed=0)
    shown = np.concatenate([s[0] for s in seen])
    np.testing.assert_array_equal(
        _column_counts(shown, len(vocab)), _column_counts(data.windows.words, len(vocab))
    )


def test_training_unk_prob_without_rare_ids_runs(monkeypatch) -> None:
    model, data, vocab = _setup(n=30, n_rare=10)
    data = replace(data, rare=None)
    seen = _spy_on_batches(model, monkeypatch)
    (report,) = _run(model, data, _cfg(epochs=1, unk_prob=0.5), seed=0)
    assert math.isfinite(report.loss)
    shown = np.concatenate([s[0] for s in seen])
    np.testing.assert_array_equal(
        _column_counts(shown, len(vocab)), _column_counts(data.windows.words, len(vocab))
    )


def test_training_embedding_lr_scale_zero_freezes_E() -> None:
    model, data, _ = _setup(n=30)
    before = model.params["E"].data.copy()
    _run(model, data, _cfg(epochs=1, embedding_lr_scale=0.0))
    np.testing.assert_array_equal(model.params["E"].data, before)


def test_training_diagnostics_recorded_with_probe() -> None:
    from nerwin.training.diagnostics import probe_sample

    model, data, _ = _setup()
    probe = probe_sample(data.windows, data.labels, size=50)
    reports = [
        r
        for r, _ in train_epochs(
            model, data, _cfg(epochs=2), np.random.default_rng(0), hooks=Hooks(probe=probe)
        )
    ]
    diag = reports[-1].diagnostics
    assert diag is not None and set(diag.grad_norm) == set(model.params)
    assert all(np.isfinite(v) and v >= 0 for v in diag.grad_norm.values())
    assert set(diag.update_ratio) == {k for k, p in model.params.items() if p.data.ndim == 2}
    assert diag.scores["positive"]["mean"] > diag.scores["negative"]["mean"]


def test_training_dropout_same_seed_same_weights_and_differs_without() -> None:
    runs = []
    for rate in (0.3, 0.3, 0.0):
        model, data, _ = _setup(seed=3, activation="relu")
        _run(model, data, _cfg(epochs=2, dropout=rate), seed=9)
        runs.append(model.arrays())
    with_a, with_b, without = runs
    assert all(with_a[k].tobytes() == with_b[k].tobytes() for k in with_a)
    assert not np.array_equal(with_a["W"], without["W"])


def test_training_dropout_interrupted_epoch_resumes_identically() -> None:
    cfg = _cfg(epochs=2, dropout=0.3)
    model, data, _ = _setup(seed=4, activation="relu")
    _run(model, data, cfg, seed=5)
    straight = model.arrays()

    model, data, _ = _setup(seed=4, activation="relu")
    rng, calls = np.random.default_rng(5), iter(range(10**6))
    steps_per_epoch = -(-len(data.labels) // cfg.batch_size)
    stop_mid_epoch_2 = lambda: next(calls) == steps_per_epoch + 3  # noqa: E731
    with pytest.raises(Interrupted) as stopped:
        list(train_epochs(model, data, cfg, rng, hooks=Hooks(should_stop=stop_mid_epoch_2)))
    assert (stopped.value.state.epoch, stopped.value.state.step) == (2, 3)
    list(train_epochs(model, data, cfg, rng, state=stopped.value.state))
    assert all(np.array_equal(model.arrays()[k], straight[k]) for k in straight)


def test_training_dropout_off_draws_nothing_extra() -> None:
    """Runs without dropout keep the random stream they had before dropout existed."""
    a, b = np.random.default_rng(7), np.random.default_rng(7)
    model, data, _ = _setup(seed=2)
    list(train_epochs(model, data, _cfg(epochs=1), a))
    b.permutation(len(data.labels))  # the epoch's only draw without unk_prob or dropout
    assert a.bit_generator.state == b.bit_generator.state


def _with_aux(seed: int) -> tuple[WindowClassifier, TrainingData]:
    """The toy corpus with a head for 'in' (type IN) on top of the location head."""
    model, data, vocab = _setup(seed=seed, activation="relu")
    shape = replace(model.shape, aux_types=("IN",))
    model = WindowClassifier.initialise(shape, np.random.default_rng(seed + 100))
    centre = data.windows.words[:, 2]
    data.aux_labels = (centre == vocab.index["in"]).astype(np.float32)[:, None]
    return model, data


def test_training_aux_heads_learn_and_shape_the_shared_layer() -> None:
    model, data = _with_aux(5)
    _run(model, data, _cfg(epochs=4, aux_weight=1.0), seed=1)
    aux_logits = (
        model.hidden(model.input_vectors(data.windows.words, data.windows.caps)).data
        @ model.params["U_aux"].data
        + model.params["c_aux"].data
    )[:, 0]
    target = data.aux_labels[:, 0] > 0
    assert (aux_logits > 0).tolist() == target.tolist()  # the head learned its own type

    plain, data_plain = _with_aux(5)
    _run(plain, data_plain, _cfg(epochs=4, aux_weight=0.0), seed=1)
    assert not np.array_equal(model.params["W"].data, plain.params["W"].data)
    assert np.array_equal(
        plain.params["U_aux"].data,
        WindowClassifier.initialise(plain.shape, np.random.default_rng(105)).params["U_aux"].data,
    )


def test_training_first_epoch_is_best_without_evaluate_even_at_a_loss_above_one() -> None:
    model, data, _ = _setup(n=30)
    model.params[
        "u"
    ].data *= 200.0  # confident, mostly wrong logits: a first-epoch loss far above 1
    reports = _run(model, data, _cfg(epochs=2, lr=1e-6))
    assert reports[0].loss > 1.0
    assert reports[0].best


def test_training_batches_cut_the_epoch_in_order_from_a_start_step() -> None:
    _, data, _ = _setup(n=20)
    epoch = shuffled(data, _cfg(), np.random.default_rng(0))
    n = len(epoch)
    every = list(batches(epoch, 16))
    assert [len(b) for b in every] == [16] * (n // 16) + ([n % 16] if n % 16 else [])
    np.testing.assert_array_equal(np.concatenate([b.words for b in every]), epoch.words)
    np.testing.assert_array_equal(np.concatenate([b.caps for b in every]), epoch.caps)
    np.testing.assert_array_equal(np.concatenate([b.labels for b in every]), epoch.labels)
    later = list(batches(epoch, 16, first_step=2))
    assert len(later) == len(every) - 2
    np.testing.assert_array_equal(later[0].words, epoch.words[32:48])
    assert list(batches(epoch, 16, first_step=len(every))) == []


def test_training_shuffled_draws_the_order_then_the_unknown_words() -> None:
    _, data, _ = _setup(n=40, n_rare=30)
    cfg = _cfg(unk_prob=0.5, pos_weight=2.0)
    a, b = np.random.default_rng(3), np.random.default_rng(3)
    epoch = shuffled(data, cfg, a)
    order = b.permutation(len(data.labels))
    hidden = data.rare[data.windows.words[order]] & (b.random(data.windows.words.shape) < 0.5)
    assert a.bit_generator.state == b.bit_generator.state  # exactly these two draws
    assert hidden.any() and (epoch.words[hidden] == UNK_ID).all()
    np.testing.assert_array_equal(epoch.words[~hidden], data.windows.words[order][~hidden])
    np.testing.assert_array_equal(epoch.labels, data.labels[order])
    np.testing.assert_array_equal(epoch.weights, np.where(epoch.labels > 0, 2.0, 1.0))
    assert epoch.aux is None and epoch.extra == {}
    plain = shuffled(data, _cfg(), np.random.default_rng(3))
    assert plain.weights is None and not (plain.words == UNK_ID).any()


def test_training_batch_rows_cut_every_array() -> None:
    words = np.arange(12).reshape(6, 2)
    batch = Batch(
        words, None, np.arange(6.0), np.ones(6), {"suffix": words + 1}, np.zeros((6, 1))
    ).rows(2, 5)
    assert len(batch) == 3 and batch.caps is None
    np.testing.assert_array_equal(batch.words, words[2:5])
    np.testing.assert_array_equal(batch.extra["suffix"], words[2:5] + 1)
    assert batch.weights.shape == (3,) and batch.aux.shape == (3, 1)
