"""How a gazetteer's matches line up with a corpus's gold entities (for `nerwin data`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from nerwin.data.conll import Corpus
from nerwin.data.gazetteer import Gazetteer
from nerwin.data.schemes import tags_to_spans

OUTSIDE = "O"  # a matched name that starts outside every gold entity


@dataclass
class Coverage:
    """Matched names of one corpus against its gold entities."""

    locations: int  # gold location entities
    exact: int  # ... whose span is exactly one matched name
    partly: int  # ... that hold a matched token without being exactly one name
    matches: int  # matched names
    matches_by_type: dict[str, int] = field(default_factory=dict)  # entity type (or O) at start
    new_locations: int | None = None  # dev: location entities whose text is never one in train
    new_exact: int | None = None  # ... that are exactly a matched name


def gold_entities(corpus: Corpus) -> list[tuple[int, int, str, str]]:
    """Every gold entity as (start, end, type, text) in corpus token offsets."""
    out, offset = [], 0
    for sentence in corpus.sentences:
        for start, end, kind in tags_to_spans(sentence.tags, corpus.scheme):
            text = " ".join(sentence.words[start:end])
            out.append((offset + start, offset + end, kind, text))
        offset += len(sentence.words)
    return out


def coverage(
    corpus: Corpus,
    gazetteer: Gazetteer,
    location_types: Sequence[str],
    train_locations: set[str] | None = None,
) -> Coverage:
    """Count matches per entity type and the locations that are names (see Coverage)."""
    words = [w for s in corpus.sentences for w in s.words]
    lengths = np.fromiter((len(s.words) for s in corpus.sentences), np.int64)
    matches = gazetteer.spans(words, lengths)
    entities = gold_entities(corpus)
    type_at = np.full(len(words), OUTSIDE, dtype=object)
    for start, end, kind, _ in entities:
        type_at[start:end] = kind
    covered = np.zeros(len(words) + 1, np.int64)
    for start, stop, _ in matches:
        covered[start:stop] = 1
    covered_before = np.concatenate(([0], np.cumsum(covered)))
    spans = {(start, stop) for start, stop, _ in matches}
    types = set(location_types)
    locations = [e for e in entities if e[2] in types]
    exact = [e for e in locations if (e[0], e[1]) in spans]
    partly = sum(
        covered_before[e[1]] > covered_before[e[0]] and (e[0], e[1]) not in spans for e in locations
    )
    result = Coverage(
        locations=len(locations),
        exact=len(exact),
        partly=int(partly),
        matches=len(matches),
        matches_by_type=dict(Counter(type_at[start] for start, _, _ in matches).most_common()),
    )
    if train_locations is not None:
        new = [e for e in locations if e[3] not in train_locations]
        result.new_locations = len(new)
        result.new_exact = sum((e[0], e[1]) in spans for e in new)
    return result


def location_texts(corpus: Corpus, location_types: Sequence[str]) -> set[str]:
    """The texts of a corpus's gold location entities."""
    types = set(location_types)
    return {text for _, _, kind, text in gold_entities(corpus) if kind in types}


def coverage_rows(name: str, c: Coverage) -> list[tuple[str, str]]:
    """Rows for the text report."""
    share = ", ".join(f"{k} {_pct(v, c.matches)}" for k, v in c.matches_by_type.items())
    rows = [
        (f"{name} names matched", f"{c.matches:,} ({share or 'none'})"),
        (
            f"{name} locations named",
            f"{c.exact:,} of {c.locations:,} exactly ({_pct(c.exact, c.locations)}), "
            f"{c.partly:,} partly",
        ),
    ]
    if c.new_locations is not None:
        rows.append(
            (
                f"{name} new locations named",
                f"{c.new_exact:,} of {c.new_locations:,} never a location in train "
                f"({_pct(c.new_exact or 0, c.new_locations)})",
            )
        )
    return rows


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"
