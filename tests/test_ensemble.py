"""Ensembles: members with their own seeds, averaged probabilities, resume, the model format."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from _trained import DEV, assert_ok, invoke
from nerwin import api
from nerwin.config import load_config
from nerwin.ensemble import MEMBERS_DIR, member_config, resume_run
from nerwin.errors import ConfigError, ModelError
from nerwin.modelio import load_model

OVERRIDES = ["train.epochs=2", "train.aux_weight=0.3", "train.tune_threshold=true"]


def weights(path: Path) -> dict[str, np.ndarray]:
    with np.load(path / "weights.npz") as archive:
        return {k: archive[k] for k in archive.files}


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ensemble") / "run"
    api.train(load_config(None, [*OVERRIDES, "train.ensemble=2"]), out)
    return out


def test_ensemble_model_averages_its_members(ensemble: Path) -> None:
    tagger, _, meta = load_model(ensemble / "model")
    assert meta["members"] == 2 and meta["format_version"] == 2 and len(tagger.models) == 2
    members = [load_model(ensemble / MEMBERS_DIR / k / "model")[0] for k in ("1", "2")]
    sentences = [["The", "museums", "in", "Paris", "are", "amazing", "."], ["Oslo", "is", "cold"]]
    mean = np.mean([m.probabilities(sentences) for m in members], axis=0)
    np.testing.assert_allclose(tagger.probabilities(sentences), mean, rtol=1e-6)
    assert not np.allclose(*[m.probabilities(sentences) for m in members])  # the seeds differ


def test_ensemble_first_member_is_the_single_model_run(ensemble: Path, tmp_path: Path) -> None:
    api.train(load_config(None, [*OVERRIDES, "train.tune_threshold=false"]), tmp_path / "single")
    single, member = weights(tmp_path / "single" / "model"), weights(ensemble / MEMBERS_DIR / "1" / "model")
    assert sorted(single) == sorted(member)
    assert all(np.array_equal(single[k], member[k]) for k in single)


def test_ensemble_metrics_name_each_member(ensemble: Path) -> None:
    rows = [json.loads(line) for line in (ensemble / "metrics.jsonl").read_text().splitlines()]
    assert [(r["member"], r["epoch"]) for r in rows] == [(1, 1), (1, 2), (2, 1), (2, 2)]
    assert member_config(load_config(None, ["train.seed=4"]), 2).train.seed == 2004


def test_ensemble_dev_score_is_the_averaged_models(ensemble: Path) -> None:
    tagger, _, meta = load_model(ensemble / "model")
    scores = api.evaluate(ensemble / "model", DEV)
    rerun = resume_run(ensemble)  # finished: training nothing, scoring the saved ensemble again
    assert rerun.finished and list(rerun.epochs()) == []
    result = rerun.finish()
    assert result.dev.entity.f1 == scores.entity.f1 and result.threshold == tagger.threshold
    assert result.member_epochs == tuple(meta["member_epochs"])


def test_ensemble_resume_after_a_stop_in_member_two_is_identical(ensemble: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    run = api.open_run(load_config(None, [*OVERRIDES, "train.ensemble=2"]), out)
    for report in run.epochs():
        if report.member == 2:
            break  # as if the process died after member 2's first epoch (its checkpoint is written)
    resumed = resume_run(out)
    assert not resumed.finished and "1 of 2 members done" in resumed.notes[0]
    assert [(r.member, r.epoch) for r in resumed.epochs()] == [(2, 2)]
    resumed.finish()
    straight, again = weights(ensemble / "model"), weights(out / "model")
    assert sorted(straight) == sorted(again) and all(np.array_equal(straight[k], again[k]) for k in straight)


def test_ensemble_refuses_init_from(tmp_path: Path, ensemble: Path) -> None:
    with pytest.raises(ConfigError, match="train.ensemble"):
        api.open_run(load_config(None, ["train.ensemble=2"]), tmp_path / "x",
                     init_from=ensemble / MEMBERS_DIR / "1" / "model")
    assert not (tmp_path / "x").exists()


def test_ensemble_missing_member_weights_is_a_model_error(ensemble: Path, tmp_path: Path) -> None:
    import shutil

    broken = tmp_path / "model"
    shutil.copytree(ensemble / "model", broken)
    arrays = {k: v for k, v in weights(broken).items() if k != "member1.W"}
    np.savez(broken / "weights.npz", **arrays)
    with pytest.raises(ModelError, match="member1.W is missing"):
        load_model(broken)


def test_ensemble_cli_prints_members_and_the_ensemble(tmp_path: Path) -> None:
    result = invoke(["train", "--out", str(tmp_path / "run"), "--set", "train.ensemble=2",
                     "--set", "train.epochs=1"])
    assert_ok(result)
    assert "member 1  epoch  1" in result.stdout and "member 2  epoch  1" in result.stdout
    assert "ensemble of 2 (best epochs 1, 1)" in result.stdout
    predicted = invoke(["predict", "--model", str(tmp_path / "run" / "model"), "Flights to Paris resumed."])
    assert_ok(predicted)


def test_ensemble_init_from_an_ensemble_model_is_refused(ensemble: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ensemble of 2"):
        api.open_run(load_config(None, ["train.epochs=1"]), tmp_path / "x", init_from=ensemble / "model")


def _copy(run: Path, out: Path) -> Path:
    import shutil

    shutil.copytree(run, out)
    return out


def test_ensemble_force_clears_the_earlier_members_and_keeps_user_files(ensemble: Path,
                                                                         tmp_path: Path) -> None:
    out = _copy(ensemble, tmp_path / "run")
    (out / "notes.txt").write_text("mine")
    (out / MEMBERS_DIR / "2" / "mine.txt").write_text("mine")
    run = api.open_run(load_config(None, [*OVERRIDES, "train.ensemble=2", "train.seed=5"]), out, force=True)
    del run  # as if the process died before member 1 wrote its first checkpoint
    assert not (out / "model").exists() and not (out / "metrics.jsonl").exists()
    first = out / MEMBERS_DIR / "1"
    assert not (first / "last").exists() and not (first / "model").exists()
    assert sorted(p.name for p in (out / MEMBERS_DIR / "2").iterdir()) == ["mine.txt"]
    assert (out / "notes.txt").read_text() == "mine"
    resumed = resume_run(out)  # must not take member 1's stale (seed 0) checkpoint as finished
    assert not resumed.finished and "at member 1 of 2: 0 of 2 members done" in resumed.notes[0]


def test_ensemble_force_single_model_removes_the_members(ensemble: Path, tmp_path: Path) -> None:
    out = _copy(ensemble, tmp_path / "run")
    api.open_run(load_config(None, ["train.epochs=1"]), out, force=True)
    assert not (out / MEMBERS_DIR).exists() and not (out / "model").exists()
    assert sorted(p.name for p in out.iterdir()) == ["config.yaml"]


def test_ensemble_member_finished_only_for_its_own_seed_and_config(ensemble: Path, tmp_path: Path) -> None:
    from nerwin.ensemble import _member_finished

    config = load_config(None, [*OVERRIDES, "train.ensemble=2"])
    member = ensemble / MEMBERS_DIR / "2"
    assert _member_finished(member, member_config(config, 1))
    assert not _member_finished(member, member_config(config, 0))  # member 1's seed
    assert not _member_finished(member, member_config(load_config(None, [*OVERRIDES, "train.lr=0.1"]), 1))
    copy = _copy(member, tmp_path / "2")
    (copy / "model" / "meta.json").unlink()  # the checkpoint alone does not make a finished member
    assert not _member_finished(copy, member_config(config, 1))


def test_ensemble_resume_redoes_a_stale_ensemble_model(ensemble: Path, tmp_path: Path) -> None:
    out = _copy(ensemble, tmp_path / "run")
    meta_path = out / "model" / "meta.json"
    meta_path.write_text(json.dumps({**json.loads(meta_path.read_text()), "seed": 99}))
    resumed = resume_run(out)
    assert not resumed.finished and "averaging the finished members" in resumed.notes[0]
    assert list(resumed.epochs()) == []
    resumed.finish()
    assert json.loads(meta_path.read_text())["seed"] == 0


def test_ensemble_interruption_names_the_member(tmp_path: Path) -> None:
    import os
    import signal

    out = tmp_path / "run"
    run = api.open_run(load_config(None, [*OVERRIDES, "train.ensemble=3"]), out)
    with pytest.raises(api.TrainingInterrupted) as info:
        for report in run.epochs():
            if report.member == 2:
                os.kill(os.getpid(), signal.SIGTERM)  # stops member 2 before its next step
    message = str(info.value)
    assert "member 2 of 3" in message and f"nerwin train --resume {out} (continues member 2)" in message
    assert "\n" not in message
    assert "at member 2 of 3: 1 of 3 members done" in resume_run(out).notes[0]


def test_ensemble_plot_draws_each_member(ensemble: Path) -> None:
    from nerwin.plot import member_curves, read_metrics

    members = member_curves(read_metrics(ensemble))
    assert list(members) == [1, 2] and all(c.epochs == [1, 2] for c in members.values())
