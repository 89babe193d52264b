"""Known place names matched over sentences: a per-token feature (begin/inside/single, and kind).

A name is a sequence of token keys (the tokenizer's tokens, accents stripped and case folded:
`São Paulo` and `SAO PAULO` share the key `sao paulo`). Matching goes left to right over each
sentence and takes the longest name starting at a token; the tokens it covers are skipped, and a
name never crosses a sentence end. Unless `lowercase` is set, a span whose words are all lowercase
(`reading`, `bath`, `new york`) does not count: proper names are capitalised somewhere.

Feature ids: 0 padding, 1 no name, then per kind k (sorted) 2 + 3k + (0 begin, 1 inside or last,
2 single-token name). A name listed under several kinds takes the first of KIND_ORDER.

The names live in a trie of numpy arrays (a child per (node, token) key), so one sentence batch
is matched with a few vectorised steps per name length, not a Python loop per token.
"""

from __future__ import annotations

import threading
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

GAZETTEER = "gazetteer"  # the feature's table name in a model
PAD_ID, NONE_ID = 0, 1
SPANS = ("B", "I", "S")  # begin, inside (or last), single-token name
KIND_ORDER = ("country", "continent", "region", "city")  # which kind a name listed twice keeps
MEMO_WORDS = 250_000  # distinct words whose keys are remembered (then the memo starts over)


def name_key(word: str) -> str:
    """The form names and words are compared in: case folded, accents stripped (a word that is
    only a spacing accent, such as a lone U+00B4, keeps its folded form)."""
    key = word.casefold()
    if key.isascii():
        return key
    decomposed = unicodedata.normalize("NFKD", key)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch) and not ch.isspace())
    return bare or key


def kind_rank(kind: str) -> tuple[int, str]:
    """Sort key of kinds: KIND_ORDER first, then any other kind alphabetically."""
    return (KIND_ORDER.index(kind), "") if kind in KIND_ORDER else (len(KIND_ORDER), kind)


@dataclass
class Gazetteer:
    """Names as tuples of token keys with a kind each; `lowercase`: all-lowercase spans match."""

    names: dict[tuple[str, ...], str]
    lowercase: bool = False
    _memo: dict[str, int] = field(default_factory=dict, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.kinds = tuple(sorted(set(self.names.values()), key=kind_rank))
        self._build_trie()

    def __len__(self) -> int:
        return len(self.names)

    @property
    def values(self) -> list[str]:
        """The feature's id names: <pad>, O, then B-kind, I-kind, S-kind per kind."""
        return ["<pad>", "O", *(f"{span}-{kind}" for kind in self.kinds for span in SPANS)]

    @property
    def n_values(self) -> int:
        """Rows of the feature's table."""
        return 2 + len(SPANS) * len(self.kinds)

    @classmethod
    def from_entries(
        cls, entries: Iterable[tuple[Sequence[str], str]], lowercase: bool = False
    ) -> Gazetteer:
        """A gazetteer of (tokens, kind) entries; a name given twice keeps its first-ranked kind."""
        names: dict[tuple[str, ...], str] = {}
        for tokens, kind in entries:
            key = tuple(name_key(t) for t in tokens)
            if key and all(key) and (key not in names or kind_rank(kind) < kind_rank(names[key])):
                names[key] = kind
        return cls(names, lowercase)

    # -- the trie ------------------------------------------------------------------------------

    def _build_trie(self) -> None:
        """Node 0 is the root; child of (node, token) found by searching sorted node * V + token."""
        names = list(self.names)
        lengths = np.fromiter(map(len, names), np.int64, len(names))
        self._token_id: dict[str, int] = {}  # token -> id, in order of first appearance
        number = self._token_id.setdefault
        ids = np.fromiter(
            (number(t, len(self._token_id)) for name in names for t in name),
            np.int64,
            int(lengths.sum()),
        )
        self._v = max(1, len(self._token_id))
        kind_id = {k: i for i, k in enumerate(self.kinds)}
        kinds = np.fromiter(map(kind_id.__getitem__, self.names.values()), np.int64, len(names))
        offsets = np.cumsum(lengths) - lengths
        self.longest = int(lengths.max()) if len(names) else 0
        node = np.zeros(len(names), np.int64)  # each name's prefix node so far
        self._first = np.full(self._v, -1, np.int64)  # token -> its node at depth 0 (-1: none)
        all_keys, all_children, ends, end_kinds, next_node = [], [], [], [], 1
        for depth in range(self.longest):
            live = np.flatnonzero(lengths > depth)
            key = node[live] * self._v + ids.reshape(-1)[offsets[live] + depth]
            unique, inverse = np.unique(key, return_inverse=True)
            node[live] = next_node + inverse.reshape(-1)
            if depth == 0:  # keys at depth 0 are the token ids themselves
                self._first[unique] = np.arange(next_node, next_node + len(unique))
            all_keys.append(unique)
            all_children.append(np.arange(next_node, next_node + len(unique)))
            done = live[lengths[live] == depth + 1]
            ends.append(node[done])
            end_kinds.append(kinds[done])
            next_node += len(unique)
        empty = np.zeros(0, np.int64)
        keys = np.concatenate(all_keys) if all_keys else empty
        order = np.argsort(keys, kind="stable")
        self._keys = keys[order]
        self._children = (np.concatenate(all_children) if all_children else empty)[order]
        self._kind_of = np.full(next_node, -1, np.int64)  # node -> kind id, -1 = not a name end
        if ends:
            self._kind_of[np.concatenate(ends)] = np.concatenate(end_kinds)

    # -- matching ------------------------------------------------------------------------------

    @property
    def token_radix(self) -> int:
        """One more than the largest token_codes() value plus 1 (codes + 1 fit in 0..radix-1)."""
        return 2 * self._v + 1

    def token_codes(self, words: Sequence[str]) -> np.ndarray:
        """Per word: 2 * its token id + 1 if it has an uppercase letter; -1 if in no name."""
        with self._lock:  # one memo for every thread
            memo = self._memo
            if len(memo) > MEMO_WORDS:
                memo.clear()
            missing = [w for w in set(words) if w not in memo]
            for word in missing:
                token = self._token_id.get(name_key(word), -1)
                memo[word] = -1 if token < 0 else 2 * token + (word.lower() != word)
            return np.fromiter(map(memo.__getitem__, words), np.int64, len(words))

    def spans(self, words: Sequence[str], lengths: np.ndarray) -> list[tuple[int, int, int]]:
        """Matched names as (start, stop, kind id) over flat `words` split into sentences."""
        starts, stops, kinds = self.match_codes(self.token_codes(words), lengths)
        return list(zip(starts.tolist(), stops.tolist(), kinds.tolist()))

    def encode(self, words: Sequence[str], lengths: np.ndarray) -> np.ndarray:
        """Feature ids (int32) of flat `words` in sentences of `lengths` (see the module doc)."""
        return self.encode_codes(self.token_codes(words), lengths)

    def encode_codes(self, codes: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Feature ids (int32) from token_codes() of the words (callers may cache the codes)."""
        ids = np.full(len(codes), NONE_ID, np.int32)
        starts, stops, kinds = self.match_codes(codes, lengths)
        base = (2 + len(SPANS) * kinds).astype(np.int32)
        size = stops - starts
        ids[starts] = np.where(size == 1, base + 2, base)
        inside = size > 1
        count = size[inside] - 1
        if len(count):
            first = np.repeat(starts[inside] + 1 - np.cumsum(count) + count, count)
            ids[first + np.arange(int(count.sum()))] = np.repeat(base[inside] + 1, count)
        return ids

    def match_codes(
        self, codes: np.ndarray, lengths: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Matched names as arrays (starts, stops, kind ids) from the words' token_codes()."""
        n = len(codes)
        best = np.zeros(n, np.int64)  # longest name length starting at each token
        kind = np.zeros(n, np.int64)
        if n and self.names:
            self._walk(codes, np.asarray(lengths, np.int64), best, kind)
        return _leftmost_longest(best, kind)

    def _walk(self, codes: np.ndarray, lengths: np.ndarray, best: np.ndarray, kind: np.ndarray):
        """Follow the trie from every token at once, one name length per step."""
        n = len(codes)
        sentence = np.repeat(np.arange(len(lengths)), lengths)
        known = np.flatnonzero(codes >= 0)
        first = self._first[codes[known] // 2]  # depth 0 needs no search: node per token
        starts, node = known[first >= 0], first[first >= 0]
        upper = codes[starts] % 2 == 1
        for depth in range(self.longest):
            if depth:
                pos = starts + depth
                ok = pos < n
                ok[ok] &= (codes[pos[ok]] >= 0) & (sentence[pos[ok]] == sentence[starts[ok]])
                starts, node, upper, pos = starts[ok], node[ok], upper[ok], pos[ok]
                key = node * self._v + codes[pos] // 2
                at = np.minimum(np.searchsorted(self._keys, key), len(self._keys) - 1)
                found = self._keys[at] == key
                starts, node = starts[found], self._children[at[found]]
                upper = upper[found] | (codes[pos[found]] % 2 == 1)
            if not len(starts):
                break
            ends = self._kind_of[node]
            hit = ends >= 0 if self.lowercase else (ends >= 0) & upper
            best[starts[hit]] = depth + 1
            kind[starts[hit]] = ends[hit]

    def describe(self, ids: np.ndarray) -> list[str]:
        """Names of feature ids, e.g. B-city."""
        values = self.values
        return [values[i] for i in np.asarray(ids).tolist()]


def _leftmost_longest(
    best: np.ndarray, kind: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Matches taken left to right, the longest at each start, skipping covered tokens.

    A match that starts before every earlier match ends is accepted at once; only runs of
    overlapping matches go through the greedy loop.
    """
    starts = np.flatnonzero(best)
    stops = starts + best[starts]
    reach = np.maximum.accumulate(stops)
    overlaps = np.zeros(len(starts), bool)
    overlaps[1:] = starts[1:] < reach[:-1]
    keep = ~overlaps
    for i in np.flatnonzero(overlaps).tolist():  # the greedy rule where matches overlap
        j = i - 1
        while not keep[j]:
            j -= 1
        keep[i] = starts[i] >= stops[j]
    return starts[keep], stops[keep], kind[starts[keep]]
