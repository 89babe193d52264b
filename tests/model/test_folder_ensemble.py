"""An ensemble's model folder (format 3): members 2..N store only the rows of E that differ from
member 1's, rebuilt bit for bit on load and checked like every other array; older formats load."""

from __future__ import annotations

import json
import mmap
from pathlib import Path

import numpy as np
import pytest

from nerwin.config import load_config
from nerwin.data.caps import N_CAPS
from nerwin.data.vocab import Vocab
from nerwin.errors import ModelError
from nerwin.model import metafile, weightsfile
from nerwin.model.classifier import ModelShape, WindowClassifier
from nerwin.model.folder import FORMAT_VERSION, load_model, save_model
from nerwin.model.tagger import Tagger
from nerwin.model.weightsfile import SHARED_ROWS, shared_rows

WORDS = ["<unk>", "<s>", "</s>", *(f"w{i}" for i in range(37))]
CHANGED = {1: [0, 4, 5, 39], 2: [2, 17]}  # rows each member's E changes from member 1's
SENTENCES = [["w1", "w4", "w5", "nope"], ["W17", "w2", "w39", "."]]


def _ensemble(changed: dict[int, list[int]] | None = None, dtype: str = "float32") -> Tagger:
    """Three members whose E is member 1's with the rows `changed[k]` redrawn (all rows: None)."""
    vocab = Vocab(WORDS)
    shape = ModelShape(len(vocab), 4, 5, (6,), "relu", 2, N_CAPS, dtype=dtype, aux_types=("ORG",))
    first = WindowClassifier.initialise(shape, np.random.default_rng(0))
    first.params["E"].data[17, 0] = 0.0
    others = []
    for k in (1, 2):
        rng = np.random.default_rng(k)
        E = first.params["E"].data.copy()
        for row in range(len(vocab)) if changed is None else changed[k]:
            if row == 17:
                E[row, 0] = -0.0  # only the sign bit differs from member 1's row
            else:
                E[row] = rng.normal(size=E.shape[1])
        others.append(WindowClassifier.initialise(shape, rng, E))
    return Tagger(first, vocab, 0.42, {}, tuple(others))


def _config():
    return load_config(None, ["model.embedding_dim=4", "model.hidden=[6]", "model.caps_dim=2"])


def _arrays(directory: Path) -> dict[str, np.ndarray]:
    with np.load(directory / "weights.npz") as archive:
        return {k: archive[k] for k in archive.files}


def _edit_meta(directory: Path, **changes: object) -> None:
    path = directory / "meta.json"
    meta = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps({**meta, **changes}), encoding="utf-8")


def _error(directory: Path) -> str:
    with pytest.raises(ModelError) as info:
        load_model(directory)
    message = str(info.value)
    assert "\n" not in message and len(message) < 500 + len(str(directory)), message
    return message


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    directory = tmp_path / "model"
    save_model(directory, _ensemble(CHANGED), _config(), {"epoch": 3})
    return directory


def _assert_same_bits(loaded: Tagger, original: Tagger) -> None:
    assert len(loaded.models) == len(original.models)
    for k, (mine, theirs) in enumerate(zip(loaded.models, original.models)):
        assert mine.arrays().keys() == theirs.arrays().keys()
        for name, array in theirs.arrays().items():
            got = mine.arrays()[name]
            assert got.dtype == array.dtype and got.shape == array.shape, (k, name)
            assert got.tobytes() == array.tobytes(), (k, name)
            assert got.flags.c_contiguous and got.flags.writeable, (k, name)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_ensemble_folder_stores_only_changed_rows_and_loads_bit_identical(
    tmp_path: Path, dtype: str
) -> None:
    original = _ensemble(CHANGED, dtype)
    save_model(tmp_path / "model", original, _config())
    arrays = _arrays(tmp_path / "model")
    assert "member1.E" not in arrays and "member2.E" not in arrays and "E" in arrays
    for k, rows in CHANGED.items():
        assert arrays[f"member{k}.E.rows"].dtype == np.int32
        assert arrays[f"member{k}.E.rows"].tolist() == rows  # -0.0 against 0.0 counts
        assert arrays[f"member{k}.E.values"].dtype == np.dtype(dtype)
        assert arrays[f"member{k}.E.values"].shape == (len(rows), 4)
    loaded, _, meta = load_model(tmp_path / "model")
    assert meta["format_version"] == SHARED_ROWS == FORMAT_VERSION and meta["members"] == 3
    _assert_same_bits(loaded, original)
    assert loaded.probabilities(SENTENCES).tobytes() == original.probabilities(SENTENCES).tobytes()


@pytest.mark.parametrize("changed", [None, {1: [], 2: []}], ids=["every-row", "no-row"])
def test_ensemble_folder_with_all_or_no_rows_changed(tmp_path: Path, changed) -> None:
    original = _ensemble(changed)
    save_model(tmp_path / "model", original, _config())
    arrays = _arrays(tmp_path / "model")
    expected = len(WORDS) if changed is None else 0
    assert arrays["member1.E.rows"].shape == (expected,)
    assert arrays["member2.E.values"].shape == (expected, 4)
    _assert_same_bits(load_model(tmp_path / "model")[0], original)


def test_ensemble_folder_is_smaller_when_rows_are_shared(tmp_path: Path) -> None:
    save_model(tmp_path / "shared", _ensemble(CHANGED), _config())
    save_model(tmp_path / "whole", _ensemble(None), _config())
    shared, whole = ((tmp_path / n / "weights.npz").stat().st_size for n in ("shared", "whole"))
    assert shared < whole - 2 * 30 * 4 * 4  # two members' 30-odd unchanged rows of 4 float32s


def test_shared_rows_is_bitwise_and_refuses_other_tables() -> None:
    base = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]], np.float32)
    table = base.copy()
    table[0, 0], table[2, 1] = -0.0, 6.0
    rows, values = shared_rows(base, table)
    assert rows.dtype == np.int32 and rows.tolist() == [0, 2]
    rebuilt = base.copy()
    rebuilt[rows] = values
    assert rebuilt.tobytes() == table.tobytes()
    with pytest.raises(ValueError):
        shared_rows(base, table[:2])
    with pytest.raises(ValueError):
        shared_rows(base, table.astype(np.float64))


# --- every array checked ------------------------------------------------------------------------


def _rewrite(directory: Path, **changes: np.ndarray | None) -> None:
    """weights.npz with arrays replaced (None: removed)."""
    arrays = _arrays(directory)
    for key, array in changes.items():
        if array is None:
            del arrays[key.replace("__", ".")]
        else:
            arrays[key.replace("__", ".")] = array
    np.savez(directory / "weights.npz", **arrays)


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([0, 5, 4, 39], "strictly increasing"),
        ([0, 4, 4, 39], "strictly increasing"),
        ([-1, 4, 5, 39], "strictly increasing, from 0 to 39"),
        ([0, 4, 5, 40], "strictly increasing, from 0 to 39"),
        ([-(2**31), 4, 5, 2**31 - 1], "strictly increasing"),
    ],
    ids=["unsorted", "repeated", "negative", "past-the-end", "int32-extremes"],
)
def test_ensemble_folder_row_ids_are_checked(saved: Path, rows: list[int], expected: str) -> None:
    _rewrite(saved, member1__E__rows=np.array(rows, np.int32))
    message = _error(saved)
    assert message.startswith(f"{saved / 'weights.npz'}: weight member1.E.rows: "), message
    assert expected in message, message


@pytest.mark.parametrize(
    ("key", "array", "expected"),
    [
        ("member1.E.rows", np.array([0, 4, 5, 39], np.int64), "dtype 'int64' is not int32"),
        ("member1.E.rows", np.array([0, 4, 5, 39], np.float32), "is not int32"),
        ("member1.E.rows", np.array([[0, 4], [5, 39]], np.int32), "expected (n,) with n at most"),
        ("member1.E.rows", np.arange(41, dtype=np.int32), "expected (n,) with n at most 40"),
        ("member1.E.values", np.zeros((5, 4), np.float32), "config expects (4, 4)"),
        ("member1.E.values", np.zeros((4, 3), np.float32), "config expects (4, 4)"),
        ("member1.E.values", np.zeros((4, 4), np.int32), "is not float32 or float64"),
        ("member1.E.values", np.full((4, 4), np.nan, np.float32), "NaN or infinite"),
        ("member2.E.values", np.full((2, 4), np.inf), "NaN or infinite"),
        ("member1.E.rows", None, "member1.E.rows is missing"),
        ("member2.E.values", None, "member2.E.values is missing"),
    ],
)
def test_ensemble_folder_row_arrays_are_checked(saved: Path, key, array, expected) -> None:
    _rewrite(saved, **{key.replace(".", "__"): array})
    message = _error(saved)
    assert message.startswith(f"{saved / 'weights.npz'}: weight {key}"), message
    assert expected in message, message


def test_ensemble_folder_format_3_refuses_a_whole_member_table(saved: Path) -> None:
    loaded = load_model(saved)[0]
    _rewrite(saved, member2__E=loaded.members[1].params["E"].data)
    message = _error(saved)
    assert str(saved / "weights.npz") in message and "a whole member2.E" in message


def test_ensemble_folder_format_2_refuses_row_arrays(saved: Path) -> None:
    _edit_meta(saved, format_version=2)
    message = _error(saved)
    assert str(saved / "weights.npz") in message and "format_version 3 or later" in message


def test_ensemble_folder_format_2_with_whole_tables_still_loads(saved: Path) -> None:
    """A folder written before format 3: every member's whole E."""
    original = _ensemble(CHANGED)
    whole = {f"member{k}.E": m.params["E"].data for k, m in enumerate(original.members, 1)}
    _rewrite(
        saved,
        **{k.replace(".", "__"): v for k, v in whole.items()},
        **{f"member{k}__E__{part}": None for k in (1, 2) for part in ("rows", "values")},
    )
    _edit_meta(saved, format_version=2)
    _assert_same_bits(load_model(saved)[0], original)


def test_ensemble_folder_is_refused_by_a_nerwin_of_format_2(saved: Path, monkeypatch) -> None:
    """What an older nerwin (format 2) says: upgrade, rather than misreading the arrays."""
    monkeypatch.setattr(metafile, "FORMAT_VERSION", 2)
    message = _error(saved)
    assert message.startswith(f"{saved / 'meta.json'}: model format 3 is newer than this nerwin")
    assert "upgrade nerwin" in message


def test_single_model_is_still_format_1(tmp_path: Path) -> None:
    first = _ensemble(CHANGED)
    save_model(tmp_path / "one", Tagger(first.model, first.vocab, 0.5), _config())
    assert json.loads((tmp_path / "one" / "meta.json").read_text())["format_version"] == 1
    assert not any(k.startswith("member") for k in _arrays(tmp_path / "one"))


def _mapped(array: np.ndarray) -> bool:
    """True when `array` lies in a memory mapping (of the weights file)."""
    view = array.base
    while view is not None and not isinstance(view, mmap.mmap):
        view = view.obj if isinstance(view, memoryview) else getattr(view, "base", None)
    return view is not None


def test_ensemble_folder_maps_large_tables_copy_on_write(saved: Path, monkeypatch) -> None:
    monkeypatch.setattr(weightsfile, "MAP_BYTES", 0)  # map even this small table
    before = (saved / "weights.npz").read_bytes()
    loaded = load_model(saved)[0]
    original = _ensemble(CHANGED)
    _assert_same_bits(loaded, original)  # writable, C-contiguous, every bit as saved
    tables = [m.params["E"].data for m in loaded.models]
    assert all(map(_mapped, tables))  # each member its own mapping of the file's rows
    assert not _mapped(loaded.model.params["W"].data)  # only embedding tables
    tables[0][:] = 7.0  # writes stay in this process: the file and the other members keep theirs
    assert (saved / "weights.npz").read_bytes() == before
    np.testing.assert_array_equal(tables[1], original.members[0].params["E"].data)
    monkeypatch.setattr(weightsfile, "MAP_BYTES", 1 << 40)  # below the size: read, not mapped
    assert not any(_mapped(m.params["E"].data) for m in load_model(saved)[0].models)


def test_ensemble_folder_mapped_table_is_checked(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(weightsfile, "MAP_BYTES", 0)
    tagger = _ensemble(CHANGED)
    tagger.model.params["E"].data[30, 1] = np.inf
    save_model(tmp_path / "model", tagger, _config())
    assert "weight E: holds NaN or infinite values" in _error(tmp_path / "model")


def test_ensemble_folder_compressed_table_is_read(saved: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(weightsfile, "MAP_BYTES", 0)
    np.savez_compressed(tmp_path / "weights.npz", **_arrays(saved))  # not mappable: read instead
    (saved / "weights.npz").write_bytes((tmp_path / "weights.npz").read_bytes())
    loaded = load_model(saved)[0]
    assert not _mapped(loaded.model.params["E"].data)
    _assert_same_bits(loaded, _ensemble(CHANGED))


def _flip_a_byte_of_e(folder: Path) -> None:
    """Change one byte inside the first member's E data in weights.npz (a stored zip member)."""
    import zipfile

    path = folder / "weights.npz"
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("E.npy")
    data = bytearray(path.read_bytes())
    name_length, extra_length = np.frombuffer(data[info.header_offset + 26 :][:4], "<u2")
    start = info.header_offset + 30 + int(name_length) + int(extra_length)
    data[start + info.file_size - 3] ^= 0x01  # a mantissa bit near the end of the table
    path.write_bytes(bytes(data))


def test_ensemble_folder_mapped_table_with_a_flipped_bit_is_refused(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(weightsfile, "MAP_BYTES", 0)
    words = [f"w{i}" for i in range(4000)]  # E larger than zipfile's read-ahead of the header
    vocab = Vocab([*WORDS[:3], *words])
    shape = ModelShape(len(vocab), 8, 5, (6,), "relu", 5, N_CAPS, "float32")
    model = WindowClassifier.initialise(shape, np.random.default_rng(0))
    save_model(tmp_path / "model", Tagger(model, vocab, 0.5), _config())
    assert _mapped(load_model(tmp_path / "model")[0].model.params["E"].data)
    _flip_a_byte_of_e(tmp_path / "model")
    assert "weight E: corrupt weights (CRC-32 mismatch)" in _error(tmp_path / "model")
    monkeypatch.setenv(weightsfile.MAP_VARIABLE, "0")  # read instead of mapped: zipfile's CRC
    assert "corrupt" in _error(tmp_path / "model")


def test_ensemble_folder_tables_are_read_when_mapping_is_off(saved: Path, monkeypatch) -> None:
    monkeypatch.setattr(weightsfile, "MAP_BYTES", 0)
    monkeypatch.setenv(weightsfile.MAP_VARIABLE, "0")
    loaded = load_model(saved)[0]
    assert not any(_mapped(m.params["E"].data) for m in loaded.models)
    _assert_same_bits(loaded, _ensemble(CHANGED))
