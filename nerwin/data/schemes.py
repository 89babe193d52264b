"""Entity tag schemes (IOB1, IOB2, IOBES, IO) and entity spans, by conlleval's chunk rules."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache
from itertools import chain

import numpy as np
from numpy.typing import NDArray

from nerwin.errors import ConfigError

SCHEMES = ("IOB1", "IOB2", "IOBES", "IO")
_ALIASES = {"BIOES": "IOBES", "BILOU": "IOBES", "BIO": "IOB2"}
_PREFIXES = {
    "IOB1": frozenset("BI"),
    "IOB2": frozenset("BI"),
    "IOBES": frozenset("BIES"),
    "IO": frozenset("I"),
}
_BILOU = {"L": "E", "U": "S"}
_ENTITY_PREFIXES = frozenset("BIES")

Span = tuple[int, int, str]


def normalise_scheme(name: str) -> str:
    """Canonical scheme name of name, case-insensitive (BIOES/BILOU -> IOBES, BIO -> IOB2)."""
    key = str(name).strip().upper()
    key = _ALIASES.get(key, key)
    if key not in SCHEMES:
        choices = ", ".join((*SCHEMES, *_ALIASES))
        raise ConfigError(f"unknown tag scheme {name!r}; expected one of {choices}")
    return key


@lru_cache(maxsize=4096)
def parse_tag(tag: str) -> tuple[str, str]:
    """Split a tag: 'O' -> ('O', ''), 'B-LOC' -> ('B', 'LOC'); L-/U- read as E-/S-."""
    if tag == "O":
        return "O", ""
    prefix, dash, kind = tag[:1], tag[1:2], tag[2:]
    prefix = _BILOU.get(prefix, prefix)
    if dash != "-" or prefix not in _ENTITY_PREFIXES:
        raise ValueError(f"tag {tag!r} fits no scheme: expected O or B-/I-/E-/S-/L-/U- and a type")
    if not kind:
        raise ValueError(f"tag {tag!r} has an empty entity type")
    return prefix, kind


def validate_tag(tag: str) -> bool:
    """True when tag is O or P-TYPE with P in B, I, E, S (or BILOU's L, U) and a nonempty TYPE."""
    try:
        parse_tag(tag)
    except ValueError:
        return False
    return True


def fits_scheme(tag: str, scheme: str) -> bool:
    """True when tag is valid and its prefix belongs to scheme (IO: I- only; IOB1/IOB2: B-, I-)."""
    allowed = _PREFIXES[normalise_scheme(scheme)]
    return validate_tag(tag) and (tag == "O" or parse_tag(tag)[0] in allowed)


def _end_of_chunk(prev: str, cur: str, prev_type: str, cur_type: str) -> bool:
    """conlleval's endOfChunk with the IOBES cases seqeval adds: does a chunk end before cur?"""
    if prev in ("E", "S"):
        return True
    if prev in ("B", "I") and cur in ("B", "S", "O"):
        return True
    return prev != "O" and prev_type != cur_type


def _start_of_chunk(prev: str, cur: str, prev_type: str, cur_type: str) -> bool:
    """conlleval's startOfChunk with the IOBES cases seqeval adds: does a chunk start at cur?"""
    if cur in ("B", "S"):
        return True
    if cur in ("I", "E") and prev in ("O", "E", "S"):
        return True
    return cur != "O" and prev_type != cur_type


@lru_cache(maxsize=65536)
def _transition(prev_tag: str, tag: str, scheme: str) -> tuple[bool, bool, str]:
    """(chunk ends before tag, chunk starts at tag, tag's type) for the pair prev_tag -> tag."""
    (prev, prev_type), (cur, cur_type) = parse_tag(prev_tag), parse_tag(tag)
    if cur != "O" and cur not in _PREFIXES[scheme]:
        raise ValueError(f"tag {tag!r} is not part of the {scheme} scheme")
    return (
        _end_of_chunk(prev, cur, prev_type, cur_type),
        _start_of_chunk(prev, cur, prev_type, cur_type),
        cur_type,
    )


def tags_to_spans(tags: Sequence[str], scheme: str) -> list[Span]:
    """Half-open entity spans [(start, end, type)] of one sentence's tags, by conlleval's rules."""
    scheme = normalise_scheme(scheme)
    spans: list[Span] = []
    start, kind, prev = -1, "", "O"
    for i, tag in enumerate(tags):
        ends, starts, tag_type = _transition(prev, tag, scheme)
        if ends and start >= 0:
            spans.append((start, i, kind))
            start = -1
        if starts:
            start, kind = i, tag_type
        prev = tag
    if start >= 0:
        spans.append((start, len(tags), kind))
    return spans


def _opens_entity(prev_tag: str, tag: str) -> bool:
    """True when tag begins an entity in the reading 'after O, a sentence start or another type'."""
    (prev, prev_type), (cur, cur_type) = parse_tag(prev_tag), parse_tag(tag)
    return cur != "O" and (prev == "O" or prev_type != cur_type)


def detect_scheme(tag_sequences: Iterable[Sequence[str]]) -> str:
    """Guess the scheme of tagged sentences, by these rules in order.

    IOBES if any E-/S- (or L-/U-) tag appears; IO if I- tags appear but no B-; IOB2 when
    there are no entities; IOB1 if I- tags start entities (after O, a sentence start or another
    type) and every B- follows an entity of its own type; otherwise IOB2, which includes files
    that mix both starts (conlleval reads all of these the same way).
    """
    bigrams: set[tuple[str, str]] = set()
    for tags in tag_sequences:
        bigrams.update(zip(chain(("O",), tags), tags))
    prefixes = {parse_tag(tag)[0] for _, tag in bigrams}
    if prefixes & {"E", "S"}:
        return "IOBES"
    if "B" not in prefixes:
        return "IO" if "I" in prefixes else "IOB2"
    openers = {parse_tag(tag)[0] for prev, tag in bigrams if _opens_entity(prev, tag)}
    return "IOB1" if openers == {"I"} else "IOB2"


def _entity_tags(start: int, end: int, kind: str, scheme: str, after_same: bool) -> list[str]:
    """Tags of one entity [start, end) in scheme; after_same: it touches an entity of its type."""
    tags = [f"I-{kind}"] * (end - start)
    if scheme == "IOBES":
        tags[0], tags[-1] = f"B-{kind}", f"E-{kind}"
        if end - start == 1:
            tags[0] = f"S-{kind}"
    elif scheme == "IOB2" or (scheme == "IOB1" and after_same):
        tags[0] = f"B-{kind}"
    elif scheme == "IO" and after_same:
        raise ValueError(f"IO cannot encode adjacent {kind} entities at {start}")
    return tags


def spans_to_tags(
    spans: Iterable[Sequence], n: int, scheme: str = "IOB2", label: str = "LOC"
) -> list[str]:
    """Encode non-overlapping spans (start, end[, type]) over n tokens as tags of scheme."""
    scheme = normalise_scheme(scheme)
    rows = sorted((int(s[0]), int(s[1]), str(s[2]) if len(s) > 2 else label) for s in spans)
    tags = ["O"] * n
    prev_end, prev_kind = 0, ""
    for start, end, kind in rows:
        if not (prev_end <= start < end <= n):
            raise ValueError(
                f"span ({start}, {end}) is empty, overlaps another or exceeds {n} tokens"
            )
        after_same = start == prev_end and kind == prev_kind
        tags[start:end] = _entity_tags(start, end, kind, scheme, after_same)
        prev_end, prev_kind = end, kind
    return tags


def spans_to_iob2(spans: Iterable[Sequence], n: int, label: str = "LOC") -> list[str]:
    """Encode spans (start, end[, type]) over n tokens as IOB2 tags; label types 2-tuples."""
    return spans_to_tags(spans, n, "IOB2", label)


def binary_to_spans(labels: NDArray) -> NDArray[np.int64]:
    """Maximal runs of 1 in a 0/1 vector (n,) as a (k, 2) int array of half-open [start, end)."""
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {labels.shape}")
    edges = np.diff(np.concatenate(([0], (labels != 0).astype(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return np.stack([starts, ends], axis=1).astype(np.int64)


def spans_to_binary(spans: NDArray, n: int) -> NDArray[np.int8]:
    """0/1 vector (n,) that is 1 inside the non-overlapping half-open spans (k, 2)."""
    spans = np.asarray(spans, dtype=np.int64).reshape(-1, 2)
    delta = np.zeros(n + 1, dtype=np.int64)
    np.add.at(delta, spans[:, 0], 1)
    np.add.at(delta, spans[:, 1], -1)
    return (np.cumsum(delta[:-1]) > 0).astype(np.int8)
