"""meta.json of a model folder: the fields load_model reads, every one checked.

The model shape's sizes are bounded (MAX_SIZE, MAX_WINDOW, MAX_LAYERS, MAX_PARAMETERS) before
anything is allocated for them; a field of the wrong type or range is one ModelError naming the
file and the field, quoting the value only as a short excerpt (`excerpt`).
"""

from __future__ import annotations

import json
import reprlib
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from nerwin import __version__
from nerwin.data.caps import N_CAPS
from nerwin.data.features import EXTRACTORS
from nerwin.data.gazetteer import GAZETTEER
from nerwin.data.vocab import SPECIALS
from nerwin.errors import ModelError
from nerwin.model.classifier import ModelShape

# 2 added ensembles (meta "members" > 1); 3 stores members 2..N's E as the rows that differ from
# member 1's (an ensemble is written as 3, a single model still as 1)
FORMAT_VERSION = 3
MAX_SIZE = 1 << 16  # largest vector size or hidden layer width
MAX_WINDOW = 999
MAX_LAYERS = 64
MAX_MEMBERS = 1000
MAX_AUX = 1000  # aux heads (other entity types)
MAX_FEATURE_ROWS = 1 << 24
MAX_PARAMETERS = 1 << 25  # per member, besides the embedding table E (real models: ~1e6)

_REPR = reprlib.Repr()  # keyword arguments need Python 3.12
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlong = 2, 40, 40, 40
_REPR.maxlist = _REPR.maxdict = _REPR.maxtuple = 4


def excerpt(value: Any, limit: int = 60) -> str:
    """A short, escaped form of a value read from a file, for error messages (never the repr
    of a whole large value)."""
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _whole(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def read_meta(data: bytes, path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(data)
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise ModelError(f"{path}: unreadable ({type(err).__name__})") from None
    version = meta.get("format_version") if isinstance(meta, dict) else None
    if not isinstance(version, int) or isinstance(version, bool):
        raise ModelError(f"{path}: no format_version; not a nerwin model")
    if version > FORMAT_VERSION:
        raise ModelError(
            f"{path}: model format {version} is newer than this nerwin "
            f"({__version__}, format {FORMAT_VERSION}); upgrade nerwin"
        )
    if version < 1:
        raise ModelError(f"{path}: format_version must be 1 or more, got {version}")
    if not isinstance(meta.get("shape"), dict):
        raise ModelError(f"{path}: no model shape recorded")
    members = meta.setdefault("members", 1)
    if not _whole(members, 1, MAX_MEMBERS):
        raise ModelError(
            f"{path}: members must be a whole number in 1..{MAX_MEMBERS}, got {excerpt(members)}"
        )
    threshold = meta.get("threshold", 0.5)
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, (int, float))
        or not 0 < threshold < 1
    ):
        raise ModelError(f"{path}: threshold must be a number in (0, 1), got {excerpt(threshold)}")
    for key in ("epoch", "seed"):
        if key in meta and not _whole(meta[key], 0, 1 << 63):
            raise ModelError(f"{path}: {key} must be a whole number >= 0, got {excerpt(meta[key])}")
    epochs = meta.get("member_epochs", [])
    if not isinstance(epochs, list) or not all(_whole(e, 0, 1 << 63) for e in epochs):
        raise ModelError(
            f"{path}: member_epochs must be a list of whole numbers, got {excerpt(epochs)}"
        )
    if "train_state" in meta and not isinstance(meta["train_state"], dict):
        raise ModelError(
            f"{path}: train_state must be a mapping, got {excerpt(meta['train_state'])}"
        )
    return meta


def read_shape(raw: dict[str, Any], path: Path) -> ModelShape:
    """The ModelShape recorded in meta.json, every field checked (type, range, total size)."""
    from nerwin.engine import ACTIVATIONS

    def bad(key: str, rule: str) -> ModelError:
        got = excerpt(raw.get(key))
        return ModelError(f"{path}: malformed model shape: {key} must be {rule}, got {got}")

    known = {f.name for f in fields(ModelShape)}
    unknown = [k for k in raw if k not in known]
    if unknown:
        raise ModelError(f"{path}: malformed model shape: unknown field {excerpt(unknown[0])}")
    for key in ("vocab_size", "hidden"):
        if key not in raw:
            raise ModelError(f"{path}: malformed model shape: {key} is missing")
    sizes = {
        "vocab_size": (len(SPECIALS), 1 << 31),
        "embedding_dim": (1, MAX_SIZE),
        "window": (1, MAX_WINDOW),
        "caps_dim": (0, MAX_SIZE),
        "n_caps": (0, N_CAPS),
    }
    defaults = asdict(ModelShape(vocab_size=len(SPECIALS)))
    values = {key: raw.get(key, _as_lists(defaults[key])) for key in known}  # JSON has lists
    for key, (low, high) in sizes.items():
        if not _whole(values[key], low, high):
            raise bad(key, f"a whole number in {low}..{high:,}")
    if values["window"] % 2 == 0:
        raise bad("window", "odd")
    if values["caps_dim"] and values["n_caps"] != N_CAPS:
        raise bad("n_caps", f"{N_CAPS} with caps_dim > 0")
    hidden = values["hidden"]
    if not (
        isinstance(hidden, list)
        and 1 <= len(hidden) <= MAX_LAYERS
        and all(_whole(h, 1, MAX_SIZE) for h in hidden)
    ):
        raise bad("hidden", f"a list of 1 to {MAX_LAYERS} whole numbers in 1..{MAX_SIZE:,}")
    if not isinstance(values["activation"], str) or values["activation"] not in ACTIVATIONS:
        raise ModelError(f"{path}: unknown activation {excerpt(values['activation'])}")
    if values["dtype"] not in ("float32", "float64") or not isinstance(values["dtype"], str):
        raise ModelError(
            f"{path}: unsupported dtype {excerpt(values['dtype'])} (float32 or float64)"
        )
    extra = values["extra"]
    if not (
        isinstance(extra, list)
        and all(
            isinstance(e, list)
            and len(e) == 3
            and isinstance(e[0], str)
            and (e[0] in EXTRACTORS or e[0] == GAZETTEER)
            and _whole(e[1], 2, MAX_FEATURE_ROWS)
            and _whole(e[2], 1, MAX_SIZE)
            for e in extra
        )
        and len({e[0] for e in extra}) == len(extra)
        and all(e[0] != GAZETTEER for e in extra[:-1])
    ):
        raise bad(
            "extra",
            f"a list of distinct [feature ({', '.join(EXTRACTORS)}, {GAZETTEER} last), rows, dim]",
        )
    aux = values["aux_types"]
    if not (
        isinstance(aux, list)
        and len(aux) <= MAX_AUX
        and all(isinstance(t, str) and 0 < len(t) <= 100 for t in aux)
        and len(set(aux)) == len(aux)
    ):
        raise bad("aux_types", f"a list of at most {MAX_AUX} distinct entity types")
    shape = ModelShape(
        **{
            **values,
            "hidden": tuple(hidden),
            "extra": tuple((n, r, d) for n, r, d in extra),
            "aux_types": tuple(aux),
        }
    )
    others = _parameter_count(shape)
    if others > MAX_PARAMETERS:
        raise ModelError(
            f"{path}: malformed model shape: {others:,} parameters besides the embeddings "
            f"(at most {MAX_PARAMETERS:,})"
        )
    return shape


def _parameter_count(shape: ModelShape) -> int:
    """Parameters besides E that WindowClassifier.initialise makes for `shape` (an upper bound)."""
    tables = [(shape.n_caps, shape.caps_dim)] if shape.caps_dim else []
    tables += [(rows, dim) for _, rows, dim in shape.extra]
    fan_in = shape.window * (shape.embedding_dim + sum(dim for _, dim in tables))
    count = sum(rows * dim for rows, dim in tables)
    for width in shape.hidden:
        count += fan_in * width + 2 * width  # W, b and a learnable slope
        fan_in = width
    return count + (fan_in + 1) * (1 + len(shape.aux_types))


def shape_dict(shape: ModelShape) -> dict[str, Any]:
    d = asdict(shape)
    d["hidden"] = list(d["hidden"])
    return d


def _as_lists(value: Any) -> Any:
    return [_as_lists(v) for v in value] if isinstance(value, (list, tuple)) else value
