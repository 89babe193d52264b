"""Sanity checks for the bundled corpus in data/default: format, IOB2, sizes, tokenization."""

from __future__ import annotations

from pathlib import Path

import pytest

from nerwin.data.tokenize import tokenize

DEFAULT = Path(__file__).resolve().parents[2] / "data" / "default"
TYPES = {"LOC", "PER", "ORG", "MISC"}
# split -> (sentences, tokens, LOC entities) ranges; the README table gives the exact counts.
EXPECTED = {
    "train": ((350, 450), (3_000, 8_000), (350, 600)),
    "dev": ((100, 150), (800, 2_500), (100, 200)),
}

Sentence = list[tuple[str, str]]


def read_corpus(path: Path) -> list[Sentence]:
    """A tiny strict reader: `word TAG` lines, a blank line between sentences."""
    sentences: list[Sentence] = [[]]
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line:
            sentences.append([])
            continue
        parts = line.split(" ")
        assert len(parts) == 2 and all(parts), f"{path.name}:{number}: {line!r}"
        sentences[-1].append((parts[0], parts[1]))
    return [s for s in sentences if s]


def entities(tags: list[str]) -> list[tuple[str, int, int]]:
    """(type, start, end) spans of an IOB2 tag sequence; asserts the sequence is valid."""
    found: list[tuple[str, int, int]] = []
    prev = "O"
    for i, tag in enumerate(tags):
        assert tag == "O" or (tag[:2] in ("B-", "I-") and tag[2:] in TYPES), tag
        if tag.startswith("B-"):
            found.append((tag[2:], i, i + 1))
        elif tag.startswith("I-"):
            assert prev != "O" and prev[2:] == tag[2:], f"{tag} after {prev} at token {i}"
            found[-1] = (tag[2:], found[-1][1], i + 1)
        prev = tag
    return found


@pytest.fixture(scope="module", params=["train", "dev"])
def split(request: pytest.FixtureRequest) -> tuple[str, list[Sentence]]:
    """(name, sentences) of one bundled split."""
    return request.param, read_corpus(DEFAULT / f"{request.param}.txt")


def test_default_corpus_files_are_plain_two_column_conll() -> None:
    for name in ("train", "dev"):
        text = (DEFAULT / f"{name}.txt").read_text(encoding="utf-8")
        assert "-DOCSTART-" not in text and "\t" not in text and "\r" not in text
        assert "\n\n\n" not in text and not text.startswith("\n")


def test_default_corpus_sizes_are_in_range(split: tuple[str, list[Sentence]]) -> None:
    name, sentences = split
    (s_lo, s_hi), (t_lo, t_hi), (l_lo, l_hi) = EXPECTED[name]
    n_loc = sum(kind == "LOC" for s in sentences for kind, _, _ in entities([t for _, t in s]))
    assert s_lo <= len(sentences) <= s_hi
    assert t_lo <= sum(map(len, sentences)) <= t_hi
    assert l_lo <= n_loc <= l_hi


def test_default_corpus_uses_every_entity_type(split: tuple[str, list[Sentence]]) -> None:
    _, sentences = split
    kinds = {kind for s in sentences for kind, _, _ in entities([t for _, t in s])}
    assert kinds == TYPES


def test_default_corpus_tokens_match_the_tokenizer(split: tuple[str, list[Sentence]]) -> None:
    _, sentences = split
    for sentence in sentences:
        words = [w for w, _ in sentence]
        assert [t.text for s in tokenize(" ".join(words)) for t in s] == words


def test_default_corpus_dev_has_unseen_places() -> None:
    def places(name: str) -> set[str]:
        found = set()
        for s in read_corpus(DEFAULT / f"{name}.txt"):
            words, tags = [w for w, _ in s], [t for _, t in s]
            found |= {" ".join(words[a:b]) for k, a, b in entities(tags) if k == "LOC"}
        return found

    unseen = places("dev") - places("train")
    assert len(unseen) >= 30, sorted(unseen)


def test_default_corpus_tags_each_word_consistently_as_loc_or_not() -> None:
    """A word tagged LOC somewhere is never plain O elsewhere (other entity types are fine)."""
    tags_of: dict[str, set[str]] = {}
    for name in ("train", "dev"):
        for s in read_corpus(DEFAULT / f"{name}.txt"):
            for word, tag in s:
                tags_of.setdefault(word, set()).add(tag[2:] or "O")
    headline_words = {"NEW"}  # NEW ZEALAND is LOC, AGREE NEW FISHING RULES is not
    mixed = {w for w, kinds in tags_of.items() if {"LOC", "O"} <= kinds and w[:1].isupper()}
    assert mixed <= headline_words, sorted(mixed - headline_words)
