"""Library entry points: api.train, api.evaluate, TrainingRun."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _trained import DEV, TRAIN, TrainedRun, assert_ok, invoke

from nerwin import api
from nerwin.config import load_config
from nerwin.data.conll import read_conll
from nerwin.errors import DataError, ModelError, NerwinError
from nerwin.metrics import Scores
from nerwin.model.folder import load_model


def test_api_train_returns_dev_scores(run: TrainedRun) -> None:
    result = run.result
    assert isinstance(result, api.TrainResult)
    assert result.out_dir == run.out_dir
    assert isinstance(result.dev, Scores)
    assert [r.epoch for r in result.reports] == [1, 2, 3]
    assert 1 <= result.best_epoch <= 3
    best = result.reports[result.best_epoch - 1]
    assert best.best
    assert result.dev == best.dev
    assert result.dev.entity.f1 == max(r.dev.entity.f1 for r in result.reports)
    assert result.dev.entity.f1 > 0.5  # three epochs on the bundled corpus learn something
    assert result.dev.n_tokens == read_conll(DEV).n_tokens
    assert result.threshold == 0.5
    assert result.seconds > 0
    lines = (run.out_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]


def test_api_train_saves_the_best_epoch(run: TrainedRun) -> None:
    _, config, meta = load_model(run.model)
    assert meta["epoch"] == run.result.best_epoch
    assert config == load_config(None, ["train.epochs=3"])
    assert load_model(run.out_dir / "last")[2]["epoch"] == 3


def test_api_evaluate_reproduces_the_training_dev_scores(run: TrainedRun) -> None:
    assert api.evaluate(run.model, DEV) == run.result.dev


def test_api_evaluate_equals_cli_json(run: TrainedRun) -> None:
    result = invoke(["evaluate", "--model", run.model, "--data", DEV, "--json"])
    assert_ok(result)
    assert json.loads(result.stdout) == api.evaluate(run.model, DEV).to_dict()
    assert json.loads(result.stdout) == api.evaluate(str(run.model), str(DEV)).to_dict()


def test_api_evaluate_threshold(run: TrainedRun) -> None:
    everything = api.evaluate(run.model, DEV, threshold=0.0)
    assert everything.token.predicted == everything.n_tokens
    assert everything.token.recall == 1.0
    strict = api.evaluate(run.model, DEV, threshold=0.99)
    default = api.evaluate(run.model, DEV)
    assert strict.token.predicted <= default.token.predicted <= everything.token.predicted


def test_api_evaluate_on_train(run: TrainedRun) -> None:
    scores = api.evaluate(run.model, TRAIN)
    assert scores.n_tokens == read_conll(TRAIN).n_tokens
    assert scores.entity.f1 >= run.result.dev.entity.f1 - 0.1  # the training data is not harder


def test_api_evaluate_errors(run: TrainedRun, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no-model"):
        api.evaluate(tmp_path / "no-model", DEV)
    with pytest.raises(DataError, match="nope.txt"):
        api.evaluate(run.model, tmp_path / "nope.txt")


def test_api_training_run_notes_mention_vocabulary(tmp_path: Path) -> None:
    training = api.TrainingRun(load_config(None, ["train.epochs=1"]), tmp_path / "run")
    vocab_notes = [n for n in training.notes if "vocabulary" in n]
    assert len(vocab_notes) == 1
    assert f"{len(training.tagger.vocab):,} words" in vocab_notes[0]
    assert "train.txt" in vocab_notes[0]
    assert (tmp_path / "run" / "config.yaml").is_file()


def test_api_training_run_refuses_a_used_directory(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(NerwinError, match="--force"):
        api.TrainingRun(load_config(None, ["train.epochs=1"]), out)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_api_train_same_seed_same_weights(run: TrainedRun, tmp_path: Path) -> None:
    again = api.train(load_config(None, ["train.epochs=3"]), tmp_path / "again")
    assert again.dev == run.result.dev
    with (
        np.load(run.model / "weights.npz") as a,
        np.load(again.out_dir / "model" / "weights.npz") as b,
    ):
        assert a.files == b.files
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_api_train_aux_heads_for_the_other_types(tmp_path: Path) -> None:
    config = load_config(None, ["train.epochs=1", "train.aux_weight=0.5", "train.dropout=0.2"])
    result = api.train(config, tmp_path / "run")
    tagger, _, meta = load_model(tmp_path / "run" / "model")
    assert meta["shape"]["aux_types"] == ["MISC", "ORG", "PER"]  # the bundled corpus's other types
    assert tagger.model.params["U_aux"].shape == (300, 3)
    assert result.dev.entity.f1 > 0.3
    report = api.gradcheck(model_dir=tmp_path / "run" / "model")
    trained = [results for title, results in report.sections if title.startswith("trained model")]
    assert report.ok and any(
        "U_aux" in r.name for r in trained[0]
    )  # the saved heads, not the demo's


def test_api_train_aux_weight_without_other_types_warns(tmp_path: Path) -> None:
    only_loc = tmp_path / "loc.txt"
    only_loc.write_text("In O\nParis B-LOC\n\nNear O\nOslo B-LOC\n", encoding="utf-8")
    config = load_config(
        None,
        [
            f"data.train={only_loc}",
            f"data.dev={only_loc}",
            "train.epochs=1",
            "train.aux_weight=0.5",
        ],
    )
    run = api.TrainingRun(config, tmp_path / "run")
    assert run.tagger.model.shape.aux_types == ()
    assert any("train.aux_weight has nothing to learn from" in note for note in run.notes)


def test_api_tuned_threshold_is_the_one_saved(tmp_path: Path) -> None:
    config = load_config(None, ["train.epochs=2", "train.tune_threshold=true"])
    result = api.train(config, tmp_path / "run")
    tagger, _, meta = load_model(tmp_path / "run" / "model")
    assert meta["threshold"] == tagger.threshold == result.threshold
    assert api.evaluate(tmp_path / "run" / "model", DEV).entity.f1 == result.dev.entity.f1


def test_api_read_config_keyword_overrides() -> None:
    config = api.read_config(None, values={"epochs": 2, "train__lr": 0.1, "model.hidden": (20, 10)})
    assert (config.train.epochs, config.train.lr, config.model.hidden) == (2, 0.1, (20, 10))
    again = api.read_config(config, values={"seed": 5})
    assert again.train.seed == 5 and again.model.hidden == (20, 10)


def test_api_read_config_ambiguous_or_unknown_bare_key() -> None:
    with pytest.raises(NerwinError, match="name the section"):
        api.read_config(None, values={"learning_rate": 0.1})


def test_api_read_config_finds_a_shipped_config_by_name() -> None:
    config = api.read_config("conll2003-random")
    assert config.train.unk_prob == 0.5
    with pytest.raises(NerwinError, match="shipped: .*conll2003"):
        api.read_config("no-such-config")
    with pytest.raises(TypeError, match="config must be"):
        api.read_config(3)


def test_api_public_names_train_with_keyword_overrides(tmp_path: Path) -> None:
    import nerwin

    result = nerwin.train(None, tmp_path / "run", epochs=1, hidden=20)
    assert result.best_epoch == 1
    _, config, _ = load_model(tmp_path / "run" / "model")
    assert config.model.hidden == (20,)
    scores = nerwin.evaluate(tmp_path / "run" / "model", DEV)
    assert scores == result.dev


def test_api_limits_blas_threads_during_a_call(tmp_path: Path) -> None:
    from threadpoolctl import threadpool_info

    seen = []

    class Watch:
        def start(self, epoch: int, total: int) -> None:
            seen.extend(p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas")

        def advance(self, windows: int, loss: float) -> None: ...

        def close(self) -> None: ...

    from threadpoolctl import threadpool_limits

    from nerwin.engine.blas import blas_threads

    def count() -> set[int]:
        return {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}

    with blas_threads(1):  # the pools are listed once, before the outer limit below
        pass
    with threadpool_limits(limits=2, user_api="blas"):  # this suite pins BLAS to 1: raise it
        assert count() == {2}
        api.train(load_config(None, ["train.epochs=1"]), tmp_path / "run", progress=Watch())
        assert count() == {2}  # restored after the call
    assert seen and set(seen) == {1}


def test_api_import_leaves_process_state_alone() -> None:
    import subprocess
    import sys

    code = (
        "import os, json; before = dict(os.environ); import nerwin, nerwin.cli, nerwin.api; "
        "print(json.dumps(sorted(set(os.environ.items()) ^ set(before.items()))))"
    )
    env = {k: v for k, v in __import__("os").environ.items() if "NUM_THREADS" not in k}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == []


def test_api_evaluate_location_types_and_a_file_without_them(
    run: TrainedRun, tmp_path: Path
) -> None:
    assert api.evaluate(run.model, DEV, location_types=["LOC"]) == api.evaluate(run.model, DEV)
    orgs = api.evaluate(run.model, DEV, location_types=["ORG"])
    assert orgs.entity.gold > 0 and orgs != api.evaluate(run.model, DEV)
    people = tmp_path / "people.txt"
    people.write_text("Bill B-PER\nwent O\n\n", encoding="utf-8")
    with pytest.raises(NerwinError, match="no entity of type LOC to score .*PER"):
        api.evaluate(run.model, people)
    result = invoke(
        ["evaluate", "--model", run.model, "--data", DEV, "--location-types", "ORG,LOC"]
    )
    assert_ok(result)


def test_api_gradcheck_of_a_model_reads_nothing_its_config_names(
    run: TrainedRun, tmp_path: Path
) -> None:
    import shutil

    import yaml

    model = tmp_path / "model"
    shutil.copytree(run.model, model)
    config = yaml.safe_load((model / "config.yaml").read_text())
    config["data"]["train"] = str(tmp_path / "secret.txt")  # a path the folder points at
    (model / "config.yaml").write_text(yaml.safe_dump(config))
    report = api.gradcheck(model_dir=model)
    assert report.ok and "random ids of its vocabulary" in " ".join(report.notes)
    with_data = api.gradcheck(model_dir=model, data=TRAIN)
    assert with_data.ok and str(TRAIN) in " ".join(with_data.notes)
