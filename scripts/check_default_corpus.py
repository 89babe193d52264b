"""Check the bundled corpus in data/default (format, IOB2, tokenization) and print its counts.

    python scripts/check_default_corpus.py                      # check train.txt and dev.txt
    python scripts/check_default_corpus.py --from-markup SRC OUT   # convert markup lines to CoNLL

Markup is one sentence per line with entities in brackets: ``Rain hit [LOC New York] on Monday .``
The text is tokenized with nerwin.data.tokenize, so the token column always matches the tokenizer.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from nerwin.data.tokenize import tokenize

DATA = Path(__file__).resolve().parent.parent / "data" / "default"
TYPES = ("LOC", "PER", "ORG", "MISC")
_ENTITY = re.compile(r"\[(LOC|PER|ORG|MISC) ([^\[\]]+)\]")

Sentence = list[tuple[str, str]]


def read_conll(path: Path) -> list[Sentence]:
    """Read `word TAG` lines, blank line between sentences; raise ValueError naming the line."""
    sentences: list[Sentence] = []
    current: Sentence = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            if current:
                sentences.append(current)
            current = []
            continue
        parts = line.split(" ")
        if len(parts) != 2 or not all(parts):
            raise ValueError(f"{path}:{number}: expected 'word TAG', got {line!r}")
        current.append((parts[0], parts[1]))
    if current:
        sentences.append(current)
    return sentences


def iob2_errors(tags: list[str]) -> list[str]:
    """Problems with an IOB2 tag sequence: unknown tags, or I-X not after B-X/I-X."""
    errors, prev = [], "O"
    for i, tag in enumerate(tags):
        if tag != "O" and (tag[:2] not in ("B-", "I-") or tag[2:] not in TYPES):
            errors.append(f"token {i}: unknown tag {tag}")
        elif tag.startswith("I-") and prev[2:] != tag[2:]:
            errors.append(f"token {i}: {tag} after {prev}")
        prev = tag
    return errors


def spans(tags: list[str]) -> list[tuple[str, int, int]]:
    """Entity spans (type, start, end) of a valid IOB2 sequence."""
    found: list[tuple[str, int, int]] = []
    for i, tag in enumerate(tags):
        if tag.startswith("B-"):
            found.append((tag[2:], i, i + 1))
        elif tag.startswith("I-"):
            kind, start, _ = found[-1]
            found[-1] = (kind, start, i + 1)
    return found


def tokenizer_agrees(words: list[str]) -> bool:
    """True if tokenizing the words joined by spaces gives back the same words."""
    return [t.text for s in tokenize(" ".join(words)) for t in s] == words


def markup_to_sentence(line: str) -> Sentence:
    """Turn one markup line into (word, tag) pairs; raise ValueError if an entity splits a token."""
    text, entities, pos = "", [], 0
    for m in _ENTITY.finditer(line):
        text += line[pos : m.start()]
        entities.append((m.group(1), len(text), len(text) + len(m.group(2))))
        text += m.group(2)
        pos = m.end()
    text += line[pos:]
    tokens = [t for s in tokenize(text) for t in s]
    tags = ["O"] * len(tokens)
    for kind, start, end in entities:
        inside = [i for i, t in enumerate(tokens) if t.start >= start and t.end <= end]
        covered = "".join(tokens[i].text for i in inside)
        if not inside or covered != "".join(text[start:end].split()):
            raise ValueError(f"entity {text[start:end]!r} does not align with tokens in: {line}")
        tags[inside[0]] = f"B-{kind}"
        for i in inside[1:]:
            tags[i] = f"I-{kind}"
    return [(t.text, tag) for t, tag in zip(tokens, tags)]


def convert(source: Path, target: Path) -> None:
    """Write the markup file source as a CoNLL file target."""
    lines = [ln.strip() for ln in source.read_text(encoding="utf-8").splitlines()]
    blocks = ["\n".join(f"{w} {t}" for w, t in markup_to_sentence(ln)) for ln in lines if ln]
    target.write_text("".join(block + "\n\n" for block in blocks), encoding="utf-8")


def check(path: Path) -> Counter[str]:
    """Validate one corpus file and return its counts; raise ValueError on the first problem."""
    counts: Counter[str] = Counter()
    for number, sentence in enumerate(read_conll(path), 1):
        words, tags = [w for w, _ in sentence], [t for _, t in sentence]
        if errors := iob2_errors(tags):
            raise ValueError(f"{path} sentence {number}: {'; '.join(errors)}")
        if not tokenizer_agrees(words):
            raise ValueError(f"{path} sentence {number}: tokenizer disagrees: {' '.join(words)}")
        counts["sentences"] += 1
        counts["tokens"] += len(words)
        counts.update(kind for kind, _, _ in spans(tags))
    return counts


def main() -> None:
    """Check both splits and print a Markdown table of their counts, or convert markup."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from-markup", nargs=2, metavar=("SRC", "OUT"), type=Path)
    args = parser.parse_args()
    if args.from_markup:
        convert(*args.from_markup)
        return
    print("| split | sentences | tokens | LOC | PER | ORG | MISC |\n|---|---|---|---|---|---|---|")
    for split in ("train", "dev"):
        c = check(DATA / f"{split}.txt")
        cols = [c["sentences"], c["tokens"], *(c[k] for k in TYPES)]
        print(f"| {split} | " + " | ".join(f"{n:,}" for n in cols) + " |")


if __name__ == "__main__":
    main()
