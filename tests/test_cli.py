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


# --- predict as a stream: line by line, document markers, JSON lines, --probs everywhere ------


def _start_predict(model: Path, *args: str, stdin=subprocess.PIPE) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "nerwin", "predict", "--model", str(model), *args],
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _read_line(proc: subprocess.Popen, timeout: float = 60.0) -> bytes:
    """The next output line, failing (not hanging) when none comes: the tool must not wait for
    more input before answering."""
    import select

    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, "no output although the input line was complete"
    return proc.stdout.readline()


@pytest.mark.parametrize("fmt", ["inline", "json"])
def test_cli_predict_answers_each_line_of_a_pipe_before_the_next(run: TrainedRun, fmt: str) -> None:
    proc = _start_predict(run.model, "--format", fmt)
    try:
        answers = []
        for line in ["The museums in Paris are amazing.", "We flew to London.", "Nothing."]:
            proc.stdin.write(line.encode() + b"\n")
            proc.stdin.flush()  # and keep the pipe open: the answer must come anyway
            answers.append(_read_line(proc).decode())
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0, proc.stderr.read()
    finally:
        proc.kill()
    if fmt == "json":
        assert [json.loads(a)["text"] for a in answers][1] == "We flew to London."
    else:
        assert (
            re.sub(r"\[([^\]]*)\]LOC", r"\1", answers[0]) == "The museums in Paris are amazing.\n"
        )
    one_shot = _predict_out(
        run, "--format", fmt, "The museums in Paris are amazing.", "We flew to London.", "Nothing."
    )
    assert "".join(answers) == one_shot  # the same output as all at once


def _predict_out(run: TrainedRun, *args: str, input: str | bytes | None = None) -> str:
    result = invoke(["predict", "--model", run.model, *args], input=input)
    assert_ok(result)
    return result.stdout


def test_cli_predict_answers_a_terminal_line_by_line(run: TrainedRun) -> None:
    pty = pytest.importorskip("pty")
    import os

    leader, follower = pty.openpty()
    proc = _start_predict(run.model, stdin=follower)
    os.close(follower)
    try:
        os.write(leader, b"The museums in Paris are amazing.\n")
        first = _read_line(proc)
        os.write(leader, b"We flew to London.\n")
        second = _read_line(proc)
        os.write(leader, b"\x04")  # Ctrl-D: end of input
        assert proc.wait(timeout=60) == 0, proc.stderr.read()
    finally:
        proc.kill()
        os.close(leader)
    assert b"Paris" in first and b"London" in second


def test_cli_predict_large_input_is_still_batched(run: TrainedRun, tmp_path: Path) -> None:
    # a pipe that already holds everything: no document waits for input, so batches stay large
    # (one write per batch: 2,000 short documents arrive in very few reads)
    lines = "".join(f"Flight {i} left Paris for London.\n" for i in range(2000)).encode()
    proc = _start_predict(run.model)
    out, err = proc.communicate(lines, timeout=120)
    assert proc.returncode == 0, err
    assert out.count(b"\n") == 2000 and b"[Paris]LOC" in out


def test_cli_predict_conll_marks_each_document(run: TrainedRun) -> None:
    out = _predict_out(run, "--format", "conll", "Paris is big. Rome is old.", "", "Oslo.")
    blocks = out.split("-DOCSTART-\n\n")
    assert blocks[0] == "" and len(blocks) == 4  # a marker opens every document, empty ones too
    assert blocks[1].count("\n\n") == 2  # two sentences, each closed by a blank line
    assert blocks[2] == ""
    assert blocks[3].startswith("Oslo ") and blocks[3].endswith("\n\n")


def test_cli_predict_jsonl_ids_reach_every_format(run: TrainedRun, tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl"
    records = [
        {"id": "a 1", "text": "The museums in Paris are amazing."},
        {"text": "No id here.", "other": True},
        {"id": 7, "text": "Rome and Oslo."},
        {"id": {"nested": [1, 2]}, "text": ""},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + "\n", encoding="utf-8")
    out = [
        json.loads(line)
        for line in _predict_out(
            run, "--input-format", "jsonl", "--input", path, "--format", "json"
        ).splitlines()
    ]
    assert [r.get("id", "none") for r in out] == ["a 1", "none", 7, {"nested": [1, 2]}]
    assert [r["text"] for r in out] == [r["text"] for r in records]
    conll = _predict_out(run, "--input-format", "jsonl", "--input", path, "--format", "conll")
    markers = [line for line in conll.splitlines() if line.startswith("-DOCSTART-")]
    assert markers == [
        '-DOCSTART- "a 1"',
        "-DOCSTART-",
        "-DOCSTART- 7",
        '-DOCSTART- {"nested": [1, 2]}',
    ]
    inline = _predict_out(
        run, "--input-format", "jsonl", "--format", "inline", input=path.read_bytes()
    )
    assert [line.split("\t")[0] for line in inline.splitlines()] == [
        '"a 1"',
        "No id here.",
        "7",
        '{"nested": [1, 2]}',
    ]


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("{not json", "not valid JSON"),
        ('["a list"]', "JSON object"),
        ('{"id": 3}', '"text"'),
        ('{"id": 3, "text": 5}', '"text"'),
    ],
)
def test_cli_predict_bad_jsonl_line_names_file_and_line(
    run: TrainedRun, tmp_path: Path, line: str, needle: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": 1, "text": "Paris."}\n\n' + line + "\n", encoding="utf-8")
    result = invoke(
        ["predict", "--model", run.model, "--input-format", "jsonl", "--input", path, "-f", "json"]
    )
    assert_user_error(result, f"{path}:3", needle)
    assert result.stdout == ""  # the bad line falls in the first batch: no partial batch


def test_cli_predict_jsonl_takes_no_text_arguments(run: TrainedRun) -> None:
    for extra in (["Paris"], ["--pretokenized"]):
        result = invoke(["predict", "--model", run.model, "--input-format", "jsonl", *extra])
        assert result.exit_code == 2, (result.stdout, result.stderr)
        assert "--input-format" in result.stderr


def test_cli_predict_probs_in_every_format(run: TrainedRun) -> None:
    text = "The museums in Paris are amazing."
    inline = _predict_out(run, "--probs", "--threshold", "0.3", text)
    marks = re.findall(r"\[([^\]]*)\]LOC\((\d\.\d\d)\)", inline)
    assert marks and all(0.3 <= float(p) <= 1.0 for _, p in marks)
    conll = _predict_out(run, "--probs", "--format", "conll", text).splitlines()
    rows = [r.split(" ") for r in conll[2:] if r]
    assert [r[0] for r in rows] == ["The", "museums", "in", "Paris", "are", "amazing", "."]
    assert all(len(r) == 3 and re.fullmatch(r"\d\.\d{4}", r[1]) for r in rows)
    assert all((float(r[1]) >= 0.5) == (r[2] != "O") for r in rows if abs(float(r[1]) - 0.5) > 1e-3)
    record = json.loads(_predict_out(run, "--probs", "--format", "json", text))
    assert [t["probability"] for t in record["tokens"]] == [float(r[1]) for r in rows]
    pretokenized = _predict_out(
        run, "--probs", "--pretokenized", "--format", "conll", input="Paris NNP\nis VBZ\n\n"
    )
    assert re.fullmatch(r"Paris NNP \d\.\d{4} \S+\nis VBZ \d\.\d{4} \S+\n\n", pretokenized)


def test_cli_predict_cache_option_does_not_change_the_output(run: TrainedRun) -> None:
    texts = ["The museums in Paris are amazing.", "FLOODS HIT NEW ORLEANS", "Oslo, Lima."]
    default = _predict_out(run, "--format", "json", "--probs", *texts)
    assert _predict_out(run, "--format", "json", "--probs", "--cache-mb", "0", *texts) == default
    assert _predict_out(run, "--format", "json", "--probs", "--cache-mb", "0.5", *texts) == default
    result = invoke(["predict", "--model", run.model, "--cache-mb", "-1", "Paris"])
    assert result.exit_code == 2


def test_cli_predict_help_says_offsets_are_code_points() -> None:
    text = " ".join(invoke(["predict", "--help"]).stdout.split())
    assert "Unicode code points" in text and "jsonl" in text


# --- predict --ids, and the Dask options' usage (the cluster itself: tests/tag/test_dask.py) ----


def test_cli_predict_ids_name_file_and_line(run: TrainedRun, tmp_path: Path) -> None:
    text = tmp_path / "a.txt"
    text.write_text("Paris.\n\nRome and Oslo.\n", encoding="utf-8")
    docs = tmp_path / "b.jsonl"
    docs.write_text('{"id": 7, "text": "Paris."}\n\n{"text": "Lima."}\n', encoding="utf-8")
    out = _predict_out(run, "--ids", "--input", text, "--format", "json")
    assert [json.loads(line)["id"] for line in out.splitlines()] == [
        f"{text}:1",
        f"{text}:2",
        f"{text}:3",
    ]
    out = _predict_out(run, "--ids", "--input-format", "jsonl", "--input", docs, "-f", "json")
    assert [json.loads(line)["id"] for line in out.splitlines()] == [7, f"{docs}:3"]
    conll = _predict_out(run, "--ids", "--format", "conll", input="Paris.\n")
    assert conll.startswith('-DOCSTART- "<stdin>:1"\n\n')


@pytest.mark.parametrize(
    "args",
    [
        ["--ids", "Paris"],
        ["--ids", "--pretokenized"],
        ["--workers", "2", "--input", "x.txt"],  # no --out
        ["--scheduler", "tcp://127.0.0.1:8786", "--input", "x.txt"],
        ["--out", "shards", "--input", "x.txt"],  # no --scheduler / --workers
        ["--workers", "2", "--scheduler", "tcp://127.0.0.1:8786", "--out", "s", "-i", "x.txt"],
        ["--workers", "2", "--out", "shards"],  # no --input: stdin is not for Dask
        ["--workers", "2", "--out", "shards", "Paris"],
        ["--workers", "2", "--out", "shards", "--pretokenized", "--input", "x.conll"],
        ["--workers", "0", "--out", "shards", "--input", "x.txt"],
    ],
)
def test_cli_predict_dask_options_usage_errors(run: TrainedRun, args: list[str]) -> None:
    result = invoke(["predict", "--model", run.model, *args])
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr


def test_cli_predict_dask_without_the_extra_names_the_install(
    run: TrainedRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = tmp_path / "a.txt"
    text.write_text("Paris.\n", encoding="utf-8")
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed fails
    result = invoke(
        ["predict", "--model", run.model, "--input", text, "--workers", "2", "--out", tmp_path]
    )
    assert_user_error(result, 'pip install "nerwin[dask]"')
