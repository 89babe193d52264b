"""Properties: the readers of user input (CoNLL lines, raw text, config overrides) give a result or
nerwin's own error on any input, never another exception; tokenizer offsets always slice back."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from nerwin.config import Config, load_config, save_config
from nerwin.data.conll import location_labels, parse_conll, read_conll
from nerwin.data.tokenize import iter_sentences, tokenize
from nerwin.errors import NerwinError

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- CoNLL ---------------------------------------------------------------------------------------

TAGS = [
    "O",
    "B-LOC",
    "I-LOC",
    "E-LOC",
    "S-LOC",
    "L-LOC",
    "U-LOC",
    "B-PER",
    "I-ORG",
    "S-MISC",
    "B-",
    "X-LOC",
    "LOC",
    "B_LOC",
    "I",
    "-",
    "o",
    "B-LOC-X",
]
WORDS = ["Paris", "-DOCSTART-", "-X-", "NNP", "I-NP", "é", "\ufeff", "\x00", "\u2028", "\x85"]
SEPARATORS = [" ", "\t", "  ", " \r", "\r", "\u3000", "\x0b"]

field = st.one_of(
    st.sampled_from(TAGS),
    st.sampled_from(WORDS),
    st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=6),
)
conll_line = st.one_of(
    st.builds(
        lambda fields, sep: sep.join(fields),
        st.lists(field, max_size=4),
        st.sampled_from(SEPARATORS),
    ),
    st.just(""),
    st.just("-DOCSTART- -X- O O"),
    st.text(max_size=20),
)
conll_lines = st.lists(conll_line, max_size=25)
columns = st.integers(min_value=-4, max_value=4)


def _check_sentences(sentences: list) -> None:
    lines = [s.line for s in sentences]
    assert lines == sorted(lines)
    for sentence in sentences:
        assert len(sentence.words) >= 1
        assert all(w and not any(ch.isspace() for ch in w) for w in sentence.words)
        assert not sentence.tags or len(sentence.tags) == len(sentence.words)


@SETTINGS
@given(conll_lines, columns, st.one_of(st.none(), columns), st.booleans())
@example(["Paris B-LOC", "is O", "", "Rome"], 0, -1, True)
@example(["\ufeffParis B-LOC", "-DOCSTART-"], 0, -1, True)
@example(["a b c", "d e"], -3, 5, False)
def test_properties_parse_conll_text_lines(lines, word_column, tag_column, require_tags) -> None:
    try:
        sentences = list(
            parse_conll(
                lines,
                "src.txt",
                word_column=word_column,
                tag_column=tag_column,
                require_tags=require_tags,
            )
        )
    except NerwinError as err:
        assert "src.txt" in str(err)
        return
    _check_sentences(sentences)


@SETTINGS
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=20), conll_line.map(lambda s: s.encode("utf-8", "surrogatepass"))
        ),
        max_size=20,
    )
)
@example([b"Paris B-LOC\n", b"\xff O\n"])
@example([b"\xef\xbb\xbfParis B-LOC\r\n", b"\r\n"])
def test_properties_parse_conll_byte_lines(lines) -> None:
    try:
        sentences = list(parse_conll(lines, "<stdin>", tag_column=None, require_tags=False))
    except NerwinError as err:
        assert "<stdin>" in str(err)
        return
    _check_sentences(sentences)


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("corpora")


@SETTINGS
@given(
    st.lists(conll_line, max_size=25),
    st.sampled_from(["auto", "IOB1", "IOB2", "IOBES", "BIOES", "IO"]),
    st.sampled_from(["\n", "\r\n"]),
)
@example(["Paris I-LOC", "York B-LOC", ""], "auto", "\n")
@example(["Paris S-LOC", "is B-LOC", "x E-LOC"], "auto", "\r\n")
def test_properties_read_conll_file_then_labels(corpus_dir: Path, lines, scheme, newline) -> None:
    """A file that reads without error always yields location labels (what training does next)."""
    path = corpus_dir / "c.txt"
    path.write_bytes(newline.join(lines).encode("utf-8", "surrogatepass"))
    try:
        corpus = read_conll(path, scheme=scheme)
    except NerwinError as err:
        assert str(path) in str(err)
        return
    labels = location_labels(corpus, ["LOC"])
    assert labels.shape == (corpus.n_tokens,)
    assert set(labels.tolist()) <= {0, 1}


# --- tokenizer -----------------------------------------------------------------------------------

PIECES = [
    "Mr.",
    "U.S.",
    "don't",
    "DON'T",
    "n't",
    "'s",
    "’",
    "I'm",
    "http://x.org/a.",
    "www.",
    "a@b.co",
    "3,000",
    "1:2",
    "...",
    "…",
    "--",
    "-",
    "&",
    "é",
    "e\u0301",
    "\u0915\u093f",
    "\u200d",
    "東京",
    "。",
    "St.",
    "J.",
    "(",
    ")",
    '"',
    "“",
    "The",
    "paris",
    "\n\n",
    "\n \n",
    "\u2029",
    " ",
    "\t",
    "\r\n",
    "\x00",
    "\ufeff",
    "\U0001f600",
    "_",
    "'",
    "n",
]
tokenizer_text = st.one_of(
    st.text(max_size=60),
    st.lists(st.sampled_from(PIECES), max_size=25).map("".join),
    st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=3)), max_size=20).map("".join),
)


@SETTINGS
@given(tokenizer_text)
@example("don't")
@example("n't")
@example("Mr. Smith went to Washington. The end")
@example("http:// x")
def test_properties_tokenizer_offsets_slice_back(text: str) -> None:
    try:
        sentences = tokenize(text)
    except NerwinError:
        return
    tokens = [tok for sentence in sentences for tok in sentence]
    assert all(sentences), "empty sentence"
    for tok in tokens:
        assert tok.text, tok
        assert text[tok.start : tok.end] == tok.text, tok
        assert not any(ch.isspace() for ch in tok.text), tok
    assert all(a.end <= b.start for a, b in itertools.pairwise(tokens)), "tokens overlap or go back"
    covered = {i for tok in tokens for i in range(tok.start, tok.end)}
    assert covered == {i for i, ch in enumerate(text) if not ch.isspace()}, "a character was lost"
    assert list(iter_sentences(text)) == sentences


# --- config overrides ----------------------------------------------------------------------------

KEYS = [
    "data.train",
    "data.dev",
    "data.vectors",
    "data.vectors_extend",
    "data.word_column",
    "data.tag_column",
    "data.scheme",
    "data.location_types",
    "data.lowercase",
    "data.digits",
    "data.min_count",
    "data.max_vocab",
    "model.window",
    "model.embedding_dim",
    "model.hidden",
    "model.activation",
    "model.caps_dim",
    "train.epochs",
    "train.batch_size",
    "train.lr",
    "train.lr_decay",
    "train.embedding_lr_scale",
    "train.pos_weight",
    "train.unk_prob",
    "train.patience",
    "train.threshold",
    "train.tune_threshold",
    "train.seed",
    "data",
    "model",
    "train",
    "train.lr.x",
    "learning_rate",
    "",
    ".",
    "model..window",
    " train.lr ",
]
VALUES = [
    "0",
    "1",
    "-1",
    "3",
    "0.5",
    "1e-3",
    "1.0e400",
    "-.inf",
    ".nan",
    "null",
    "~",
    "true",
    "no",
    "[]",
    "[1, 2]",
    "[LOC, GPE]",
    "{a: 1}",
    "{1: 2}",
    "[[1]]",
    "relu",
    "IOB2",
    "auto",
    "x: y",
    "'quoted'",
    '"\\x00"',
    "&a [*a]",
    "!!binary aGk=",
    "!!python/object:os.system x",
    "[1, 2",
    "2020-01-01",
    "12:30:00",
    "0x1F",
    "0o17",
    "+1",
    "1_000",
    "=",
    "a=b",
    "!!float abc",
    "!!int abc",
    "!!bool maybe",
    "!!timestamp x",
]
override = st.one_of(
    st.text(max_size=30),
    st.builds(
        lambda k, v: f"{k}={v}",
        st.sampled_from(KEYS),
        st.one_of(st.sampled_from(VALUES), st.text(max_size=12)),
    ),
)


@SETTINGS
@given(st.lists(override, max_size=6))
@example(["train.lr=!!float abc"])
@example(["model.hidden=!!int abc"])
@example(["data.lowercase=!!bool maybe"])
@example(["train.seed=!!timestamp x"])
@example(["model.hidden=" + "[" * 2000])
@example(["train=1", "train.lr=0.1"])
def test_properties_config_overrides_give_config_or_config_error(overrides: list[str]) -> None:
    try:
        config = load_config(None, overrides)
    except NerwinError:
        return
    assert isinstance(config, Config)


WELL_FORMED = [
    v for v in VALUES if v not in ("!!float abc", "!!int abc", "!!bool maybe", "!!timestamp x")
]


@SETTINGS
@given(
    st.lists(
        st.builds(
            lambda k, v: f"{k}={v}",
            st.sampled_from(KEYS[:28]),
            st.one_of(
                st.sampled_from(WELL_FORMED),
                st.text(st.characters(blacklist_categories=("Cs",)), max_size=12),
            ),
        ),
        max_size=6,
    )
)
def test_properties_config_round_trips_through_yaml(corpus_dir: Path, overrides: list[str]) -> None:
    """Any accepted config saves as config.yaml and loads back equal."""
    try:
        config = load_config(None, overrides)
    except NerwinError:
        return
    path = corpus_dir / "config.yaml"
    save_config(config, path)
    assert load_config(path) == config
