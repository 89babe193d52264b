"""plot: panels, PNG/SVG output, ensembles, and the missing-matplotlib message."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from _records import ensemble_records, record, write_metrics
from _trained import TrainedRun, assert_ok, assert_user_error, invoke

from nerwin.errors import NerwinError
from nerwin.training.curves import curves_from_records, member_curves, read_metrics
from nerwin.training.plot import INSTALL_HINT, PlotUnavailable, draw_curves, draw_members, plot_run

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_plot_writes_png_of_a_trained_run(run: TrainedRun) -> None:
    pytest.importorskip("matplotlib")
    path = plot_run(run.out_dir)
    assert path == run.out_dir / "curves.png"
    assert path.read_bytes()[:8] == PNG_MAGIC


def test_plot_out_file_diagnostics_and_no_dev(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    records = [
        record(e, 1.0 / e, None, e == 1, diagnostics={"grad_norm": {"W": 10.0**-e, "u": 1.0}})
        for e in range(1, 5)
    ]
    run_dir = write_metrics(tmp_path / "run", records)
    out = plot_run(run_dir, tmp_path / "figure.svg")
    assert out == tmp_path / "figure.svg"
    assert out.read_text(encoding="utf-8").lstrip().startswith("<?xml")
    figure = draw_curves(curves_from_records(records), "run")
    titles = [ax.get_title() for ax in figure.axes if ax.get_visible()]
    assert titles[:2] == [
        "Training loss (mean cross-entropy per window)",
        "Dev locations: entity precision, recall, F1",
    ]
    assert "Gradient norm per parameter" in titles
    (diag,) = [ax for ax in figure.axes if ax.get_title() == "Gradient norm per parameter"]
    assert diag.get_yscale() == "log"  # W spans four decades


def test_plot_dev_panel_marks_the_best_epoch() -> None:
    pytest.importorskip("matplotlib")
    curves = curves_from_records(
        [record(1, 0.5, 0.6, True), record(2, 0.4, 0.8, True), record(3, 0.3, 0.7, False)]
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


def test_plot_ensemble_draws_a_curve_per_member(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    figure = draw_members(member_curves(ensemble_records()), "run")
    assert figure.get_suptitle() == (
        "run: ensemble of 2, best epochs 2, 1, members' dev location F1 70.00, 30.00"
    )
    loss, dev = figure.axes[:2]
    assert loss.get_legend_handles_labels()[1] == ["member 1", "member 2"]
    assert [list(line.get_ydata()) for line in loss.get_lines()] == [[0.5, 0.4], [0.9, 0.8]]
    assert {"member 1", "member 2"} <= set(dev.get_legend_handles_labels()[1])
    (diag,) = [ax for ax in figure.axes if ax.get_title() == "Gradient norm per parameter"]
    assert diag.get_legend_handles_labels()[1] == ["member 2: hidden weights W"]
    out = plot_run(write_metrics(tmp_path / "run", ensemble_records()))
    assert out.read_bytes()[:8] == PNG_MAGIC


def test_plot_output_follows_the_suffix_and_names_an_unwritable_path(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    run_dir = write_metrics(tmp_path / "run", [record(1, 0.5, 0.6, True)])
    assert plot_run(run_dir, tmp_path / "curves.pdf").read_bytes()[:5] == b"%PDF-"
    assert plot_run(run_dir, tmp_path / "curves").read_bytes()[:8] == PNG_MAGIC
    missing = tmp_path / "none" / "curves.png"
    with pytest.raises(NerwinError) as info:
        plot_run(run_dir, missing)
    assert str(info.value) == f"{missing}: cannot write the figure (No such file or directory)"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves", "curves.pdf", "run"]


def test_plot_labels_are_words_and_all_zero_series_are_dropped() -> None:
    pytest.importorskip("matplotlib")
    diagnostics = {
        "grad_norm": {"E": 0.1, "W1": 0.2, "u": 0.3},
        "dead_fraction": 0.0,
        "saturated_fraction": None,
        "scores": {"positive": {"p10": -1.0, "p90": 2.0}, "negative": {"mean": -3.0}},
    }
    records = [record(e, 1.0 / e, 0.5, e == 1, diagnostics=diagnostics) for e in (1, 2)]
    figure = draw_curves(curves_from_records(records), "run")
    titles = [ax.get_title() for ax in figure.axes if ax.get_visible()]
    assert "Hidden units (fraction of the layer)" not in titles  # dead_fraction is 0 throughout
    labels = [label for ax in figure.axes for label in ax.get_legend_handles_labels()[1]]
    assert {"word vectors E", "layer 1 weights W1", "output weights u"} <= set(labels)
    assert "location windows, 10th-90th percentile" in labels
    assert "other windows, mean" in labels
    assert not [label for label in labels if re.search(r"\.\D|_", label)]


def test_plot_title_shows_the_score_the_model_records(run: TrainedRun, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    import json

    from nerwin.training.plot import _model_score

    dev = json.loads((run.model / "meta.json").read_text())["dev"]
    assert f"dev location F1 {100 * dev['f1']:.2f}" in _model_score(run.out_dir)
    assert f"{100 * run.result.dev.entity.f1:.2f}" in _model_score(run.out_dir)
