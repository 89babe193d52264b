"""A run's learning curves as data: metrics.jsonl read and aligned on epochs, per member."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from nerwin.errors import DataError, NerwinError

METRICS = "metrics.jsonl"

Series = list[float | None]


@dataclass
class Curves:
    """Per-epoch values of a run, aligned on `epochs`; None where an epoch lacks a value."""

    epochs: list[int]
    loss: Series
    lr: Series
    best_epoch: int | None
    dev: dict[str, Series] = field(default_factory=dict)  # 'entity f1', 'token f1', ... in [0, 1]
    diagnostics: dict[str, dict[str, Series]] = field(default_factory=dict)  # panel -> name -> y


def read_metrics(run_dir: str | Path) -> list[dict]:
    """The epoch records of RUN_DIR/metrics.jsonl by member, then epoch (the last of a repeat)."""
    run_dir = Path(run_dir)
    path = run_dir / METRICS
    if not run_dir.is_dir():
        raise NerwinError(f"{run_dir}: run directory not found")
    if not path.is_file():
        raise NerwinError(
            f"{run_dir}: no {METRICS}; is this a run directory written by nerwin train?"
        )
    records: dict[tuple[int, int], dict] = {}  # (member, epoch): an ensemble's members share epochs
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"not a JSON object ({err.msg})", path, number) from None
        if not (
            isinstance(record, dict)
            and isinstance(record.get("epoch"), int)
            and _is_number(record.get("loss"))
        ):
            raise DataError(
                "expected an object with an integer 'epoch' and a number 'loss'", path, number
            )
        member = record.get("member", 0)  # only an ensemble's lines carry one
        if "member" in record and (
            isinstance(member, bool) or not isinstance(member, int) or member < 1
        ):
            raise DataError(f"'member' must be a whole number >= 1, got {member!r}", path, number)
        records[(member, record["epoch"])] = record
    if not records:
        raise DataError("no epoch recorded yet", path)
    return [records[key] for key in sorted(records)]


def member_curves(records: list[dict]) -> dict[int, Curves]:
    """The curves of each member of an ensemble (member 0 alone for a single model), in order."""
    groups: dict[int, list[dict]] = {}
    for record in records:
        groups.setdefault(record.get("member", 0), []).append(record)
    return {member: curves_from_records(group) for member, group in sorted(groups.items())}


def curves_from_records(records: list[dict]) -> Curves:
    """Align the records' loss, lr, dev scores and diagnostics on their epochs."""
    best = [r["epoch"] for r in records if r.get("best")]
    curves = Curves(
        [r["epoch"] for r in records],
        [_number(r.get("loss")) for r in records],
        [_number(r.get("lr")) for r in records],
        best[-1] if best else None,
    )
    for level in ("entity", "token"):
        for metric in ("precision", "recall", "f1"):
            values = [
                _number(_mapping(_mapping(r.get("dev")).get(level)).get(metric)) for r in records
            ]
            if any(v is not None for v in values):
                curves.dev[f"{level} {metric}"] = values
    flat = [_flatten(r.get("diagnostics")) for r in records]
    for panel, name in dict.fromkeys(key for f in flat for key in f):
        curves.diagnostics.setdefault(panel, {})[name] = [f.get((panel, name)) for f in flat]
    return curves


def _mapping(value: object) -> dict:
    """`value` if it is a JSON object, else an empty one (a malformed log entry draws nothing)."""
    return value if isinstance(value, dict) else {}


def _flatten(diagnostics: object) -> dict[tuple[str, str], float | None]:
    """{(panel, series): value}: top-level numbers go to panel 'diagnostics', a dict to its own."""
    out: dict[tuple[str, str], float | None] = {}
    if not isinstance(diagnostics, dict):
        return out
    for key, value in diagnostics.items():
        if _is_number(value):
            out[("diagnostics", str(key))] = float(value)
        elif isinstance(value, dict):
            for name, number in _numbers(value, ""):
                out[(str(key), name)] = number
    return out


def _numbers(tree: dict, prefix: str) -> list[tuple[str, float]]:
    """Dotted names and values of the numbers in a nested dict."""
    found = []
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if _is_number(value):
            found.append((name, float(value)))
        elif isinstance(value, dict):
            found += _numbers(value, name + ".")
    return found


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number(value: object) -> float | None:
    return float(value) if _is_number(value) else None


def merge_members(members: dict[int, Curves]) -> Curves:
    """Every member's diagnostics on the union of their epochs, each series named "member K ..."."""
    epochs = sorted({e for c in members.values() for e in c.epochs})
    empty: Series = [None] * len(epochs)
    merged = Curves(epochs, list(empty), list(empty), None)
    for member, curves in members.items():
        for panel, series in curves.diagnostics.items():
            for name, values in series.items():
                by_epoch = dict(zip(curves.epochs, values))
                merged.diagnostics.setdefault(panel, {})[f"member {member} {name}"] = [
                    by_epoch.get(e) for e in epochs
                ]
    return merged


def best_f1(curves: Curves) -> float | None:
    """Dev entity F1 at the best epoch, if both are known."""
    f1 = curves.dev.get("entity f1")
    if curves.best_epoch is None or f1 is None:
        return None
    return f1[curves.epochs.index(curves.best_epoch)]
