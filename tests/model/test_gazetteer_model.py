"""A model with a gazetteer feature: gradients, training, the model folder, frozen path, explain."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
from _trained import DEV, TRAIN, assert_ok, invoke

from nerwin import api
from nerwin.config import load_config
from nerwin.data.caps import N_CAPS
from nerwin.data.conll import read_conll
from nerwin.data.encode import encode_sentences
from nerwin.data.gazetteer import GAZETTEER, NONE_ID, Gazetteer
from nerwin.data.placenames import FOLDER_HEADER, checksum, read_name_file
from nerwin.data.vocab import build_vocab
from nerwin.engine.gradcheck import dense
from nerwin.errors import ConfigError, ModelError
from nerwin.model import folder as folder_module
from nerwin.model import frozen as frozen_module
from nerwin.model import tagger as tagger_module
from nerwin.model.checks import check_model, check_model_by_hand
from nerwin.model.classifier import ModelShape, WindowClassifier
from nerwin.model.folder import load_model
from nerwin.model.tagger import Tagger
from nerwin.tag.explain import Explainer, render_explanation

TOLERANCE = 1e-5  # max |P(frozen) - P(matrix)|: float32 rounding
# Names of the bundled corpus (dev and train), of several kinds and lengths; Valparaiso is
# written without its accent, U.S. and Addis Ababa have punctuation and two tokens.
NAMES = """\
# names for the tests
Addis Ababa\tcity
Prague\tcity
Lusaka\tcity
Windhoek\tcity
Ljubljana\tcity
Yerevan\tcity
Tbilisi\tcity
Valparaiso\tcity
Paris\tcity
Zanzibar\tregion
Tasmania\tregion
Armenia\tcountry
Myanmar\tcountry
Uganda\tcountry
Turkey\tcountry
U.S.\tcountry
Africa\tcontinent
Dead Sea
Lake Victoria
"""
FAST = ["train.epochs=2", "model.hidden=[32]", "train.seed=3"]


def _config(names: Path, *overrides: str):
    return load_config(
        None,
        [f"data.train={TRAIN}", f"data.dev={DEV}", f"data.gazetteer={names}", *FAST, *overrides],
    )


def _dev_sentences() -> list[list[str]]:
    return [s.words for s in read_conll(DEV).sentences]


@dataclass(frozen=True)
class Trained:
    names: Path
    out: Path
    tagger: Tagger  # as loaded from out/model
    expected: np.ndarray  # P(location) on dev of the in-memory model at the best epoch

    @property
    def model(self) -> Path:
        return self.out / "model"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """Two epochs on the bundled corpus with a small name file; the in-memory model's dev
    probabilities at the best epoch (the one saved as RUN/model) are kept for comparison."""
    tmp = tmp_path_factory.mktemp("gazetteer")
    names = tmp / "names.txt"
    names.write_text(NAMES, encoding="utf-8")
    run = api.open_run(_config(names), tmp / "run")
    sentences = _dev_sentences()
    expected = None
    for report in run.epochs():
        if report.best:
            data = run.tagger.encode(sentences)
            expected = run.tagger.window_probabilities(data, frozen=False).copy()
    run.finish()
    assert expected is not None
    return Trained(names, tmp / "run", load_model(tmp / "run" / "model")[0], expected)


# --- gradients -----------------------------------------------------------------------------------


def _gazetteer_batch(with_suffix: bool):
    g = Gazetteer.from_entries(
        [
            (["New", "York"], "city"),
            (["New", "York", "City"], "city"),
            (["France"], "country"),
            (["Paris"], "city"),
            (["Africa"], "continent"),
        ]
    )
    sentences = [
        ["Flights", "to", "New", "York", "City", "and", "Paris"],
        ["France", ",", "Africa", "and", "New", "York"],
        ["New", "ideas"],
    ]
    vocab = build_vocab(sentences)
    extra = (("suffix", 4, 2),) if with_suffix else ()
    shape = ModelShape(
        vocab_size=len(vocab),
        embedding_dim=4,
        window=5,
        hidden=(7,),
        activation="tanh",
        caps_dim=3,
        n_caps=N_CAPS,
        dtype="float64",
        extra=(*extra, (GAZETTEER, g.n_values, 3)),
    )
    data = encode_sentences(sentences, vocab, 5, True, gazetteer=g)
    if with_suffix:
        data.extra["suffix"] = (data.words % 4).astype(np.int32)
    labels = np.isin(data.extra[GAZETTEER][:, 2], [2, 4, 5, 7, 8, 10, 11, 13]).astype(np.float64)
    return g, shape, data, labels


@pytest.mark.parametrize("activation", ["tanh", "relu", "gelu"])
@pytest.mark.parametrize("with_suffix", [False, True])
def test_gazetteer_model_gradients_of_the_gazetteer_table(
    rng: np.random.Generator, activation: str, with_suffix: bool
) -> None:
    g, shape, data, labels = _gazetteer_batch(with_suffix)
    ids = data.extra[GAZETTEER]
    assert len(np.unique(ids)) >= 5  # pad, O and several B/I/S ids, with repeats
    model = WindowClassifier.initialise(replace(shape, activation=activation), rng)
    assert model.params[GAZETTEER].shape == (g.n_values, 3)
    results = check_model(model, data.words, data.caps, labels, rng, data.extra)
    results += check_model_by_hand(model, data.words, data.caps, labels, 1e-6, data.extra)
    names = {r.name for r in results}
    assert {"model dJ/dgazetteer", "by hand dJ/dgazetteer"} <= names
    assert all(r.ok for r in results), [r.line() for r in results if not r.ok]
    table = model.params[GAZETTEER]
    table.grad = None
    model.loss(data.words, data.caps, labels, extra=data.extra).backward()
    grad = dense(table.grad, table.shape)
    unused = sorted(set(range(g.n_values)) - set(np.unique(ids).tolist()))
    assert unused and np.all(grad[unused] == 0)  # rows no window uses get no gradient
    assert np.all(np.abs(grad[np.unique(ids)]).sum(axis=1) > 0)


def test_gazetteer_model_gradcheck_of_the_trained_model(trained: Trained) -> None:
    report = api.gradcheck(model_dir=trained.model, data=DEV)
    section = dict(report.sections)[f"trained model {trained.model}"]
    names = {r.name for r in section}
    assert {"model dJ/dgazetteer", "by hand dJ/dgazetteer"} <= names
    assert all(r.ok for r in section), [r.line() for r in section if not r.ok]


# --- training and the model folder ---------------------------------------------------------------


def test_gazetteer_model_folder_carries_the_names(trained: Trained) -> None:
    folder = trained.model
    text = (folder / "gazetteer.txt").read_text(encoding="utf-8")
    assert text.splitlines()[0] == FOLDER_HEADER
    source = Gazetteer.from_entries(read_name_file(trained.names))
    g = trained.tagger.gazetteer
    assert g is not None
    assert g.names == source.names and len(g) == 19
    assert g.kinds == ("country", "continent", "region", "city", "place")
    assert g.lowercase is False
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    assert meta["gazetteer"] == {"names": 19, "sha256": checksum(text.encode("utf-8"))}
    shape = trained.tagger.model.shape
    assert shape.extra[-1] == (GAZETTEER, g.n_values, 5)  # model.gazetteer_dim's default
    _, config, _ = load_model(folder)
    assert config.data.gazetteer == str(trained.names)


def test_gazetteer_model_loaded_equals_trained(trained: Trained) -> None:
    sentences = _dev_sentences()
    data = trained.tagger.encode(sentences)
    found = trained.tagger.window_probabilities(data, frozen=False)
    np.testing.assert_array_equal(found, trained.expected)
    ids = data.extra[GAZETTEER][:, trained.tagger.model.shape.window // 2]
    described = trained.tagger.gazetteer.describe(ids)
    assert sum(i != NONE_ID for i in ids.tolist()) >= 10  # the feature fires on dev
    assert {"B-city", "I-city", "S-city", "S-country", "S-region"} <= set(described)


def test_gazetteer_model_frozen_path_agrees_with_matrix_path(trained: Trained) -> None:
    tagger = trained.tagger
    batches = [
        _dev_sentences(),
        [["New", "flights", "to", "Addis", "Ababa"], ["Addis", "is", "not", "Ababa"], ["Addis"]],
        [["Addis", "Ababa", "Addis", "Ababa"], [], ["ADDIS", "ABABA"], ["addis", "ababa"]],
    ]
    for sentences in batches:
        data = tagger.encode(sentences)
        matrix = tagger.window_probabilities(data, frozen=False)
        session = tagger.frozen()
        for name, probs in {
            "words": session.probabilities(sentences),
            "words again (memo)": session.probabilities(sentences),
            "small cache": tagger.frozen(cache_mb=1).probabilities(sentences),
            "no cache": tagger.frozen(cache_mb=0).probabilities(sentences),
            "windows": tagger.window_probabilities(data, frozen=True),
        }.items():
            assert probs.shape == matrix.shape, name
            assert float(np.abs(probs - matrix).max(initial=0.0)) <= TOLERANCE, name
    # the batches mix a word in and out of names: the frozen memo must keep no gazetteer id
    ids = tagger.encode(batches[2]).extra[GAZETTEER][:, 2]
    assert tagger.gazetteer.describe(ids) == ["B-city", "I-city"] * 3 + ["O", "O"]
    ids = tagger.encode(batches[1]).extra[GAZETTEER][:, 2]
    assert tagger.gazetteer.describe(ids) == ["O"] * 3 + ["B-city", "I-city"] + ["O"] * 5


def test_gazetteer_model_gazetteer_changes_the_scores(trained: Trained) -> None:
    """Same words, the name matched or not (another sentence split): the scores differ."""
    tagger = trained.tagger.frozen()
    together = tagger.probabilities([["to", "Addis", "Ababa"]])
    split = tagger.probabilities([["to", "Addis"], ["Ababa"]])
    assert together.shape == (3,) and split.shape == (3,)
    windows = trained.tagger.encode([["to", "Addis", "Ababa"]]).extra[GAZETTEER]
    assert trained.tagger.gazetteer.describe(windows[1, 2:4]) == ["B-city", "I-city"]
    assert not np.allclose(together[1:], split[1:])


def test_gazetteer_model_predicts_without_its_name_source(tmp_path: Path) -> None:
    names = tmp_path / "source" / "names.txt"
    names.parent.mkdir()
    names.write_text(NAMES, encoding="utf-8")
    result = api.train(_config(names), tmp_path / "run")
    sentences = _dev_sentences()[:40]
    text = "They flew from Addis Ababa to Prague ."
    before = load_model(result.out_dir / "model")[0].probabilities(sentences)
    tagged = api.load(result.out_dir / "model").tag(text).to_dict()
    shutil.rmtree(names.parent)
    after = load_model(result.out_dir / "model")[0].probabilities(sentences)
    np.testing.assert_array_equal(after, before)
    assert api.load(result.out_dir / "model").tag(text).to_dict() == tagged


def test_gazetteer_model_name_with_a_spacing_accent_trains_and_loads(tmp_path: Path) -> None:
    names = tmp_path / "names.txt"
    names.write_text("Prague\tcity\nXi\u00b4an\tcity\n", encoding="utf-8")
    result = api.train(_config(names, "train.epochs=1"), tmp_path / "run")
    tagger = load_model(result.out_dir / "model")[0]
    assert tagger.gazetteer.names == Gazetteer.from_entries(read_name_file(names)).names


def test_gazetteer_model_continued_training_keeps_the_names(
    trained: Trained, tmp_path: Path
) -> None:
    config = load_config(None, [f"data.train={TRAIN}", f"data.dev={DEV}", *FAST])
    result = api.train(config, tmp_path / "more", init_from=trained.model)
    tagger, config, _ = load_model(result.out_dir / "model")
    assert tagger.gazetteer is not None
    assert tagger.gazetteer.names == trained.tagger.gazetteer.names
    assert config.data.gazetteer == str(trained.names)
    assert tagger.model.shape.extra == trained.tagger.model.shape.extra


def test_gazetteer_model_ensemble(trained: Trained, tmp_path: Path) -> None:
    result = api.train(_config(trained.names, "train.ensemble=2"), tmp_path / "ens")
    tagger = load_model(result.out_dir / "model")[0]
    assert len(tagger.models) == 2 and tagger.gazetteer is not None
    assert tagger.gazetteer.names == trained.tagger.gazetteer.names
    sentences = _dev_sentences()
    matrix = tagger.window_probabilities(tagger.encode(sentences), frozen=False)
    frozen = tagger.frozen().probabilities(sentences)
    assert float(np.abs(frozen - matrix).max()) <= TOLERANCE


# --- a damaged gazetteer.txt ---------------------------------------------------------------------


def _copy(trained: Trained, tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(trained.model, folder)
    return folder


@pytest.mark.parametrize(
    "content, needles",
    [
        (b"# nerwin gazetteer 0\nparis\tcity\n", [":1:", "expected the line"]),
        (f"{FOLDER_HEADER}\nparis\tcity\n".encode(), ["kinds", "weights"]),  # 1 kind, not 5
        (f"{FOLDER_HEADER}\nparis\tcity\nlusaka city\n".encode(), [":3:"]),
        (f"{FOLDER_HEADER}\nparis\tcity\n\xff\n".encode("latin-1"), ["UTF-8"]),
        (b"", [":1:"]),
    ],
    ids=["bad header", "wrong number of kinds", "malformed line", "not utf-8", "empty"],
)
def test_gazetteer_model_damaged_gazetteer_file(
    trained: Trained, tmp_path: Path, content: bytes, needles: list[str]
) -> None:
    folder = _copy(trained, tmp_path)
    (folder / "gazetteer.txt").write_bytes(content)
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    del meta["gazetteer"]  # no checksum to compare: the file's own checks speak
    (folder / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(ModelError) as caught:
        load_model(folder)
    message = str(caught.value)
    assert str(folder / "gazetteer.txt") in message
    assert "\n" not in message
    for needle in needles:
        assert needle in message, (needle, message)


def test_gazetteer_model_edited_names_are_refused(trained: Trained, tmp_path: Path) -> None:
    folder = _copy(trained, tmp_path)
    path = folder / "gazetteer.txt"
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    name, _, kind = lines[1].partition("\t")
    path.write_text("\n".join([lines[0], f"{name}x\t{kind}", *lines[2:]]) + "\n", encoding="utf-8")
    with pytest.raises(ModelError, match="changed since training"):
        load_model(folder)
    path.write_text(text, encoding="utf-8")
    assert load_model(folder)[0].gazetteer is not None


def test_gazetteer_model_missing_gazetteer_file(trained: Trained, tmp_path: Path) -> None:
    folder = _copy(trained, tmp_path)
    (folder / "gazetteer.txt").unlink()
    with pytest.raises(ModelError, match="missing") as caught:
        load_model(folder)
    assert str(folder / "gazetteer.txt") in str(caught.value)


def test_gazetteer_model_cli_names_a_damaged_gazetteer_file(
    trained: Trained, tmp_path: Path
) -> None:
    folder = _copy(trained, tmp_path)
    (folder / "gazetteer.txt").write_text("# not a gazetteer\n", encoding="utf-8")
    result = invoke(["predict", "--model", folder, "Flights to Prague ."])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr
    assert str(folder / "gazetteer.txt") in result.stderr


# --- explain -------------------------------------------------------------------------------------


def test_gazetteer_model_explain_has_a_gazetteer_column(trained: Trained) -> None:
    text = "They flew from Addis Ababa to Prague ."
    (doc,) = api.explain(trained.model, [text], all_tokens=True)
    assert len(doc.explained) == len(doc.tokens) == 8
    for e in doc.explained:
        for p in e.positions:
            assert list(p.contributions) == ["word", "caps", GAZETTEER]
        assert abs(e.remainder) < 1e-6  # relu: the parts, gazetteer included, add up to s
    assert any(abs(p.contributions[GAZETTEER]) > 1e-6 for p in doc.explained[3].positions)
    rendered = render_explanation(doc)
    header = next(line for line in rendered.splitlines() if line.startswith("  pos  "))
    assert header.split()[-4:] == ["word", "caps", GAZETTEER, "occlusion"]
    same = Explainer(trained.tagger).explain(text, all_tokens=True)
    assert same.to_dict() == doc.to_dict()


def test_gazetteer_model_cli_explain(trained: Trained) -> None:
    result = invoke(
        ["explain", "--model", trained.model, "--token", "3", "Flights to Addis Ababa ."]
    )
    assert_ok(result)
    assert "gazetteer" in result.stdout
    assert "token 3 'Ababa'" in result.stdout
    result = invoke(["explain", "--model", trained.model, "--json", "--all", "to Prague ."])
    assert_ok(result)
    record = json.loads(result.stdout)
    assert all(
        GAZETTEER in p["contributions"] for e in record["explanations"] for p in e["positions"]
    )


def _agrees_with_matrix(tagger: Tagger) -> object:
    """A FrozenTagger of `tagger`, after checking both of its entry points against x W."""
    sentences = _dev_sentences()
    data = tagger.encode(sentences)
    matrix = tagger.window_probabilities(data, frozen=False)
    session = tagger.frozen()
    assert float(np.abs(session.probabilities(sentences) - matrix).max()) <= TOLERANCE
    assert float(np.abs(session.window_probabilities(data) - matrix).max()) <= TOLERANCE
    return session


def test_gazetteer_model_folds_names_into_the_key(trained: Trained) -> None:
    session = _agrees_with_matrix(trained.tagger)
    assert session.scorer.folds_names and GAZETTEER not in session.scorer.extra_names


def test_gazetteer_model_with_too_many_names_to_fold(trained: Trained, monkeypatch) -> None:
    monkeypatch.setattr(frozen_module, "MAX_FOLDED_KEYS", 1)  # as with hundreds of kinds
    session = _agrees_with_matrix(trained.tagger)
    assert not session.scorer.folds_names and GAZETTEER in session.scorer.extra_names


def test_gazetteer_model_codes_too_wide_to_pack(trained: Trained, monkeypatch) -> None:
    shape = trained.tagger.model.shape
    rows = dict((name, r) for name, r, _ in shape.extra)[GAZETTEER]
    space = shape.vocab_size * shape.n_caps * rows
    monkeypatch.setattr(tagger_module, "CODE_LIMIT", space + 1)  # the word codes fit, no more
    session = _agrees_with_matrix(trained.tagger)
    assert session._token_radix == 0  # the gazetteer is looked up on each call instead


def test_gazetteer_too_large_for_a_model_folder_is_refused_at_start(
    trained: Trained, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setitem(folder_module.LIMITS, folder_module.GAZETTEER_FILE, 40)
    with pytest.raises(ConfigError, match="data.gazetteer: .* names do not fit"):
        api.train(_config(trained.names), tmp_path / "run")
    assert not (tmp_path / "run" / "model").exists()
