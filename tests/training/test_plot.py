"""plot: metrics.jsonl reading, curve alignment, PNG output, and the missing-matplotlib message."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from _trained import TrainedRun, assert_ok, assert_user_error, invoke

from nerwin.errors import DataError, NerwinError
from nerwin.training.plot import (
    INSTALL_HINT,
    PlotUnavailable,
    curves_from_records,
    draw_curves,
    draw_members,
    member_curves,
    plot_run,
    read_metrics,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _dev(f1: float) -> dict:
    entity = {
        "precision": f1 + 0.02,
        "recall": f1 - 0.02,
        "f1": f1,
        "gold": 10,
        "predicted": 10,
        "correct": 8,
    }
    return {"entity": entity, "token": dict(entity)}


def _record(epoch: int, loss: float, f1: float | None, best: bool, **more) -> dict:
    return {
        "epoch": epoch,
        "loss": loss,
        "lr": 0.3 / epoch,
        "seconds": 1.0,
        "windows_per_s": 1e4,
        "best": best,
        "dev": None if f1 is None else _dev(f1),
        **more,
    }


def _write(run_dir: Path, records: list[dict | str]) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    (run_dir / "metrics.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return run_dir


def test_plot_read_metrics_errors(tmp_path: Path) -> None:
    with pytest.raises(NerwinError, match="run directory not found"):
        read_metrics(tmp_path / "none")
    with pytest.raises(NerwinError, match="no metrics.jsonl"):
        read_metrics(tmp_path)
    bad = _write(tmp_path / "bad", [_record(1, 0.5, 0.5, True), "{oops"])
    with pytest.raises(DataError, match=r"metrics.jsonl:2: not a JSON object"):
        read_metrics(bad)
    no_loss = _write(tmp_path / "no_loss", [{"epoch": 1}])
    with pytest.raises(DataError, match=r":1: expected an object with an integer 'epoch'"):
        read_metrics(no_loss)
    empty = _write(tmp_path / "empty", [""])
    with pytest.raises(DataError, match="no epoch recorded yet"):
        read_metrics(empty)


def test_plot_curves_align_epochs_best_and_diagnostics(tmp_path: Path) -> None:
    records = [
        _record(1, 0.5, 0.6, True),
        _record(
            2,
            0.4,
            0.7,
            True,
            diagnostics={"grad_norm": {"W": 1.0, "E": {"rows": 0.1}}, "dead": 0.2},
        ),
        _record(
            3, 0.3, 0.65, False, diagnostics={"grad_norm": {"W": 0.5}, "note": "text is ignored"}
        ),
        _record(3, 0.25, 0.66, False),  # a repeated epoch: the last record wins
    ]
    curves = curves_from_records(read_metrics(_write(tmp_path / "run", records)))
    assert curves.epochs == [1, 2, 3] and curves.loss == [0.5, 0.4, 0.25]
    assert curves.best_epoch == 2
    assert curves.dev["entity f1"] == [0.6, 0.7, 0.66]
    assert set(curves.dev) == {
        f"{level} {m}" for level in ("entity", "token") for m in ("precision", "recall", "f1")
    }
    assert curves.diagnostics == {
        "grad_norm": {"W": [None, 1.0, None], "E.rows": [None, 0.1, None]},
        "diagnostics": {"dead": [None, 0.2, None]},
    }
    no_dev = curves_from_records([_record(1, 0.5, None, True), _record(2, 0.4, None, False)])
    assert no_dev.dev == {} and no_dev.best_epoch == 1 and no_dev.diagnostics == {}


def test_plot_writes_png_of_a_trained_run(run: TrainedRun) -> None:
    pytest.importorskip("matplotlib")
    path = plot_run(run.out_dir)
    assert path == run.out_dir / "curves.png"
    assert path.read_bytes()[:8] == PNG_MAGIC


def test_plot_out_file_diagnostics_and_no_dev(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    records = [
        _record(e, 1.0 / e, None, e == 1, diagnostics={"grad_norm": {"W": 10.0**-e, "u": 1.0}})
        for e in range(1, 5)
    ]
    run_dir = _write(tmp_path / "run", records)
    out = plot_run(run_dir, tmp_path / "figure.svg")
    assert out == tmp_path / "figure.svg"
    assert out.read_text(encoding="utf-8").lstrip().startswith("<?xml")
    figure = draw_curves(curves_from_records(records), "run")
    titles = [ax.get_title() for ax in figure.axes if ax.get_visible()]
    assert titles[:2] == [
        "Training loss (mean cross-entropy per window)",
        "Dev locations: entity precision, recall, F1",
    ]
    assert "gradient norm per parameter" in titles
    (diag,) = [ax for ax in figure.axes if ax.get_title() == "gradient norm per parameter"]
    assert diag.get_yscale() == "log"  # W spans four decades


def test_plot_dev_panel_marks_the_best_epoch() -> None:
    pytest.importorskip("matplotlib")
    curves = curves_from_records(
        [_record(1, 0.5, 0.6, True), _record(2, 0.4, 0.8, True), _record(3, 0.3, 0.7, False)]
    )
    figure = draw_curves(curves, "run")
    assert figure.get_suptitle() == "run: best epoch 2, dev location F1 80.00"
    dev = figure.axes[1]
    labels = dev.get_legend_handles_labels()[1]
    assert "best epoch 2: F1 80.00" in labels and "F1" in labels and "token F1" in labels


def test_cli_plot(run: TrainedRun, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "curves.png"
    result = invoke(["plot", run.out_dir, "--out", out])
    assert_ok(result)
    assert result.stdout.strip() == str(out) and out.read_bytes()[:8] == PNG_MAGIC
    assert_user_error(invoke(["plot", tmp_path / "none"]), "run directory not found")


def test_cli_plot_without_matplotlib(run: TrainedRun, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.ticker"):
        monkeypatch.setitem(sys.modules, name, None)  # `import` now raises ImportError
    with pytest.raises(PlotUnavailable):
        draw_curves(curves_from_records(read_metrics(run.out_dir)))
    line = assert_user_error(invoke(["plot", run.out_dir]), 'pip install "matplotlib>=3.8"')
    assert line == f"error: {INSTALL_HINT}"


def _ensemble_records() -> list[dict]:
    """Two members with the same epochs, as an ensemble's metrics.jsonl interleaves them."""
    return [
        _record(1, 0.5, 0.6, True, member=1),
        _record(2, 0.4, 0.7, True, member=1),
        _record(1, 0.9, 0.3, True, member=2, diagnostics={"grad_norm": {"W": 2.0}}),
        _record(2, 0.8, 0.2, False, member=2, diagnostics={"grad_norm": {"W": 1.0}}),
    ]


def test_plot_ensemble_members_keep_their_own_epochs(tmp_path: Path) -> None:
    records = read_metrics(_write(tmp_path / "run", _ensemble_records()))
    assert [(r["member"], r["epoch"]) for r in records] == [(1, 1), (1, 2), (2, 1), (2, 2)]
    members = member_curves(records)
    assert list(members) == [1, 2]
    assert members[1].loss == [0.5, 0.4] and members[1].best_epoch == 2
    assert members[2].loss == [0.9, 0.8] and members[2].best_epoch == 1
    assert members[2].dev["entity f1"] == [0.3, 0.2]
    assert list(
        member_curves(read_metrics(_write(tmp_path / "one", [_record(1, 0.5, 0.6, True)])))
    ) == [0]


def test_plot_ensemble_draws_a_curve_per_member(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    figure = draw_members(member_curves(_ensemble_records()), "run")
    assert figure.get_suptitle() == (
        "run: ensemble of 2, best epochs 2, 1, members' dev location F1 70.00, 30.00"
    )
    loss, dev = figure.axes[:2]
    assert loss.get_legend_handles_labels()[1] == ["member 1", "member 2"]
    assert [list(line.get_ydata()) for line in loss.get_lines()] == [[0.5, 0.4], [0.9, 0.8]]
    assert {"member 1", "member 2"} <= set(dev.get_legend_handles_labels()[1])
    (diag,) = [ax for ax in figure.axes if ax.get_title() == "gradient norm per parameter"]
    assert diag.get_legend_handles_labels()[1] == ["member 2 W"]
    out = plot_run(_write(tmp_path / "run", _ensemble_records()))
    assert out.read_bytes()[:8] == PNG_MAGIC


@pytest.mark.parametrize("member", [0, -1, "2", True, 1.5])
def test_plot_bad_member_is_a_data_error(tmp_path: Path, member: object) -> None:
    run_dir = _write(tmp_path / "run", [_record(1, 0.5, 0.6, True, member=member)])
    with pytest.raises(DataError, match=r"metrics.jsonl:1: 'member' must be a whole number >= 1"):
        read_metrics(run_dir)
