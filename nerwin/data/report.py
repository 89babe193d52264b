"""A report on a corpus before training: sizes, tags, locations, vocabulary, vectors, overlap."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from nerwin.config import DataConfig, ModelConfig
from nerwin.data.conll import Corpus, location_labels, read_conll
from nerwin.data.coverage import Coverage, coverage, coverage_rows, location_texts
from nerwin.data.embeddings import load_vectors
from nerwin.data.placenames import load_gazetteer
from nerwin.data.schemes import parse_tag, tags_to_spans
from nerwin.data.vocab import SPECIALS, UNK_ID, Vocab, build_vocab
from nerwin.files.paths import resolve_data_path

MAX_LINES_SHOWN = 5  # line numbers listed per kind of malformed tag


@dataclass
class CorpusStats:
    """Counts of one CoNLL file."""

    path: str
    sentences: int
    tokens: int
    scheme: str
    entities: dict[str, int]  # entity type -> number of entities
    location_entities: int  # entities whose type is a location type
    location_tokens: int  # tokens inside those entities
    location_share: float  # location_tokens / tokens
    longest_sentence: int  # tokens
    longest_sentence_line: int  # its first line in the file
    malformed: int  # I-/E- tags that open an entity (IOB2 and IOBES only)
    malformed_lines: list[int] = field(default_factory=list)  # the first few of them


@dataclass
class VectorStats:
    """How the training vocabulary is found in a vector file (the lookup `nerwin train` uses)."""

    path: str
    dim: int
    words: int  # vocabulary words looked up
    exact: int
    lowercase: int
    digits: int
    missing: int


@dataclass
class DataReport:
    """Everything `nerwin data` reports; `problems` non-empty means the data cannot train."""

    location_types: list[str]
    train: CorpusStats
    vocabulary: int  # distinct normalised training words
    dev: CorpusStats | None = None
    dev_oov_tokens: int | None = None  # dev tokens whose word is not in the vocabulary
    dev_oov_rate: float | None = None
    dev_location_oov_rate: float | None = None  # the same among dev location tokens
    overlap: int | None = None  # dev sentences whose words also form a train sentence
    vectors: VectorStats | None = None
    gazetteer: dict | None = None  # names, kinds and sources of --gazetteer
    train_gazetteer: Coverage | None = None
    dev_gazetteer: Coverage | None = None
    warnings: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return asdict(self)


def data_report(
    train: str | Path,
    dev: str | Path | None = None,
    vectors: str | Path | None = None,
    location_types: Sequence[str] = ("LOC",),
    word_column: int = 0,
    tag_column: int = -1,
    gazetteer: Sequence[str] = (),
) -> DataReport:
    """Read the files as `nerwin train` would (default lowercase/digit settings) and count;
    with `gazetteer` sources (geonames or name files), how their names cover the entities."""
    defaults = DataConfig()
    types = list(dict.fromkeys(location_types))
    train_corpus = _read(train, word_column, tag_column)
    vocab = build_vocab(
        (s.words for s in train_corpus.sentences), defaults.lowercase, defaults.digits
    )
    report = DataReport(types, corpus_stats(train_corpus, types), len(vocab) - len(SPECIALS))
    dev_corpus = None if dev is None else _read(dev, word_column, tag_column)
    if dev_corpus is not None:
        _add_dev(report, dev_corpus, train_corpus, vocab)
    if gazetteer:
        _add_gazetteer(report, gazetteer, train_corpus, dev_corpus)
    if vectors is not None:
        report.vectors = vector_stats(vectors, vocab)
    _check(report, train_corpus)
    return report


def _read(path: str | Path, word_column: int, tag_column: int) -> Corpus:
    return read_conll(resolve_data_path(str(path)), word_column=word_column, tag_column=tag_column)


def corpus_stats(corpus: Corpus, location_types: Sequence[str]) -> CorpusStats:
    """Sizes, entities per type, location share, longest sentence and malformed tags of a corpus."""
    entities: Counter[str] = Counter()
    for sentence in corpus.sentences:
        entities.update(kind for _, _, kind in tags_to_spans(sentence.tags, corpus.scheme))
    longest = max(corpus.sentences, key=len)
    location_tokens = int(location_labels(corpus, location_types).sum())
    malformed = malformed_lines(corpus)
    return CorpusStats(
        path=corpus.path,
        sentences=len(corpus.sentences),
        tokens=corpus.n_tokens,
        scheme=corpus.scheme,
        entities=dict(sorted(entities.items())),
        location_entities=sum(entities[t] for t in location_types),
        location_tokens=location_tokens,
        location_share=location_tokens / corpus.n_tokens if corpus.n_tokens else 0.0,
        longest_sentence=len(longest),
        longest_sentence_line=longest.line,
        malformed=len(malformed),
        malformed_lines=malformed[:MAX_LINES_SHOWN],
    )


def malformed_lines(corpus: Corpus) -> list[int]:
    """File lines of I-/E- tags not after a B-/I- of their type (IOB2, IOBES): e.g. I- after O."""
    if corpus.scheme not in ("IOB2", "IOBES"):
        return []  # in IOB1 and IO an entity may start with I-
    lines = []
    for sentence in corpus.sentences:
        prev, prev_type = "O", ""
        for i, tag in enumerate(sentence.tags):
            cur, cur_type = parse_tag(tag)
            if cur in ("I", "E") and not (prev in ("B", "I") and prev_type == cur_type):
                lines.append(sentence.line + i)
            prev, prev_type = cur, cur_type
    return lines


def _add_dev(report: DataReport, dev: Corpus, train: Corpus, vocab: Vocab) -> None:
    """Dev counts, out-of-vocabulary rates and the train/dev sentence overlap."""
    report.dev = corpus_stats(dev, report.location_types)
    words = [w for s in dev.sentences for w in s.words]
    unknown = vocab.encode(words) == UNK_ID
    report.dev_oov_tokens = int(unknown.sum())
    report.dev_oov_rate = float(unknown.mean())
    is_location = location_labels(dev, report.location_types).astype(bool)
    report.dev_location_oov_rate = float(unknown[is_location].mean()) if is_location.any() else None
    seen = {s.words for s in train.sentences}
    report.overlap = sum(s.words in seen for s in dev.sentences)


def _add_gazetteer(
    report: DataReport, sources: Sequence[str], train: Corpus, dev: Corpus | None
) -> None:
    """Gazetteer coverage of train's (and dev's) entities."""
    names, record = load_gazetteer(
        sources, lambda s: resolve_data_path(str(s)), DataConfig().gazetteer_lowercase
    )
    report.gazetteer = {"names": len(names), "kinds": list(names.kinds), **record}
    types = report.location_types
    report.train_gazetteer = coverage(train, names, types)
    if dev is not None:
        report.dev_gazetteer = coverage(dev, names, types, location_texts(train, types))


def vector_stats(path: str | Path, vocab: Vocab) -> VectorStats:
    """Look the vocabulary's words (not <unk>, <s>, </s>) up in a vector file as training does."""
    resolved = resolve_data_path(str(path))
    found = load_vectors(resolved, vocab.words[len(SPECIALS) :])
    c = found.coverage
    return VectorStats(str(resolved), found.dim, c.total, c.exact, c.lowercase, c.digits, c.missing)


def _check(report: DataReport, train: Corpus) -> None:
    """Fill problems (the data cannot train) and warnings (it can, but look)."""
    types = ", ".join(report.location_types)
    present = ", ".join(train.entity_types) or "none"
    if report.train.location_entities == 0:
        report.problems.append(
            f"{train.path}: no location entity (type {types}; types present: "
            f"{present}); pass --location-types, or fix the tag column"
        )
    for stats in (report.train, report.dev):
        if stats is not None and stats.malformed:
            shown = ", ".join(map(str, stats.malformed_lines))
            more = ", ..." if stats.malformed > len(stats.malformed_lines) else ""
            report.warnings.append(
                f"{stats.path}: {stats.malformed} I-/E- tag(s) open an entity "
                f"in {stats.scheme} (line {shown}{more}); read as B-"
            )
    if report.dev is not None and report.dev.location_entities == 0:
        report.warnings.append(
            f"{report.dev.path}: no location entity (type {types}); dev F1 "
            "will be 0 and early stopping meaningless"
        )
    v = report.vectors
    if v is not None:
        if v.missing == v.words:
            report.warnings.append(f"{v.path}: NO vocabulary word has a vector; check the file")
        if v.dim != ModelConfig().embedding_dim:
            report.warnings.append(
                f"{v.path}: {v.dim}-d vectors; train with --set model.embedding_dim={v.dim}"
            )


def render_report(report: DataReport) -> str:
    """Aligned text: one block per file, then vocabulary, vectors, warnings and problems."""
    rows: list[tuple[str, str]] = [("location types", ", ".join(report.location_types))]
    rows += _corpus_rows("train", report.train)
    rows.append(("vocabulary", f"{report.vocabulary:,} words (lowercased, digits as 0)"))
    if report.dev is not None:
        rows += _corpus_rows("dev", report.dev)
        oov = f"{_pct(report.dev_oov_rate)} of tokens ({report.dev_oov_tokens:,})"
        if report.dev_location_oov_rate is not None:
            oov += f", {_pct(report.dev_location_oov_rate)} of location tokens"
        rows.append(("dev out of vocabulary", oov))
        rows.append(
            (
                "dev sentences in train",
                f"{report.overlap:,} of {report.dev.sentences:,} "
                f"({_pct(report.overlap / report.dev.sentences)})",
            )
        )
    if report.vectors is not None:
        v = report.vectors
        found = v.words - v.missing
        rows += [
            ("vectors", f"{v.path} ({v.dim}-d)"),
            (
                "vector coverage",
                f"{found:,} of {v.words:,} ({_pct(found / v.words)}): "
                f"{v.exact:,} exact, {v.lowercase:,} lowercase, "
                f"{v.digits:,} digit-normalised, {v.missing:,} missing",
            ),
        ]
    if report.gazetteer is not None:
        g = report.gazetteer
        rows.append(("gazetteer", f"{g['names']:,} names ({', '.join(g['kinds'])})"))
        rows += coverage_rows("train", report.train_gazetteer)
        if report.dev_gazetteer is not None:
            rows += coverage_rows("dev", report.dev_gazetteer)
    width = max(len(k) for k, _ in rows)
    lines = [f"{k.ljust(width)}  {v}" for k, v in rows]
    lines += [f"warning: {w}" for w in report.warnings]
    lines += [f"problem: {p}" for p in report.problems]
    return "\n".join(lines)


def _corpus_rows(name: str, s: CorpusStats) -> list[tuple[str, str]]:
    entities = ", ".join(f"{k} {v:,}" for k, v in s.entities.items()) or "none"
    return [
        (name, s.path),
        (f"{name} size", f"{s.sentences:,} sentences, {s.tokens:,} tokens"),
        (f"{name} tag scheme", s.scheme),
        (f"{name} entities", entities),
        (
            f"{name} locations",
            f"{s.location_entities:,} entities, {s.location_tokens:,} tokens "
            f"({_pct(s.location_share)} of tokens)",
        ),
        (
            f"{name} longest sentence",
            f"{s.longest_sentence:,} tokens (line {s.longest_sentence_line})",
        ),
        (
            f"{name} I- after O",
            f"{s.malformed:,}" if s.scheme in ("IOB2", "IOBES") else f"- ({s.scheme} allows it)",
        ),
    ]


def _pct(value: float) -> str:
    return f"{100 * value:.2f}%"
