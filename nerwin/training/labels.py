"""Names of training diagnostics as a person reads them, for plots and reports."""

from __future__ import annotations

import re

PARAMETERS = {
    "E": "word vectors E",
    "F": "caps vectors F",
    "suffix": "suffix vectors",
    "shape": "word-shape vectors",
    "W": "hidden weights W",
    "b": "hidden bias b",
    "a": "PReLU slopes a",
    "u": "output weights u",
    "c": "output bias c",
    "U_aux": "other-type heads U_aux",
    "c_aux": "other-type biases c_aux",
}  # what a person calls each parameter
SERIES = {
    "positive": "location windows",
    "negative": "other windows",
    "dead_fraction": "dead (never active)",
    "saturated_fraction": "saturated (|z| > 3)",
}
STATS = {"mean": "mean", "p50": "median", "p10": "10th-90th percentile"}


def readable(name: str) -> str:
    """A diagnostics series name as a person reads it: "W" -> "hidden weights W",
    "positive.p10" -> "location windows, 10th-90th percentile", "member 2 E" -> "member 2: ..."."""
    member, own = member_prefix(name)
    stem, _, stat = own.rpartition(".")
    if not stem:
        stem, stat = own, ""
    layer = re.fullmatch(r"([Wba])(\d+)", stem)
    if layer:
        text = f"layer {layer.group(2)} {PARAMETERS[layer.group(1)].split()[-2]} {stem}"
    else:
        text = PARAMETERS.get(stem) or SERIES.get(stem) or stem.replace("_", " ")
    text += f", {STATS.get(stat, stat)}" if stat else ""
    return f"member {member}: {text}" if member else text


def member_prefix(name: str) -> tuple[int, str]:
    """(K, rest) of a merged ensemble series "member K rest"; (0, name) otherwise."""
    match = re.fullmatch(r"member (\d+) (.+)", name)
    return (int(match.group(1)), match.group(2)) if match else (0, name)
