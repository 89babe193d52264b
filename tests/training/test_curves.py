"""curves: metrics.jsonl reading, alignment on epochs, ensemble members, best F1."""

from __future__ import annotations

from pathlib import Path

import pytest
from _records import ensemble_records, record, write_metrics

from nerwin.errors import DataError, NerwinError
from nerwin.training.curves import (
    best_f1,
    curves_from_records,
    member_curves,
    merge_members,
    read_metrics,
)


def test_curves_read_metrics_errors(tmp_path: Path) -> None:
    with pytest.raises(NerwinError, match="run directory not found"):
        read_metrics(tmp_path / "none")
    with pytest.raises(NerwinError, match="no metrics.jsonl"):
        read_metrics(tmp_path)
    bad = write_metrics(tmp_path / "bad", [record(1, 0.5, 0.5, True), "{oops"])
    with pytest.raises(DataError, match=r"metrics.jsonl:2: not a JSON object"):
        read_metrics(bad)
    no_loss = write_metrics(tmp_path / "no_loss", [{"epoch": 1}])
    with pytest.raises(DataError, match=r":1: expected an object with an integer 'epoch'"):
        read_metrics(no_loss)
    empty = write_metrics(tmp_path / "empty", [""])
    with pytest.raises(DataError, match="no epoch recorded yet"):
        read_metrics(empty)


def test_curves_curves_align_epochs_best_and_diagnostics(tmp_path: Path) -> None:
    records = [
        record(1, 0.5, 0.6, True),
        record(
            2,
            0.4,
            0.7,
            True,
            diagnostics={"grad_norm": {"W": 1.0, "E": {"rows": 0.1}}, "dead": 0.2},
        ),
        record(
            3, 0.3, 0.65, False, diagnostics={"grad_norm": {"W": 0.5}, "note": "text is ignored"}
        ),
        record(3, 0.25, 0.66, False),  # a repeated epoch: the last record wins
    ]
    curves = curves_from_records(read_metrics(write_metrics(tmp_path / "run", records)))
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
    no_dev = curves_from_records([record(1, 0.5, None, True), record(2, 0.4, None, False)])
    assert no_dev.dev == {} and no_dev.best_epoch == 1 and no_dev.diagnostics == {}


def test_curves_ensemble_members_keep_their_own_epochs(tmp_path: Path) -> None:
    records = read_metrics(write_metrics(tmp_path / "run", ensemble_records()))
    assert [(r["member"], r["epoch"]) for r in records] == [(1, 1), (1, 2), (2, 1), (2, 2)]
    members = member_curves(records)
    assert list(members) == [1, 2]
    assert members[1].loss == [0.5, 0.4] and members[1].best_epoch == 2
    assert members[2].loss == [0.9, 0.8] and members[2].best_epoch == 1
    assert members[2].dev["entity f1"] == [0.3, 0.2]
    assert list(
        member_curves(read_metrics(write_metrics(tmp_path / "one", [record(1, 0.5, 0.6, True)])))
    ) == [0]


@pytest.mark.parametrize("member", [0, -1, "2", True, 1.5])
def test_curves_bad_member_is_a_data_error(tmp_path: Path, member: object) -> None:
    run_dir = write_metrics(tmp_path / "run", [record(1, 0.5, 0.6, True, member=member)])
    with pytest.raises(DataError, match=r"metrics.jsonl:1: 'member' must be a whole number >= 1"):
        read_metrics(run_dir)


def test_curves_merge_members_names_each_series_and_aligns_epochs() -> None:
    members = member_curves(
        [
            record(1, 0.5, 0.6, True, member=1, diagnostics={"grad_norm": {"W": 1.0}}),
            record(1, 0.9, 0.3, True, member=2, diagnostics={"grad_norm": {"W": 2.0}}),
            record(2, 0.8, 0.2, False, member=2, diagnostics={"grad_norm": {"W": 3.0}}),
        ]
    )
    merged = merge_members(members)
    assert merged.epochs == [1, 2] and merged.best_epoch is None
    assert merged.diagnostics == {
        "grad_norm": {"member 1 W": [1.0, None], "member 2 W": [2.0, 3.0]}
    }


def test_curves_best_f1_needs_a_best_epoch_and_dev_scores() -> None:
    members = member_curves(ensemble_records())
    assert best_f1(members[1]) == 0.7 and best_f1(members[2]) == 0.3
    assert best_f1(curves_from_records([record(1, 0.5, None, True)])) is None
    assert best_f1(curves_from_records([record(1, 0.5, 0.6, False)])) is None
