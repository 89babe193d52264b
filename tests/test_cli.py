"""The command line: help, version, train, evaluate, predict, gradcheck; one-line user errors."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _trained import DEV, ROOT, TrainedRun, assert_ok, assert_user_error, invoke

from nerwin import __version__, api
from nerwin.config import load_config
from nerwin.engine.opcases import OP_CASES
from nerwin.metrics import conlleval_report
from nerwin.model.folder import FILES

COMMANDS = ("train", "evaluate", "predict", "gradcheck")


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    """`nerwin train --set train.epochs=2 --out DIR`, run once for this module (do not modify)."""
    out = tmp_path_factory.mktemp("cli") / "run"
    result = invoke(["train", "--set", "train.epochs=2", "--out", out])
    return out, result


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


# --- help and version ------------------------------------------------------------------------


def test_cli_help_lists_commands() -> None:
    result = invoke(["--help"])
    assert_ok(result)
    for command in COMMANDS:
        assert command in result.stdout


def test_cli_no_arguments_shows_help() -> None:
    result = invoke([])
    assert "Usage" in result.stdout + result.stderr
    assert all(c in result.stdout + result.stderr for c in COMMANDS)


@pytest.mark.parametrize(
    "command, options",
    [
        ("train", ["--config", "--set", "--out", "--force", "--seed"]),
        ("evaluate", ["--model", "--data", "--json", "--threshold"]),
        ("predict", ["--model", "--input", "--format", "--probs", "--threshold", "--pretokenized"]),
        ("gradcheck", ["--config", "--set", "--model", "--eps", "--tol"]),
    ],
)
def test_cli_command_help(command: str, options: list[str]) -> None:
    result = invoke([command, "--help"])
    assert_ok(result)
    for option in options:
        assert option in result.stdout, option


def test_cli_version() -> None:
    result = invoke(["--version"])
    assert_ok(result)
    assert result.stdout.strip() == f"nerwin {__version__}"
    from importlib.metadata import version

    assert version("nerwin") == __version__


def test_cli_python_m_nerwin_version(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "nerwin", "--version"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"nerwin {__version__}"


# --- train ------------------------------------------------------------------------------------


def test_cli_train_writes_the_run_directory(cli_run) -> None:
    out, result = cli_run
    assert_ok(result)
    for sub in ("model", "last"):
        for name in FILES:
            assert (out / sub / name).is_file(), f"{sub}/{name}"
    assert (out / "config.yaml").is_file()
    assert load_config(out / "config.yaml") == load_config(None, ["train.epochs=2"])
    records = [
        json.loads(line)
        for line in (out / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert [r["epoch"] for r in records] == [1, 2]
    epoch_lines = [line for line in result.stdout.splitlines() if line.startswith("epoch")]
    assert len(epoch_lines) == 2
    assert "model saved to" in result.stdout.splitlines()[-1]
    assert "vocabulary" in result.stderr  # notes go to stderr, results to stdout
    assert "vocabulary" not in result.stdout


def test_cli_train_refuses_existing_run_without_force(cli_run) -> None:
    out, _ = cli_run
    before = _snapshot(out)
    result = invoke(["train", "--set", "train.epochs=1", "--out", out])
    assert_user_error(result, str(out), "--force")
    assert _snapshot(out) == before


def test_cli_train_force_overwrites(cli_run, tmp_path: Path) -> None:
    out = tmp_path / "copy"
    shutil.copytree(cli_run[0], out)
    result = invoke(
        ["train", "--set", "train.epochs=1", "--set", "train.seed=5", "--out", out, "--force"]
    )
    assert_ok(result)
    lines = (out / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1]  # the old log was not appended to
    assert load_config(out / "config.yaml").train.seed == 5
    assert json.loads((out / "model" / "meta.json").read_text())["epoch"] == 1


def test_cli_train_same_seed_same_weights(tmp_path: Path) -> None:
    def weights(name: str, seed: int) -> dict[str, np.ndarray]:
        out = tmp_path / name
        assert_ok(invoke(["train", "--set", "train.epochs=1", "--seed", str(seed), "--out", out]))
        with np.load(out / "model" / "weights.npz", allow_pickle=False) as archive:
            return {k: archive[k] for k in archive.files}

    first, second, other = weights("a", 3), weights("b", 3), weights("c", 4)
    assert first.keys() == second.keys()
    for key in first:
        assert first[key].dtype == second[key].dtype
        assert first[key].tobytes() == second[key].tobytes(), key
    assert any(not np.array_equal(first[k], other[k]) for k in first)  # the seed matters


# --- evaluate ---------------------------------------------------------------------------------


def test_cli_evaluate_prints_conlleval_lines(run: TrainedRun) -> None:
    result = invoke(["evaluate", "--model", run.model, "--data", "data/default/dev.txt"])
    assert_ok(result)
    scores = api.evaluate(run.model, DEV)
    assert result.stdout == conlleval_report(scores) + "\n"
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    assert re.fullmatch(
        rf"processed {scores.n_tokens} tokens with {scores.entity.gold} phrases; "
        rf"found: {scores.entity.predicted} phrases; correct: {scores.entity.correct}\.",
        lines[0],
    )
    assert re.fullmatch(
        r"accuracy: +\d+\.\d\d%; precision: +\d+\.\d\d%; recall: +\d+\.\d\d%; "
        r"FB1: +\d+\.\d\d",
        lines[1],
    )
    assert re.fullmatch(
        rf" +LOC: precision: +\d+\.\d\d%; recall: +\d+\.\d\d%; FB1: +\d+\.\d\d  "
        rf"{scores.entity.predicted}",
        lines[2],
    )
    assert f"{100 * scores.entity.f1:6.2f}" in lines[2]


@pytest.mark.parametrize("threshold", [None, 0.2])
def test_cli_evaluate_json_equals_api(run: TrainedRun, threshold: float | None) -> None:
    extra = [] if threshold is None else ["--threshold", str(threshold)]
    result = invoke(["evaluate", "--model", run.model, "--data", DEV, "--json", *extra])
    assert_ok(result)
    data = json.loads(result.stdout)
    assert set(data) == {"entity", "token"}
    for part in data.values():
        assert set(part) == {"precision", "recall", "f1", "gold", "predicted", "correct"}
    assert data == api.evaluate(run.model, DEV, threshold).to_dict()


# --- gradcheck --------------------------------------------------------------------------------


def _gradient_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if re.search(r"max_rel=", line)]


def test_cli_gradcheck_checks_every_op_and_the_model() -> None:
    result = invoke(["gradcheck"])
    assert_ok(result)
    lines = _gradient_lines(result.stdout)
    for case in OP_CASES:
        mine = [line for line in lines if line.startswith(f"{case.name}: d/d")]
        assert mine, f"op case {case.name!r} missing from the output"
        assert all(line.rstrip().endswith(" ok") for line in mine), mine
    for name in ("E", "W", "b", "u", "c"):
        mine = [line for line in lines if line.startswith(f"model dJ/d{name} ")]
        assert len(mine) == 1, name
        assert mine[0].rstrip().endswith(" ok"), mine[0]
    assert result.stdout.rstrip().endswith(f"{len(lines)} of {len(lines)} gradients ok")


def test_cli_gradcheck_trained_model(run: TrainedRun) -> None:
    result = invoke(["gradcheck", "--model", run.model])
    assert_ok(result)
    assert f"trained model {run.model}" in result.stdout
    assert all(line.rstrip().endswith(" ok") for line in _gradient_lines(result.stdout))


# --- user errors: exit 1, one `error:` line, no traceback ---------------------------------------


def test_cli_error_unknown_config_key(tmp_path: Path) -> None:
    result = invoke(["train", "--set", "train.learning_rate=0.1", "--out", tmp_path / "r"])
    assert_user_error(result, "train.learning_rate", "train.lr")


def test_cli_error_wrong_type(tmp_path: Path) -> None:
    result = invoke(["train", "--set", "train.lr=fast", "--out", tmp_path / "r"])
    assert_user_error(result, "train.lr", "float")


def test_cli_error_every_config_problem_on_one_line(tmp_path: Path) -> None:
    result = invoke(
        ["train", "--set", "train.epochs=many", "--set", "model.hiden=[3]", "--out", tmp_path / "r"]
    )
    assert_user_error(result, "train.epochs", "model.hiden", "model.hidden")


def test_cli_error_missing_config_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    assert_user_error(invoke(["train", "--config", missing, "--out", tmp_path / "r"]), str(missing))


def test_cli_error_yaml_syntax_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  lr: 0.1\n  epochs: 3\n    seed: 4\n", encoding="utf-8")
    assert_user_error(invoke(["train", "--config", bad, "--out", tmp_path / "r"]), f"{bad}:4")


@pytest.mark.parametrize("key", ["data.train", "data.dev"])
def test_cli_error_missing_corpus(tmp_path: Path, key: str) -> None:
    missing = tmp_path / "nope.txt"
    result = invoke(["train", "--set", f"{key}={missing}", "--out", tmp_path / "r"])
    assert_user_error(result, str(missing))


def test_cli_error_out_is_a_file(tmp_path: Path) -> None:
    out = tmp_path / "file"
    out.write_text("x")
    assert_user_error(invoke(["train", "--out", out]), str(out))


@pytest.mark.parametrize("command", ["evaluate", "predict", "gradcheck"])
def test_cli_error_missing_model_dir(tmp_path: Path, command: str) -> None:
    missing = tmp_path / "no-model"
    args = {
        "evaluate": ["evaluate", "--model", missing, "--data", DEV],
        "predict": ["predict", "--model", missing, "Paris"],
        "gradcheck": ["gradcheck", "--model", missing],
    }[command]
    assert_user_error(invoke(args), str(missing))


def test_cli_error_evaluate_missing_data(run: TrainedRun, tmp_path: Path) -> None:
    missing = tmp_path / "nope.conll"
    assert_user_error(invoke(["evaluate", "--model", run.model, "--data", missing]), str(missing))


def _corrupt(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "garbage":
        path.write_bytes(b"this is not a numpy archive\n" * 10)
    elif how == "npy-not-npz":  # a single .npy array where the archive should be
        with open(path, "wb") as handle:
            np.save(handle, np.zeros((3, 3), dtype=np.float32))


@pytest.mark.parametrize("how", ["truncated", "empty", "garbage", "npy-not-npz"])
@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_cli_error_corrupt_weights(run: TrainedRun, tmp_path: Path, how: str, command: str) -> None:
    model = tmp_path / "model"
    shutil.copytree(run.model, model)
    _corrupt(model / "weights.npz", how)
    args = (
        ["evaluate", "--model", model, "--data", DEV]
        if command == "evaluate"
        else ["predict", "--model", model, "Paris"]
    )
    assert_user_error(invoke(args), "weights.npz")


def test_cli_error_predict_missing_input(run: TrainedRun, tmp_path: Path) -> None:
    missing = tmp_path / "nope.txt"
    assert_user_error(invoke(["predict", "--model", run.model, "--input", missing]), str(missing))


def test_cli_error_predict_invalid_utf8_names_file_and_line(
    run: TrainedRun, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"Paris is nice.\nbad \xff byte\n")
    assert_user_error(invoke(["predict", "--model", run.model, "--input", bad]), f"{bad}:2")
    assert_user_error(
        invoke(["predict", "--model", run.model, "--pretokenized", "--input", bad]), f"{bad}:2"
    )


def test_cli_error_gradcheck_bad_config_key() -> None:
    assert_user_error(
        invoke(["gradcheck", "--set", "model.actvation=tanh"]),
        "model.actvation",
        "model.activation",
    )


def test_cli_error_user_error_in_a_real_process(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "nerwin",
            "train",
            "--set",
            "train.lr=fast",
            "--out",
            str(tmp_path / "r"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith("error: ") and "train.lr" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_unknown_format_is_a_usage_error(run: TrainedRun) -> None:
    result = invoke(["predict", "--model", run.model, "--format", "xml", "Paris"])
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert "--format" in result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr


def test_cli_threshold_out_of_range_is_a_usage_error(run: TrainedRun) -> None:
    result = invoke(["evaluate", "--model", run.model, "--data", DEV, "--threshold", "1.5"])
    assert result.exit_code == 2
    assert "--threshold" in result.stderr


def test_cli_predict_smoke(run: TrainedRun) -> None:
    result = invoke(["predict", "--model", run.model, "The museums in Paris are amazing."])
    assert_ok(result)
    assert result.stdout == "The museums in [Paris]LOC are amazing.\n"
    assert result.stderr == ""


def test_cli_relative_data_path_found_from_another_directory(
    run: TrainedRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke(["evaluate", "--model", run.model, "--data", "data/default/dev.txt", "--json"])
    assert_ok(result)
    assert (
        json.loads(result.stdout)
        == api.evaluate(run.model, ROOT / "data/default/dev.txt").to_dict()
    )


def test_cli_predict_pretokenized_with_text_is_usage_error(run: TrainedRun) -> None:
    result = invoke(["predict", "--model", str(run.out_dir / "model"), "--pretokenized", "Paris"])
    assert result.exit_code == 2


@pytest.mark.parametrize("option", [["--eps", "0"], ["--tol", "-1"]])
def test_cli_gradcheck_rejects_bad_tolerances(option: list[str]) -> None:
    assert invoke(["gradcheck", *option]).exit_code == 2


@pytest.mark.parametrize(
    "command", ["train", "evaluate", "gradcheck", "predict", "explain", "data", "plot"]
)
def test_cli_help_shows_no_type_noise_after_flags(command: str) -> None:
    result = invoke([command, "--help"])
    assert_ok(result)
    assert "<bool>" not in result.stdout


def test_cli_predict_help_lists_the_formats() -> None:
    assert "inline|conll|json" in invoke(["predict", "--help"]).stdout


def test_cli_predict_run_folder_suggests_its_model(run: TrainedRun) -> None:
    result = invoke(["predict", "--model", run.out_dir, "Paris"])
    assert_user_error(result, "did you mean", str(run.out_dir / "model"))


def test_cli_train_config_by_shipped_name(tmp_path: Path) -> None:
    result = invoke(
        ["train", "--config", "default", "--set", "train.epochs=1", "--out", tmp_path / "r"]
    )
    assert_ok(result)
    result = invoke(["train", "--config", "nope", "--out", tmp_path / "s"])
    assert_user_error(result, "nope", "shipped: ")


def test_cli_train_failed_start_leaves_no_run_folder(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke(["train", "--set", "data.train=missing.txt"])
    assert_user_error(result, "missing.txt")
    assert not any((tmp_path / "runs").iterdir())


@pytest.mark.slow
def test_cli_ten_runs_started_at_once_get_ten_folders(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "nerwin", "train", "--set", "train.epochs=1"]
    procs = [
        subprocess.Popen(
            cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(10)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0] * 10, [err for _, err in outs]
    folders = sorted((tmp_path / "runs").iterdir())
    assert len(folders) == 10
    for folder in folders:
        assert len((folder / "metrics.jsonl").read_text().splitlines()) == 1
        assert (folder / "model" / "meta.json").is_file()
    assert len({out for out, _ in outs}) == 10  # each printed its own folder
