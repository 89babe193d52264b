"""Ensembles: members with their own seeds, averaged probabilities, resume, the model format."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _trained import DEV, assert_ok, assert_user_error, invoke

from nerwin import api
from nerwin.config import load_config
from nerwin.errors import ConfigError, ModelError
from nerwin.model.folder import load_model
from nerwin.training.ensemble import MEMBERS_DIR, member_config, resume_run

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
    assert meta["members"] == 2 and meta["format_version"] == 3 and len(tagger.models) == 2
    members = [load_model(ensemble / MEMBERS_DIR / k / "model")[0] for k in ("1", "2")]
    sentences = [["The", "museums", "in", "Paris", "are", "amazing", "."], ["Oslo", "is", "cold"]]
    mean = np.mean([m.probabilities(sentences) for m in members], axis=0)
    np.testing.assert_allclose(tagger.probabilities(sentences), mean, rtol=1e-6)
    assert not np.allclose(*[m.probabilities(sentences) for m in members])  # the seeds differ


def test_ensemble_first_member_is_the_single_model_run(ensemble: Path, tmp_path: Path) -> None:
    api.train(load_config(None, [*OVERRIDES, "train.tune_threshold=false"]), tmp_path / "single")
    single, member = (
        weights(tmp_path / "single" / "model"),
        weights(ensemble / MEMBERS_DIR / "1" / "model"),
    )
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


def test_ensemble_resume_after_a_stop_in_member_two_is_identical(
    ensemble: Path, tmp_path: Path
) -> None:
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
    assert sorted(straight) == sorted(again) and all(
        np.array_equal(straight[k], again[k]) for k in straight
    )


def test_ensemble_refuses_init_from(tmp_path: Path, ensemble: Path) -> None:
    with pytest.raises(ConfigError, match="train.ensemble"):
        api.open_run(
            load_config(None, ["train.ensemble=2"]),
            tmp_path / "x",
            init_from=ensemble / MEMBERS_DIR / "1" / "model",
        )
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
    result = invoke(
        [
            "train",
            "--out",
            str(tmp_path / "run"),
            "--set",
            "train.ensemble=2",
            "--set",
            "train.epochs=1",
        ]
    )
    assert_ok(result)
    assert "member 1  epoch  1" in result.stdout and "member 2  epoch  1" in result.stdout
    assert "ensemble of 2 (best epochs 1, 1)" in result.stdout
    predicted = invoke(
        ["predict", "--model", str(tmp_path / "run" / "model"), "Flights to Paris resumed."]
    )
    assert_ok(predicted)


def test_ensemble_init_from_an_ensemble_model_is_refused(ensemble: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ensemble of 2"):
        api.open_run(
            load_config(None, ["train.epochs=1"]), tmp_path / "x", init_from=ensemble / "model"
        )


def _copy(run: Path, out: Path) -> Path:
    import shutil

    shutil.copytree(run, out)
    return out


def test_ensemble_force_clears_the_earlier_members_and_keeps_user_files(
    ensemble: Path, tmp_path: Path
) -> None:
    out = _copy(ensemble, tmp_path / "run")
    (out / "notes.txt").write_text("mine")
    (out / MEMBERS_DIR / "2" / "mine.txt").write_text("mine")
    run = api.open_run(
        load_config(None, [*OVERRIDES, "train.ensemble=2", "train.seed=5"]), out, force=True
    )
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


def test_ensemble_member_finished_only_for_its_own_seed_and_config(
    ensemble: Path, tmp_path: Path
) -> None:
    from nerwin.training.ensemble import _member_plan

    def _member_finished(folder: Path, config) -> bool:
        return _member_plan(folder, config) == "done"

    config = load_config(None, [*OVERRIDES, "train.ensemble=2"])
    member = ensemble / MEMBERS_DIR / "2"
    assert _member_finished(member, member_config(config, 1))
    assert not _member_finished(member, member_config(config, 0))  # member 1's seed
    assert not _member_finished(
        member, member_config(load_config(None, [*OVERRIDES, "train.lr=0.1"]), 1)
    )
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


def _member_rows(out: Path) -> list[tuple[int, int]]:
    return [
        (r["member"], r["epoch"])
        for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())
    ]


@pytest.mark.parametrize("model", ["missing", "another"])
def test_ensemble_resume_trains_a_member_again_without_its_own_model(
    ensemble: Path, tmp_path: Path, model: str
) -> None:
    import shutil

    out = _copy(ensemble, tmp_path / "run")
    shutil.rmtree(out / MEMBERS_DIR / "2" / "model")
    if model == "another":  # member 1's model (seed 0) where member 2's (seed 1000) belongs
        shutil.copytree(out / MEMBERS_DIR / "1" / "model", out / MEMBERS_DIR / "2" / "model")
    (out / "model" / "meta.json").unlink()
    resumed = resume_run(out)  # member 2's checkpoint says it finished: it cannot be trusted alone
    assert "at member 2 of 2: 1 of 2 members done" in resumed.notes[0]
    assert "member 2: its model is missing or from another run; training it again" in resumed.notes
    assert [(r.member, r.epoch) for r in resumed.epochs()] == [(2, 1), (2, 2)]
    resumed.finish()
    assert json.loads((out / MEMBERS_DIR / "2" / "model" / "meta.json").read_text())["seed"] == 1000
    assert all(
        np.array_equal(weights(ensemble / "model")[k], w) for k, w in weights(out / "model").items()
    )
    assert _member_rows(out) == [(1, 1), (1, 2), (2, 1), (2, 2)]  # member 2's old lines replaced


def test_ensemble_resume_restarts_a_stale_member_and_drops_its_lines(
    ensemble: Path, tmp_path: Path
) -> None:
    out = _copy(ensemble, tmp_path / "run")
    meta_path = out / MEMBERS_DIR / "2" / "last" / "meta.json"  # a checkpoint of another seed
    meta_path.write_text(json.dumps({**json.loads(meta_path.read_text()), "seed": 99}))
    with (out / "metrics.jsonl").open("a") as log:
        log.write("not json\n")  # a line it cannot read is kept as it is
    resumed = resume_run(out)
    assert (
        "member 2: its checkpoint is from another config or seed; training it again"
        in resumed.notes
    )
    assert [(r.member, r.epoch) for r in resumed.epochs()] == [(2, 1), (2, 2)]
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["member"] for line in lines if line != "not json"] == [1, 1, 2, 2]
    assert "not json" in lines and sorted(p.name for p in out.iterdir()) == [
        "config.yaml",
        "members",
        "metrics.jsonl",
        "model",
    ]  # no temporary file left


def test_ensemble_finish_refuses_a_member_model_of_another_run(
    ensemble: Path, tmp_path: Path
) -> None:
    out = _copy(ensemble, tmp_path / "run")
    resumed = resume_run(out)
    assert resumed.finished
    folder = out / MEMBERS_DIR / "2" / "model"
    meta_path = folder / "meta.json"
    meta_path.write_text(json.dumps({**json.loads(meta_path.read_text()), "seed": 0}))
    with pytest.raises(ModelError, match="not member 2's model") as info:
        resumed.finish()
    assert str(info.value).startswith(f"{folder}: ") and "\n" not in str(info.value)


@pytest.mark.parametrize(
    "mine", ["members/2/model/notes.txt", "members/2/last/sub/x", "members/2/.last.old/x"]
)
def test_ensemble_force_refuses_to_delete_a_member_file_nerwin_did_not_write(
    ensemble: Path, tmp_path: Path, mine: str
) -> None:
    out = _copy(ensemble, tmp_path / "run")
    (out / mine).parent.mkdir(parents=True, exist_ok=True)
    (out / mine).write_text("mine")
    before = _snapshot(out)
    first = out / "/".join(mine.split("/")[:4])  # the model folder's own entry
    for size in ("1", "2"):
        result = invoke(
            [
                "train",
                "--set",
                "train.epochs=1",
                "--set",
                f"train.ensemble={size}",
                "--out",
                out,
                "--force",
            ]
        )
        assert_user_error(result, f"{first}: not a file nerwin writes")
        assert _snapshot(out) == before


@pytest.mark.parametrize(
    "name", ["members", "members/2", "members/2/metrics.jsonl", "members/2/model"]
)
@pytest.mark.parametrize("how", ["force", "resume"])
def test_ensemble_never_writes_through_a_link(
    ensemble: Path, tmp_path: Path, name: str, how: str
) -> None:
    import shutil

    out, outside = _copy(ensemble, tmp_path / "run"), tmp_path / "outside"
    linked = out / name
    (outside / name).parent.mkdir(parents=True)
    shutil.move(linked, outside / name)
    linked.symlink_to(outside / name)
    (out / "model" / "meta.json").unlink()  # so that a resume has work to do
    before = _snapshot(outside)
    args = (
        ["--resume", out]
        if how == "resume"
        else [*_args(OVERRIDES), "--set", "train.ensemble=2", "--out", out, "--force"]
    )
    assert_user_error(invoke(["train", *args]), f"{linked}: a symbolic link")
    assert _snapshot(outside) == before and linked.is_symlink()


def _args(overrides: list[str]) -> list[str]:
    return [arg for o in overrides for arg in ("--set", o)]


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


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
    assert (
        "member 2 of 3" in message
        and f"nerwin train --resume {out} (continues member 2)" in message
    )
    assert "\n" not in message
    assert "at member 2 of 3: 1 of 3 members done" in resume_run(out).notes[0]


def test_ensemble_plot_draws_each_member(ensemble: Path) -> None:
    from nerwin.training.curves import member_curves, read_metrics

    members = member_curves(read_metrics(ensemble))
    assert list(members) == [1, 2] and all(c.epochs == [1, 2] for c in members.values())
