"""data report: counts match hand-counted fixtures; problems exit 1; vectors coverage; CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _trained import assert_ok, assert_user_error, invoke

from nerwin.data.conll import read_conll
from nerwin.data.report import corpus_stats, data_report, render_report
from nerwin.errors import DataError

# Lines: 1 DOCSTART, 2 blank, 3-7 sentence 1, 8 blank, 9-14 sentence 2, 15 blank, 16-22 sentence 3.
TRAIN = """-DOCSTART- O

The O
museums O
in O
Paris B-LOC
. O

New B-LOC
York I-LOC
and O
Acme B-ORG
Corp I-ORG
. O

John B-PER
went O
to O
Lower I-LOC
Saxony I-LOC
in O
1999 O
"""
# Sentence 1 repeats a train sentence; Berlin and Visit are unknown; 2024 -> 0000 is known.
DEV = """The O
museums O
in O
Paris B-LOC
. O

Visit O
Berlin B-LOC
2024 O
. O
"""
# the: exact; Paris: lowercase level (vocabulary holds 'paris'); 1999: digit level ('0000').
VECTORS = "the 0.1 0.2\nParis 0.3 0.4\n1999 0.5 0.6\nzebra 0.7 0.8\n"


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for name, text in (("train.txt", TRAIN), ("dev.txt", DEV), ("vectors.txt", VECTORS)):
        out[name.split(".")[0]] = tmp_path / name
        out[name.split(".")[0]].write_text(text, encoding="utf-8")
    return out


def test_datareport_train_counts(files: dict[str, Path]) -> None:
    report = data_report(files["train"])
    t = report.train
    assert (t.sentences, t.tokens, t.scheme) == (3, 18, "IOB2")
    assert t.entities == {"LOC": 3, "ORG": 1, "PER": 1}
    assert (t.location_entities, t.location_tokens) == (3, 5)
    assert t.location_share == pytest.approx(5 / 18)
    assert (t.longest_sentence, t.longest_sentence_line) == (7, 16)
    assert (t.malformed, t.malformed_lines) == (1, [19])  # I-LOC after O; line 20 continues it
    assert report.vocabulary == 16  # lowercased; 1999 -> 0000; 'in' twice
    assert report.dev is None and report.vectors is None and report.problems == []
    assert any("1 I-/E- tag(s) open an entity" in w and "line 19" in w for w in report.warnings)


def test_datareport_dev_oov_and_overlap(files: dict[str, Path]) -> None:
    report = data_report(files["train"], files["dev"])
    d = report.dev
    assert (d.sentences, d.tokens, d.entities, d.malformed) == (2, 9, {"LOC": 2}, 0)
    assert report.dev_oov_tokens == 2  # Visit, Berlin
    assert report.dev_oov_rate == pytest.approx(2 / 9)
    assert report.dev_location_oov_rate == pytest.approx(1 / 2)  # Paris known, Berlin not
    assert report.overlap == 1


def test_datareport_vector_coverage(files: dict[str, Path]) -> None:
    v = data_report(files["train"], vectors=files["vectors"]).vectors
    assert (v.dim, v.words, v.exact, v.lowercase, v.digits, v.missing) == (2, 16, 1, 1, 1, 13)
    report = data_report(files["train"], vectors=files["vectors"])
    assert any("model.embedding_dim=2" in w for w in report.warnings)


def test_datareport_no_location_entity_is_a_problem(files: dict[str, Path]) -> None:
    report = data_report(files["train"], files["dev"], location_types=["GPE"])
    assert len(report.problems) == 1
    assert "no location entity (type GPE; types present: LOC, ORG, PER)" in report.problems[0]
    assert any("dev F1" in w for w in report.warnings)
    assert data_report(files["train"], location_types=["LOC", "PER"]).train.location_entities == 4


def test_datareport_empty_corpus_raises(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("-DOCSTART- O\n\n", encoding="utf-8")
    with pytest.raises(DataError, match="no sentences found"):
        data_report(empty)


def test_datareport_iob1_and_iobes_malformed(tmp_path: Path) -> None:
    iob1 = tmp_path / "iob1.txt"
    iob1.write_text(
        "In O\nNew I-LOC\nYork I-LOC\nand O\nBonn I-LOC\nB-less B-LOC\n", encoding="utf-8"
    )
    stats = corpus_stats(read_conll(iob1), ["LOC"])
    assert (stats.scheme, stats.malformed, stats.entities) == ("IOB1", 0, {"LOC": 3})
    iobes = tmp_path / "iobes.txt"
    iobes.write_text("a O\nb E-LOC\nc O\nd B-LOC\ne E-LOC\nf S-PER\ng I-PER\n", encoding="utf-8")
    stats = corpus_stats(read_conll(iobes), ["LOC"])
    assert (stats.scheme, stats.malformed, stats.malformed_lines) == ("IOBES", 2, [2, 7])


def test_datareport_render_and_json(files: dict[str, Path]) -> None:
    report = data_report(files["train"], files["dev"], files["vectors"])
    text = render_report(report)
    for needle in (
        "train size              3 sentences, 18 tokens",
        "train entities          LOC 3, ORG 1, PER 1",
        "train locations         3 entities, 5 tokens (27.78% of tokens)",
        "dev out of vocabulary   22.22% of tokens (2), 50.00% of location tokens",
        "dev sentences in train  1 of 2 (50.00%)",
        "vector coverage         3 of 16 (18.75%): 1 exact, 1 lowercase, "
        "1 digit-normalised, 13 missing",
    ):
        assert needle in text, text
    record = json.loads(json.dumps(report.to_dict()))
    assert record["train"]["entities"] == {"LOC": 3, "ORG": 1, "PER": 1}
    assert record["problems"] == []


def test_cli_data_ok_and_json(files: dict[str, Path]) -> None:
    result = invoke(["data", "--train", files["train"], "--dev", files["dev"]])
    assert_ok(result)
    assert "dev sentences in train  1 of 2" in result.stdout
    result = invoke(["data", "--train", files["train"], "--json", "--location-types", "LOC,PER"])
    assert_ok(result)
    record = json.loads(result.stdout)
    assert record["location_types"] == ["LOC", "PER"] and record["train"]["location_tokens"] == 6


def test_cli_data_problems_exit_1(files: dict[str, Path], tmp_path: Path) -> None:
    result = invoke(["data", "--train", files["train"], "--location-types", "GPE"])
    line = assert_user_error(result, "the data cannot train", "no location entity (type GPE")
    assert "problem: " in result.stdout and line
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    assert_user_error(invoke(["data", "--train", empty]), "empty.txt", "no sentences found")
    assert_user_error(invoke(["data", "--train", tmp_path / "missing.txt"]), "file not found")


def test_cli_data_columns(tmp_path: Path) -> None:
    path = tmp_path / "cols.txt"
    path.write_text("B-LOC Paris x\nO is x\n", encoding="utf-8")
    result = invoke(["data", "--train", path, "--word-column", "1", "--tag-column", "0", "--json"])
    assert_ok(result)
    assert json.loads(result.stdout)["train"]["location_tokens"] == 1
