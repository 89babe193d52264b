"""Gazetteer coverage: matches counted per gold entity type, located names, new dev locations."""

from __future__ import annotations

import json
from pathlib import Path

from _trained import assert_ok, invoke

from nerwin.data.conll import Corpus, parse_conll
from nerwin.data.coverage import coverage, coverage_rows, location_texts
from nerwin.data.gazetteer import Gazetteer
from nerwin.data.report import data_report, render_report

TRAIN = """New B-LOC
York I-LOC
beat O
Manchester B-ORG
United I-ORG
. O

Paris B-PER
Hilton I-PER
left O
Lower B-LOC
Saxony I-LOC
for O
york O
. O
"""
DEV = """Visit O
Berlin B-LOC
and O
New B-LOC
York I-LOC
City I-LOC
. O
"""
NAMES = [(["New", "York"], "city"), (["Manchester"], "city"), (["Paris"], "city")]
NAMES += [(["Saxony"], "region"), (["Berlin"], "city")]


def _corpus(text: str):
    return Corpus("x.txt", tuple(parse_conll(text.splitlines(), "x.txt")), "IOB2")


def test_coverage_counts_matches_by_entity_type() -> None:
    c = coverage(_corpus(TRAIN), Gazetteer.from_entries(NAMES), ["LOC"])
    assert c.matches == 4  # New York, Manchester, Paris, Saxony; lowercase 'york' does not match
    assert c.matches_by_type == {"LOC": 2, "ORG": 1, "PER": 1}
    assert (c.locations, c.exact, c.partly) == (2, 1, 1)  # New York exact; Lower Saxony partly
    assert c.new_locations is None


def test_coverage_new_dev_locations() -> None:
    train = _corpus(TRAIN)
    seen = location_texts(train, ["LOC"])
    assert seen == {"New York", "Lower Saxony"}
    c = coverage(_corpus(DEV), Gazetteer.from_entries(NAMES), ["LOC"], seen)
    # Berlin is new and a name; New York City is new but only its first two tokens match
    assert (c.locations, c.exact, c.partly) == (2, 1, 1)
    assert (c.new_locations, c.new_exact) == (2, 1)
    rows = dict(coverage_rows("dev", c))
    assert rows["dev new locations named"].startswith("1 of 2 ")


def test_report_with_a_name_file(tmp_path: Path) -> None:
    (tmp_path / "train.txt").write_text(TRAIN, encoding="utf-8")
    (tmp_path / "dev.txt").write_text(DEV, encoding="utf-8")
    names = tmp_path / "names.txt"
    names.write_text("".join(f"{' '.join(t)}\t{k}\n" for t, k in NAMES), encoding="utf-8")
    report = data_report(tmp_path / "train.txt", tmp_path / "dev.txt", gazetteer=[str(names)])
    assert report.gazetteer["names"] == 5
    assert report.train_gazetteer.matches_by_type == {"LOC": 2, "ORG": 1, "PER": 1}
    assert report.dev_gazetteer.new_exact == 1
    text = render_report(report)
    assert "train names matched      4 (LOC 50.0%, ORG 25.0%, PER 25.0%)" in text
    out = invoke(
        ["data", "--train", str(tmp_path / "train.txt"), "--gazetteer", str(names), "--json"]
    )
    assert_ok(out)
    assert json.loads(out.stdout)["train_gazetteer"]["exact"] == 1


def test_report_missing_name_file_is_one_error(tmp_path: Path) -> None:
    (tmp_path / "train.txt").write_text(TRAIN, encoding="utf-8")
    out = invoke(["data", "--train", str(tmp_path / "train.txt"), "--gazetteer", "nope.txt"])
    assert out.exit_code == 1 and "nope.txt" in out.stderr and "Traceback" not in out.stderr
