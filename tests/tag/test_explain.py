"""explain: gradient x input and bias add up to the score (ReLU), occlusion, token choice, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _trained import TrainedRun, assert_ok, assert_user_error, invoke

from nerwin import api
from nerwin.config import load_config
from nerwin.data.caps import N_CAPS
from nerwin.data.vocab import SPECIALS, UNK_ID, Vocab
from nerwin.engine import Tensor, no_grad
from nerwin.model.classifier import ModelShape, WindowClassifier
from nerwin.model.folder import load_model
from nerwin.model.tagger import Tagger
from nerwin.tag.explain import Explainer, ExplainError, render_explanation

PARIS = "The museums in Paris are amazing."
WORDS = ["the", "museums", "in", "paris", "are", "amazing", "went", "to", "rome", "."]


def _hand_tagger(activation: str, hidden: tuple[int, ...], seed: int = 0) -> Tagger:
    """A small float64 model with caps and non-zero biases, over WORDS."""
    rng = np.random.default_rng(seed)
    shape = ModelShape(
        vocab_size=len(SPECIALS) + len(WORDS),
        embedding_dim=4,
        window=5,
        hidden=hidden,
        activation=activation,
        caps_dim=3,
        n_caps=N_CAPS,
        dtype="float64",
    )
    model = WindowClassifier.initialise(shape, rng)
    for name, param in model.params.items():
        if name[0] in "bc":
            param.data[...] = rng.normal(0.0, 0.5, param.shape)
    return Tagger(model, Vocab(list(SPECIALS) + WORDS), threshold=0.5)


def _zero_input_score(model: WindowClassifier, words: np.ndarray, caps: np.ndarray) -> float:
    """Score of x = 0 through the units active for (words, caps): the ReLU bias terms by hand."""
    h = np.zeros(0)
    for layer, z in enumerate(model.pre_activations(words[None], caps[None]), start=1):
        suffix = "" if model.n_layers == 1 else str(layer)
        w, b = model.params[f"W{suffix}"].data, model.params[f"b{suffix}"].data
        z0 = (h @ w if h.size else np.zeros(len(b))) + b
        h = np.where(z[0] > 0, z0, 0.0)
    return float(h @ model.params["u"].data[:, 0] + model.params["c"].data[0])


# --- completeness -----------------------------------------------------------------------------


def test_explain_relu_contributions_and_bias_sum_to_score(tagger: Tagger) -> None:
    doc = Explainer(tagger).explain(PARIS, all_tokens=True)
    assert len(doc.explained) == len(doc.tokens) == 7
    for e in doc.explained:
        assert e.inputs + e.bias == pytest.approx(e.score, abs=1e-9 * max(1.0, abs(e.score)))
        assert abs(e.remainder) < 1e-9


def test_explain_bias_is_the_active_units_bias(tagger: Tagger) -> None:
    """One hidden layer: bias contribution = sum_j relu'(z_j) b_j u_j + c."""
    model = tagger.model.astype("float64")
    data = tagger.encode([["The", "museums", "in", "Paris", "are", "amazing", "."]])
    doc = Explainer(tagger).explain(PARIS, all_tokens=True)
    (z,) = model.pre_activations(data.words, data.caps)
    b, u, c = model.params["b"].data, model.params["u"].data[:, 0], model.params["c"].data[0]
    for e in doc.explained:
        expected = float(((z[e.index] > 0) * b * u).sum() + c)
        assert e.bias == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "prelu"])
def test_explain_several_layers_add_up(activation: str) -> None:
    tagger = _hand_tagger(activation, (7, 5))
    doc = Explainer(tagger).explain("The museums in Paris went to Rome .", all_tokens=True)
    data = tagger.encode([[t.text for t in doc.tokens]])
    for e in doc.explained:
        assert abs(e.remainder) < 1e-12
        assert e.inputs + e.bias == pytest.approx(e.score, abs=1e-12)
        if activation == "relu":
            assert e.bias == pytest.approx(
                _zero_input_score(tagger.model, data.words[e.index], data.caps[e.index]), abs=1e-12
            )


def test_explain_curved_activation_reports_the_rest_and_true_gradients() -> None:
    """tanh: contributions still use ds/dx from backward (checked by central differences)."""
    tagger = _hand_tagger("tanh", (6,))
    model = tagger.model
    doc = Explainer(tagger).explain("They went to Rome .", indices=[3])
    (e,) = doc.explained
    assert abs(e.remainder) > 1e-6
    assert e.inputs + e.bias + e.remainder == pytest.approx(e.score, abs=1e-12)
    data = tagger.encode([["They", "went", "to", "Rome", "."]])
    x = model.input_vectors(data.words[3:4], data.caps[3:4]).data
    for table, position, block in model.input_blocks():
        direction = np.zeros_like(x)
        direction[0, block] = x[0, block]
        with no_grad():
            plus = model.scores_from_inputs(Tensor(x + 1e-6 * direction)).data[0, 0]
            minus = model.scores_from_inputs(Tensor(x - 1e-6 * direction)).data[0, 0]
        column = {"E": "word", "F": "caps"}[table]
        got = e.positions[position].contributions[column]
        assert got == pytest.approx((plus - minus) / 2e-6, abs=1e-7)


# --- occlusion --------------------------------------------------------------------------------


def test_explain_occluding_a_word_with_zero_contribution_changes_nothing() -> None:
    tagger = _hand_tagger("relu", (8,))
    model = tagger.model
    ((_, _, block),) = [(t, p, b) for t, p, b in model.input_blocks() if (t, p) == ("E", 4)]
    model.params["W"].data[block] = 0.0  # the word two to the right cannot matter
    (e,) = Explainer(tagger).explain("The museums in Paris went to Rome .", indices=[2]).explained
    assert e.positions[4].word == "went" and e.positions[4].known
    assert e.positions[4].contributions["word"] == 0.0
    assert e.positions[4].occlusion == pytest.approx(0.0, abs=1e-12)
    assert any(abs(p.occlusion) > 1e-6 for p in e.positions if p.occlusion is not None)


def test_explain_occlusion_of_unknown_word_or_unk_equal_vector_is_zero() -> None:
    tagger = _hand_tagger("relu", (8,))
    E = tagger.model.params["E"].data
    E[tagger.vocab.index["rome"]] = E[UNK_ID]
    (e,) = Explainer(tagger).explain("They went to Rome and Zanzibar .", indices=[3]).explained
    by_word = {p.word: p for p in e.positions}
    assert by_word["Rome"].known and by_word["Rome"].occlusion == pytest.approx(0.0, abs=1e-12)
    assert not by_word["Zanzibar"].known and by_word["Zanzibar"].occlusion == 0.0
    assert by_word["went"].occlusion != 0.0


def test_explain_occlusion_matches_rescoring_with_unk(tagger: Tagger) -> None:
    (e,) = Explainer(tagger).explain(PARIS, indices=[3]).explained
    model = tagger.model.astype("float64")
    data = tagger.encode([["The", "museums", "in", "Paris", "are", "amazing", "."]])
    words = data.words[3].copy()
    words[1] = UNK_ID  # "in"
    with no_grad():
        occluded = model.forward(words[None], data.caps[3:4]).data[0]
    assert e.positions[1].occlusion == pytest.approx(e.score - occluded, abs=1e-9)


def test_explain_padding_has_no_occlusion(tagger: Tagger) -> None:
    (e,) = Explainer(tagger).explain("Paris .", indices=[0]).explained
    assert [p.word for p in e.positions] == ["<s>", "<s>", "Paris", ".", "</s>"]
    assert [p.occlusion is None for p in e.positions] == [True, True, False, False, True]
    assert [p.offset for p in e.positions] == [-2, -1, 0, 1, 2]


# --- choosing tokens, the example, rendering --------------------------------------------------


def test_explain_default_explains_predicted_locations(tagger: Tagger) -> None:
    doc = Explainer(tagger).explain(PARIS)
    assert [e.token.text for e in doc.explained] == ["Paris"]
    assert doc.locations.tolist() == [0, 0, 0, 1, 0, 0, 0]
    assert doc.explained[0].location and doc.explained[0].probability >= 0.5


def test_explain_paris_centre_and_in_carry_the_score(tagger: Tagger) -> None:
    (e,) = Explainer(tagger).explain(PARIS).explained
    totals = {p.word: sum(p.contributions.values()) for p in e.positions}
    assert sorted(totals, key=totals.get, reverse=True)[:2] == ["Paris", "in"]
    occlusion = {p.word: p.occlusion for p in e.positions}
    assert occlusion["in"] == max(occlusion.values()) > 0


@pytest.mark.shared_data
@pytest.mark.slow
def test_explain_paris_on_conll_word_vectors_of_paris_and_in_lead(shared_conll, tmp_path) -> None:
    config = load_config(
        None, [f"data.train={shared_conll / 'train.txt'}", "data.dev=null", "train.epochs=1"]
    )
    result = api.train(config, tmp_path / "run")
    (e,) = Explainer(load_model(result.out_dir / "model")[0]).explain(PARIS).explained
    words = {p.word: p.contributions["word"] for p in e.positions}
    assert e.token.text == "Paris" and e.location
    assert sorted(words, key=words.get, reverse=True)[:2] == ["Paris", "in"]


def test_explain_token_indices_and_all(tagger: Tagger) -> None:
    explainer = Explainer(tagger)
    assert [e.index for e in explainer.explain(PARIS, indices=[5, 0, 5]).explained] == [5, 0]
    assert len(explainer.explain(PARIS, all_tokens=True).explained) == 7
    two = explainer.explain("Rome is old. Paris is new.", indices=[4])
    assert two.explained[0].token.text == "Paris"
    assert two.explained[0].positions[0].word == "<s>"  # windows stop at the sentence edge


def test_explain_token_out_of_range_is_a_user_error(tagger: Tagger) -> None:
    message = r"--token 7: the text has 7 token\(s\) \(valid indices: 0-6\)"
    with pytest.raises(ExplainError, match=message):
        Explainer(tagger).explain(PARIS, indices=[7])
    assert Explainer(tagger).explain("", all_tokens=True).explained == []


def test_explain_leaves_the_tagger_untouched(tagger: Tagger) -> None:
    before = {k: t.data.copy() for k, t in tagger.model.params.items()}
    Explainer(tagger).explain(PARIS, all_tokens=True)
    assert all(t.grad is None for t in tagger.model.params.values())
    assert all(np.array_equal(before[k], t.data) for k, t in tagger.model.params.items())


def test_explain_render_and_dict(tagger: Tagger) -> None:
    doc = Explainer(tagger).explain(PARIS)
    text = render_explanation(doc)
    assert "tokens: 0:The 1:museums 2:in 3:[Paris] 4:are 5:amazing 6:." in text
    assert "token 3 'Paris': P(location)" in text and "occlusion" in text
    record = json.loads(json.dumps(doc.to_dict()))
    assert [t["text"] for t in record["tokens"]][3] == "Paris"
    (e,) = record["explanations"]
    assert e["index"] == 3 and len(e["positions"]) == 5
    assert set(e["positions"][0]) == {"offset", "word", "known", "contributions", "occlusion"}
    assert set(e["positions"][0]["contributions"]) == {"word", "caps"}
    no_location = render_explanation(Explainer(tagger).explain("the end"))
    assert "no token is tagged as a location; --all or --token N" in no_location


# --- CLI --------------------------------------------------------------------------------------


def test_cli_explain_text_json_and_stdin(run: TrainedRun) -> None:
    result = invoke(["explain", "--model", run.model, PARIS])
    assert_ok(result)
    assert "token 3 'Paris'" in result.stdout
    result = invoke(
        ["explain", "--model", run.model, "--json", "--token", "2"],
        input=PARIS + "\nRome is old .\n",
    )
    assert_ok(result)
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["text"] for r in records] == [PARIS, "Rome is old ."]
    assert [[e["text"] for e in r["explanations"]] for r in records] == [["in"], ["old"]]


def test_cli_explain_errors(run: TrainedRun, tmp_path) -> None:
    result = invoke(["explain", "--model", run.model, "--token", "9", "Paris ."])
    assert_user_error(result, "--token 9")
    assert_user_error(invoke(["explain", "--model", tmp_path / "none", "Paris"]), "not found")
    result = invoke(["explain", "--model", run.model, "--token", "0", "--all", "Paris"])
    assert result.exit_code == 2


def test_explain_suffix_and_shape_features_get_columns_and_add_up(tmp_path) -> None:
    config = load_config(
        None, ["train.epochs=1", "data.dev=null", "model.suffix_dim=4", "model.shape_dim=3"]
    )
    result = api.train(config, tmp_path / "run")
    doc = Explainer(load_model(result.out_dir / "model")[0]).explain(PARIS, all_tokens=True)
    for e in doc.explained:
        assert list(e.positions[0].contributions) == ["word", "caps", "suffix", "shape"]
        assert e.inputs + e.bias == pytest.approx(e.score, abs=1e-9 * max(1.0, abs(e.score)))
    assert "word, caps, suffix, shape: gradient x input" in render_explanation(doc)
