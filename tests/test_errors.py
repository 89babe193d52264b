"""Bad input gets one clear line, exit 1 (2 for command-line usage), and nothing lost.

One parametrized matrix over every surface (corpora, vectors, config, models, output directories,
command-line usage). Each case writes its input under tmp_path and runs the CLI in-process; the
whole of tmp_path (inputs, a copy of a trained model, an existing run directory with a sentinel
file) is snapshotted before and compared byte for byte after, so a case fails if any existing file
changes or any new file or folder appears (a half-written `model/`, a `.model.*` staging folder,
an empty run directory).
"""

from __future__ import annotations

import gzip
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from _trained import DEV, TRAIN, TrainedRun, assert_user_error, invoke

FAST = ("--set", "train.epochs=1")
GOOD = "Paris B-LOC\nis O\nnice O\n\n"  # lines 1-3, blank line 4
SENTINEL = b"results of an earlier run; must survive any failed command\n"


@pytest.fixture(autouse=True)
def _vector_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keep the vector cache out of $HOME and out of the snapshotted tmp_path."""
    monkeypatch.setenv("NERWIN_CACHE", str(tmp_path_factory.mktemp("cache")))


class Ctx:
    """Where a case writes its inputs, and the model and run directory it may use."""

    def __init__(self, tmp: Path, run: TrainedRun):
        self.tmp, self._run = tmp, run
        self.inputs = tmp / "in"
        self.inputs.mkdir()

    def file(self, name: str, content: str | bytes) -> Path:
        """Write an input file; str is written as UTF-8 bytes, line ends untouched."""
        path = self.inputs / name
        path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
        return path

    def missing(self, name: str) -> Path:
        return self.inputs / name

    @property
    def out(self) -> Path:
        """An existing run directory (a copy of a real run) plus a sentinel file."""
        out = self.tmp / "out"
        if not out.exists():
            shutil.copytree(self._run.out_dir, out)
            (out / "keep.txt").write_bytes(SENTINEL)
        return out

    @property
    def model(self) -> Path:
        """A private copy of a trained model directory, free to corrupt."""
        model = self.tmp / "model"
        if not model.exists():
            shutil.copytree(self._run.model, model)
        return model

    def train(self, *extra: str) -> list[str]:
        """`nerwin train` into the existing run directory with --force (a bad input must still
        leave that run untouched: nothing is replaced before every input has been validated)."""
        return ["train", *FAST, *extra, "--out", str(self.out), "--force"]

    def corpus(self, path: Path, *extra: str) -> list[str]:
        return self.train("--set", f"data.train={path}", *extra)

    def vectors(self, path: Path, dim: int = 4) -> list[str]:
        return self.train("--set", f"data.vectors={path}", "--set", f"model.embedding_dim={dim}")


Make = Callable[[Ctx], tuple[list[str], list[str]]]  # ctx -> (CLI args, needles for the line)


@dataclass(frozen=True)
class Case:
    id: str
    make: Make
    code: int = 1


CASES: list[Case] = []


def case(id: str, code: int = 1) -> Callable[[Make], Make]:
    def register(make: Make) -> Make:
        CASES.append(Case(id, make, code))
        return make

    return register


def vec(word: str, *values: object) -> str:
    return " ".join([word, *map(str, values)]) + "\n"


GLOVE4 = vec("london", 0.1, 0.2, 0.3, 0.4) + vec("paris", 0.5, 0.6, 0.7, 0.8)


# --- corpora -----------------------------------------------------------------------------------


@case("corpus-missing-file")
def _(c: Ctx):
    path = c.missing("nope.txt")
    return c.corpus(path), [str(path), "not found"]


@case("corpus-directory-instead-of-file")
def _(c: Ctx):
    path = c.inputs / "adir"
    path.mkdir()
    return c.corpus(path), [str(path), "directory"]


@case("corpus-empty-file")
def _(c: Ctx):
    path = c.file("empty.txt", b"")
    return c.corpus(path), [str(path), "no sentences"]


@case("corpus-only-docstart")
def _(c: Ctx):
    path = c.file("docstart.txt", "-DOCSTART- -X- -X- O\n\n-DOCSTART- -X- -X- O\n\n")
    return c.corpus(path), [str(path), "no sentences"]


@case("corpus-wrong-column-count-mid-file")
def _(c: Ctx):
    path = c.file("cols.txt", GOOD + "Rome I-LOC\nlies NNP O\n")  # line 6 has 3 columns
    return c.corpus(path), [f"{path}:6", "column"]


@case("corpus-tag-fits-no-scheme")
def _(c: Ctx):
    path = c.file("tag.txt", GOOD + "Rome X-LOC\n")
    return c.corpus(path), [f"{path}:5", "X-LOC"]


@case("corpus-tag-outside-configured-scheme")
def _(c: Ctx):
    path = c.file("io.txt", "Paris I-LOC\nis O\n\nNew B-LOC\nYork I-LOC\n")
    return c.corpus(path, "--set", "data.scheme=IO"), [f"{path}:4", "B-LOC", "IO"]


@case("corpus-invalid-utf8")
def _(c: Ctx):
    path = c.file("latin1.txt", GOOD.encode() + b"M\xfcnchen B-LOC\n")
    return c.corpus(path), [f"{path}:5", "UTF-8"]


@case("corpus-nul-byte")
def _(c: Ctx):
    path = c.file("nul.txt", GOOD.encode() + b"Rome\x00 B-LOC\n")
    return c.corpus(path), [f"{path}:5", "NUL"]


@case("corpus-10mb-line")
def _(c: Ctx):
    path = c.file("huge.txt", GOOD + "word " * 2_000_000 + "\n" + GOOD)  # 10 MB, line 5
    return c.corpus(path), [f"{path}:5", "column"]


@case("corpus-no-tag-column")
def _(c: Ctx):
    path = c.file("words.txt", "Paris\nis\nnice\n")
    return c.corpus(path), [f"{path}:1", "tag"]


@case("dev-corpus-missing")
def _(c: Ctx):
    path = c.missing("dev.txt")
    return c.train("--set", f"data.dev={path}"), [str(path)]


@case("dev-corpus-bad-tag")
def _(c: Ctx):
    path = c.file("dev.txt", GOOD + "Rome LOC\n")
    return c.train("--set", f"data.dev={path}"), [f"{path}:5", "LOC"]


@case("evaluate-data-missing")
def _(c: Ctx):
    path = c.missing("gold.txt")
    return ["evaluate", "--model", str(c.model), "--data", str(path)], [str(path)]


@case("evaluate-data-wrong-columns")
def _(c: Ctx):
    path = c.file("gold.txt", GOOD + "Rome NNP I-LOC\n")
    return ["evaluate", "--model", str(c.model), "--data", str(path)], [f"{path}:5"]


@case("predict-input-missing")
def _(c: Ctx):
    path = c.missing("text.txt")
    return ["predict", "--model", str(c.model), "--input", str(path)], [str(path)]


@case("predict-input-invalid-utf8")
def _(c: Ctx):
    path = c.file("text.txt", b"I live in Paris.\nM\xfcnchen is far.\n")
    return ["predict", "--model", str(c.model), "--input", str(path)], [f"{path}:2", "UTF-8"]


@case("predict-pretokenized-wrong-columns")
def _(c: Ctx):
    path = c.file("tokens.txt", "Paris NNP\nis VBZ\n\nRome\n")
    args = ["predict", "--model", str(c.model), "--pretokenized", "--input", str(path)]
    return args, [f"{path}:4", "column"]


# --- vectors -----------------------------------------------------------------------------------


@case("vectors-dimension-changes-mid-file")
def _(c: Ctx):
    path = c.file("v.txt", GLOVE4 + vec("rome", 0.1, 0.2, 0.3, 0.4, 0.5))
    return c.vectors(path), [f"{path}:3", "4 values"]


@case("vectors-non-numeric-value")
def _(c: Ctx):
    path = c.file("v.txt", vec("paris", 1, 2, 3, 4) + vec("london", 0.1, "abc", 0.3, 0.4))
    return c.vectors(path), [f"{path}:2", "abc"]


@case("vectors-nan-value")
def _(c: Ctx):
    path = c.file("v.txt", vec("paris", 1, 2, 3, 4) + vec("london", 0.1, "nan", 0.3, 0.4))
    return c.vectors(path), [f"{path}:2", "NaN"]


@case("vectors-inf-value")
def _(c: Ctx):
    path = c.file("v.txt", vec("paris", 1, 2, 3, 4) + vec("london", 0.1, 0.2, "-inf", 0.4))
    return c.vectors(path), [f"{path}:2", "infinite"]


@case("vectors-header-lies-about-count")
def _(c: Ctx):
    path = c.file("v.txt", "5 4\n" + GLOVE4)
    return c.vectors(path), [f"{path}:1", "5"]


@case("vectors-truncated-gzip")
def _(c: Ctx):
    data = gzip.compress((GLOVE4 * 2000).encode())
    path = c.file("v.txt.gz", data[: len(data) // 2])
    return c.vectors(path), [str(path), "truncated"]


@case("vectors-word2vec-text-dimension-differs-from-header")
def _(c: Ctx):
    # header says 4 values, the first vector has 3: a text file with a bad line, not binary
    path = c.file(
        "v.txt", "2 4\n" + vec("london", 0.1, 0.2, 0.3) + vec("paris", 0.5, 0.6, 0.7, 0.8)
    )
    return c.vectors(path), [f"{path}:2", "4 values"]


@case("vectors-missing-file")
def _(c: Ctx):
    path = c.missing("v.txt")
    return c.vectors(path), [str(path), "not found"]


@case("vectors-empty-file")
def _(c: Ctx):
    path = c.file("v.txt", b"")
    return c.vectors(path), [str(path), "empty"]


@case("vectors-dimension-differs-from-config")
def _(c: Ctx):
    path = c.file("v.txt", GLOVE4)
    return c.vectors(path, dim=50), ["model.embedding_dim", "4"]


# --- config ------------------------------------------------------------------------------------


@case("config-unknown-key-suggests-nearest")
def _(c: Ctx):
    return c.train("--set", "train.epoch=3"), ["train.epoch", "did you mean train.epochs?"]


@case("config-unknown-key-learning-rate-suggests-lr")
def _(c: Ctx):
    # STYLE.md 7 gives this example:
    # "train.learning_rate: unknown key (did you mean train.lr?)"
    return c.train("--set", "train.learning_rate=0.1"), [
        "train.learning_rate",
        "did you mean train.lr?",
    ]


@case("config-wrong-type")
def _(c: Ctx):
    return c.train("--set", "train.batch_size=many"), ["train.batch_size", "expected int"]


@case("config-negative-learning-rate")
def _(c: Ctx):
    return c.train("--set", "train.lr=-0.1"), ["train.lr", "-0.1"]


@case("config-even-window")
def _(c: Ctx):
    return c.train("--set", "model.window=4"), ["model.window", "odd"]


@case("config-empty-hidden-list")
def _(c: Ctx):
    return c.train("--set", "model.hidden=[]"), ["model.hidden"]


@case("config-unknown-activation")
def _(c: Ctx):
    return c.train("--set", "model.activation=rellu"), [
        "model.activation",
        "rellu",
        "did you mean relu?",
    ]


@case("config-negative-seed")
def _(c: Ctx):
    return c.train("--seed", "-1"), ["train.seed", "-1"]


@case("config-yaml-syntax-error-with-line")
def _(c: Ctx):
    path = c.file(
        "bad.yaml", "train:\n  lr: 0.1\n\tepochs: 3\nmodel:\n  window: 5\n"
    )  # tab, line 3
    return c.train("--config", str(path)), [f"{path}:3", "YAML"]


@case("config-file-wrong-type-names-key")
def _(c: Ctx):
    path = c.file("typed.yaml", "train:\n  lr: fast\n")
    return c.train("--config", str(path)), [str(path), "train.lr", "fast"]


@case("config-file-bad-yaml-tag")
def _(c: Ctx):
    path = c.file("tagged.yaml", "train:\n  lr: !!float fast\n")  # PyYAML raises ValueError here
    return c.train("--config", str(path)), [str(path)]


@case("config-set-bad-yaml-tag")
def _(c: Ctx):
    return c.train("--set", "train.lr=!!float fast"), ["train.lr"]


@case("config-file-missing")
def _(c: Ctx):
    path = c.missing("nope.yaml")
    return c.train("--config", str(path)), [str(path)]


@case("config-file-not-a-mapping")
def _(c: Ctx):
    path = c.file("list.yaml", "- train\n- model\n")
    return c.train("--config", str(path)), [str(path), "mapping"]


# --- models (predict and evaluate) -------------------------------------------------------------


def _model_case(name: str, corrupt: Callable[[Path], list[str]]) -> None:
    """Register `predict --model` and `evaluate --model` for one corruption of a model dir."""
    for command in ("predict", "evaluate"):

        def make(c: Ctx, command=command):
            model = c.model
            needles = corrupt(model)
            tail = ["Paris is nice."] if command == "predict" else ["--data", str(DEV)]
            return [command, "--model", str(model), *tail], needles

        case(f"model-{name}-{command}")(make)


def _missing_dir(model: Path) -> list[str]:
    shutil.rmtree(model)
    return [str(model), "not found"]


def _missing_weights(model: Path) -> list[str]:
    (model / "weights.npz").unlink()
    return [str(model / "weights.npz"), "missing"]


def _truncated_npz(model: Path) -> list[str]:
    path = model / "weights.npz"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return [str(path), "truncated"]


def _wrong_shape(model: Path) -> list[str]:
    path = model / "weights.npz"
    with np.load(path, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    arrays["W"] = arrays["W"][:, :7]
    np.savez(path, **arrays)
    return [str(path), "W", "(275, 7)"]


def _future_format(model: Path) -> list[str]:
    path = model / "meta.json"
    meta = json.loads(path.read_text(encoding="utf-8"))
    meta["format_version"] = 99
    path.write_text(json.dumps(meta), encoding="utf-8")
    return [str(path), "99", "upgrade"]


def _threshold_not_a_number(model: Path) -> list[str]:
    path = model / "meta.json"
    meta = json.loads(path.read_text(encoding="utf-8"))
    meta["threshold"] = "high"
    path.write_text(json.dumps(meta), encoding="utf-8")
    return [str(path), "threshold"]


def _config_not_a_mapping(model: Path) -> list[str]:
    path = model / "config.yaml"
    path.write_text("- data\n- model\n", encoding="utf-8")
    return [str(path)]


_model_case("missing-directory", _missing_dir)
_model_case("missing-weights-file", _missing_weights)
_model_case("truncated-npz", _truncated_npz)
_model_case("weights-shape-mismatch", _wrong_shape)
_model_case("format-version-from-future", _future_format)
_model_case("meta-threshold-not-a-number", _threshold_not_a_number)
_model_case("config-yaml-not-a-mapping", _config_not_a_mapping)


@case("init-from-missing-model")
def _(c: Ctx):
    path = c.missing("model")
    return c.train("--init-from", str(path)), [str(path), "not found"]


# --- output directories ------------------------------------------------------------------------


@case("out-is-a-file")
def _(c: Ctx):
    path = c.file("results.txt", SENTINEL)
    return ["train", *FAST, "--out", str(path)], [str(path), "not a directory"]


@case("out-not-writable-under-a-file")
def _(c: Ctx):
    # Tests run as root, so chmod cannot make a folder unwritable; a path below a regular file
    # can never be created by anyone.
    path = c.file("results.txt", SENTINEL) / "run"
    return ["train", *FAST, "--out", str(path)], [str(path), "cannot write"]


@case("out-not-writable-under-proc")
def _(c: Ctx):
    # /proc refuses new entries even for root (the root-proof stand-in for a read-only folder).
    path = Path("/proc") / f"nerwin-test-{c.tmp.name}" / "run"
    return ["train", *FAST, "--out", str(path)], [str(path), "cannot write"]


@case("out-already-holds-a-run")
def _(c: Ctx):
    return ["train", *FAST, "--out", str(c.out)], [str(c.out), "--force", "--resume"]


@case("resume-without-checkpoint")
def _(c: Ctx):
    (c.tmp / "fresh").mkdir()
    (c.tmp / "fresh" / "keep.txt").write_bytes(SENTINEL)
    return ["train", "--resume", str(c.tmp / "fresh")], [str(c.tmp / "fresh"), "checkpoint"]


# --- command-line usage (exit 2) ---------------------------------------------------------------


@case("usage-resume-with-set", code=2)
def _(c: Ctx):
    return ["train", "--resume", str(c.out), "--set", "train.lr=0.1"], ["--resume"]


@case("usage-unknown-option", code=2)
def _(c: Ctx):
    return ["train", "--out", str(c.out), "--learning-rate", "0.1"], ["--learning-rate"]


@case("usage-unknown-format", code=2)
def _(c: Ctx):
    return ["predict", "--model", str(c.model), "--format", "xml", "Paris"], ["--format"]


@case("usage-threshold-out-of-range", code=2)
def _(c: Ctx):
    return ["evaluate", "--model", str(c.model), "--data", str(DEV), "--threshold", "2"], [
        "--threshold"
    ]


@case("usage-predict-without-model", code=2)
def _(c: Ctx):
    return ["predict", "Paris"], ["--model"]


# --- the matrix --------------------------------------------------------------------------------


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under root: file bytes, or None for a folder."""
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(root.rglob("*"))
    }


def check_untouched(before: dict, after: dict) -> None:
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    assert (added, removed, changed) == ([], [], []), (
        f"added {added}, removed {removed}, changed {changed}"
    )


def test_errors_matrix_is_large_enough() -> None:
    assert len({c.id for c in CASES}) == len(CASES) >= 30


@pytest.mark.parametrize("bad", CASES, ids=[c.id for c in CASES])
def test_errors_bad_input(bad: Case, tmp_path: Path, run: TrainedRun) -> None:
    ctx = Ctx(tmp_path, run)
    args, needles = bad.make(ctx)
    before = snapshot(tmp_path)
    result = invoke(args)
    out = result.stdout + result.stderr
    assert "Traceback" not in out, out
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # not a crash
    assert result.exit_code == bad.code, (result.exit_code, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    if bad.code == 1:
        assert len(lines) == 1, result.stderr
        line = lines[0]
        assert line.startswith("error: "), line
        assert len(line) < 600, f"{len(line)} characters: {line[:300]}..."
        for needle in needles:
            assert needle in line, (needle, line)
    else:  # click's usage message: several lines, must name the offending option
        for needle in needles:
            assert needle in result.stderr, (needle, result.stderr)
    assert result.stdout == "", result.stdout  # no partial results
    check_untouched(before, snapshot(tmp_path))


def test_errors_bad_input_creates_no_run_directory(tmp_path: Path) -> None:
    """A run that cannot start leaves no (empty) run directory behind."""
    out = tmp_path / "runs" / "new"
    result = invoke(["train", *FAST, "--set", f"data.train={tmp_path / 'nope.txt'}", "--out", out])
    assert result.exit_code == 1, result.stderr
    assert not out.exists(), f"{out} was created: {sorted(p.name for p in out.iterdir())}"


# --- inputs that must work: success, or a warning line --------------------------------------------


def _train_ok(tmp_path: Path, *extra: str):
    out = tmp_path / "run"
    result = invoke(["train", *FAST, *extra, "--out", out])
    assert result.exit_code == 0, (result.exit_code, result.stderr, result.exception)
    assert "Traceback" not in result.stdout + result.stderr
    assert "error:" not in result.stderr, result.stderr
    assert (out / "model" / "meta.json").is_file()
    return result


def _warnings(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("warning:")]


def test_errors_crlf_mixed_with_lf_trains(tmp_path: Path) -> None:
    lines = TRAIN.read_bytes().split(b"\n")
    mixed = b"".join(line + (b"\r\n" if i % 2 else b"\n") for i, line in enumerate(lines))
    path = tmp_path / "mixed.txt"
    path.write_bytes(mixed)
    assert b"\r\n" in mixed and b"\n\n" in mixed.replace(b"\r\n", b"")
    result = _train_ok(tmp_path, "--set", f"data.train={path}")
    assert _warnings(result) == []
    # the CRs are line ends, not parts of words or tags: same vocabulary as the LF file
    vocab = (tmp_path / "run" / "model" / "vocab.txt").read_text(encoding="utf-8")
    assert "\r" not in vocab
    reference = tmp_path / "ref"
    assert invoke(["train", *FAST, "--out", reference]).exit_code == 0
    assert vocab == (reference / "model" / "vocab.txt").read_text(encoding="utf-8")


def test_errors_location_type_that_never_occurs_refuses(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = invoke(["train", *FAST, "--set", "data.location_types=[GPE]", "--out", out])
    line = assert_user_error(result, "GPE", "data.location_types", "train.txt", "LOC, MISC")
    assert "no entity of type" in line
    assert not out.exists()  # nothing written: an F1 0.00 model would be useless


def test_errors_zero_vector_coverage_warns_loudly(tmp_path: Path) -> None:
    path = tmp_path / "v.txt"
    path.write_text(vec("zzqx", 1, 2, 3, 4) + vec("qqzx", 4, 3, 2, 1), encoding="utf-8")
    result = _train_ok(tmp_path, "--set", f"data.vectors={path}", "--set", "model.embedding_dim=4")
    warnings = _warnings(result)
    assert len(warnings) == 1, result.stderr
    assert str(path) in warnings[0] and "NO vocabulary word" in warnings[0]
