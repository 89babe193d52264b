"""Why a token was scored as a location: gradient x input per window position, and occlusion.

For one token's logit s and its window vector x (the concatenated word, caps and feature vectors),
the engine's backward gives ds/dx; the contribution of a (table, window position) block is
sum(ds/dx * x) over the block. The bias contribution is sum_l ds/db_l * b_l + c, also from the
same backward. For relu, leaky_relu and prelu the score is linear in x and in the biases within
its activation pattern, so s = sum of contributions + bias exactly (`remainder` is float error);
for curved activations (tanh, gelu, ...) and hardtanh `remainder` holds the rest.

Occlusion replaces one word id by <unk> (caps and other features stay) and reports
s - s_occluded: positive means the word pushed the token towards "location".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from nerwin.data.encode import WindowData
from nerwin.data.gazetteer import GAZETTEER
from nerwin.data.tokenize import Token, tokenize
from nerwin.data.vocab import PAD_END, PAD_START, UNK_ID
from nerwin.engine import Tensor, no_grad
from nerwin.errors import NerwinError
from nerwin.model.classifier import WindowClassifier
from nerwin.model.tagger import Tagger

TABLE_LABELS = {"E": "word", "F": "caps"}  # table -> column name; other tables keep their own


class ExplainError(NerwinError):
    """The tokens asked for cannot be explained (e.g. an index past the end of the text)."""


@dataclass(frozen=True)
class Position:
    """One window position of an explained token: its word and what it contributed to s."""

    offset: int  # -2..+2 for a 5-word window
    word: str  # the token's text, or <s> / </s> past a sentence edge
    known: bool  # False: not in the vocabulary, read as <unk>
    contributions: dict[str, float]  # column ('word', 'caps', ...) -> sum(ds/dx * x) over its block
    occlusion: float | None  # s - s(word -> <unk>); None for padding
    name: str | None = None  # the gazetteer's match here (B-city, I-city, S-country, O), if any

    def to_dict(self) -> dict:
        """JSON-ready form."""
        out = {
            "offset": self.offset,
            "word": self.word,
            "known": self.known,
            "contributions": {k: round(v, 6) for k, v in self.contributions.items()},
            "occlusion": None if self.occlusion is None else round(self.occlusion, 6),
        }
        return out if self.name is None else {**out, "gazetteer": self.name}


@dataclass(frozen=True)
class TokenExplanation:
    """Why token `index` got its score s: per-position contributions, bias and remainder."""

    index: int  # in the document's tokens, counted across sentences from 0
    token: Token
    probability: float  # P(location), as `nerwin predict` computes it
    location: bool  # probability >= the model's threshold
    score: float  # the logit s (float64)
    bias: float  # sum_l ds/db_l . b_l + c
    remainder: float  # s - contributions - bias: float error for relu-like activations
    positions: list[Position]

    @property
    def inputs(self) -> float:
        """Sum of every position's contributions."""
        return float(sum(sum(p.contributions.values()) for p in self.positions))

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {
            "index": self.index,
            "text": self.token.text,
            "start": self.token.start,
            "end": self.token.end,
            "prob": round(self.probability, 6),
            "location": self.location,
            "score": round(self.score, 6),
            "inputs": round(self.inputs, 6),
            "bias": round(self.bias, 6),
            "remainder": round(self.remainder, 9),
            "positions": [p.to_dict() for p in self.positions],
        }


@dataclass
class DocumentExplanation:
    """A text's tokens with their probabilities, and the explanations of the chosen tokens."""

    text: str
    tokens: list[Token]
    probabilities: np.ndarray  # (n_tokens,)
    locations: np.ndarray  # (n_tokens,) 0/1 at the model's threshold
    threshold: float
    activation: str
    explained: list[TokenExplanation] = field(default_factory=list)
    members: int = 1  # an ensemble's size: s is then its members' mean logit

    def to_dict(self) -> dict:
        """JSON-ready form: the text, every token with its probability, and the explanations."""
        rows = zip(self.tokens, self.probabilities, self.locations, strict=True)
        tokens = [
            {
                "index": i,
                "text": t.text,
                "start": t.start,
                "end": t.end,
                "prob": round(float(p), 6),
                "location": bool(loc),
            }
            for i, (t, p, loc) in enumerate(rows)
        ]
        return {
            "text": self.text,
            "threshold": self.threshold,
            "activation": self.activation,
            "members": self.members,
            "tokens": tokens,
            "explanations": [e.to_dict() for e in self.explained],
        }


class Explainer:
    """Explains a tagger's scores with a float64 copy of its model (made once)."""

    def __init__(self, tagger: Tagger):
        self.tagger = tagger
        self.models: list[WindowClassifier] = [m.astype("float64") for m in tagger.models]
        self.model = self.models[0]  # an ensemble's members share one shape
        self.bias_names = [k for k in self.model.params if re.fullmatch(r"b\d*|c", k)]

    def explain(
        self, text: str, indices: Sequence[int] | None = None, all_tokens: bool = False
    ) -> DocumentExplanation:
        """Explain tokens `indices`, else every token (all_tokens), else the predicted locations."""
        sentences = tokenize(text)
        tokens = [t for sentence in sentences for t in sentence]
        data = self.tagger.encode([[t.text for t in s] for s in sentences])
        probs = self.tagger.window_probabilities(data) if tokens else np.zeros(0, np.float32)
        locations = self.tagger.labels(probs)
        doc = DocumentExplanation(
            text,
            tokens,
            probs,
            locations,
            self.tagger.threshold,
            self.model.shape.activation,
            members=len(self.models),
        )
        chosen = _choose(len(tokens), locations, indices, all_tokens)
        if not chosen:
            return doc
        context = _context(sentences, self.model.shape.window)
        for t in chosen:
            doc.explained.append(
                self._explain_token(
                    t, tokens[t], float(probs[t]), bool(locations[t]), data, context[t]
                )
            )
        return doc

    def _explain_token(
        self,
        t: int,
        token: Token,
        prob: float,
        location: bool,
        data: WindowData,
        words: list[str | None],
    ) -> TokenExplanation:
        """One forward and backward of token t's window; sum ds/dx * x per block of x.

        For an ensemble, s is the members' mean logit and every part is the members' mean.
        """
        parts = [self._model_parts(model, data, t) for model in self.models]
        score, bias = (float(np.mean([p[i] for p in parts])) for i in (0, 1))
        grad_x_input, occlusion = (np.mean([p[i] for p in parts], axis=0) for i in (2, 3))
        ids = data.words[t]
        half = self.model.shape.window // 2
        per_position: list[dict[str, float]] = [{} for _ in words]
        for table, position, block in self.model.input_blocks():
            label = TABLE_LABELS.get(table, table)
            per_position[position][label] = float(grad_x_input[block].sum())
        names = self._names(data, t)
        positions = [
            Position(
                p - half,
                _pad_word(p - half) if word is None else word,
                word is None or int(ids[p]) != UNK_ID,
                per_position[p],
                None if word is None else float(occlusion[p]),
                None if word is None else names[p],
            )
            for p, word in enumerate(words)
        ]
        remainder = score - float(grad_x_input.sum()) - bias
        return TokenExplanation(t, token, prob, location, score, bias, remainder, positions)

    def _names(self, data: WindowData, t: int) -> list[str | None]:
        """The gazetteer's label at each window position of token t (None without one)."""
        gazetteer = self.tagger.gazetteer
        if gazetteer is None or GAZETTEER not in data.extra:
            return [None] * self.model.shape.window
        return gazetteer.describe(data.extra[GAZETTEER][t])

    def _model_parts(
        self, model: WindowClassifier, data: WindowData, t: int
    ) -> tuple[float, float, np.ndarray, np.ndarray]:
        """One model's score s, bias part, ds/dx * x and occlusion for token t."""
        for param in model.params.values():
            param.zero_grad()  # leaves accumulate across backward calls
        x = _input_vectors(model, _rows(data, np.array([t])))
        s = model.scores_from_inputs(x)  # (1, 1)
        s.backward()
        bias = sum(
            float(model.params[n].grad.reshape(-1) @ model.params[n].data.reshape(-1))
            for n in self.bias_names
        )
        return float(s.data[0, 0]), bias, x.grad[0] * x.data[0], self._occlusion(model, data, t)

    def _occlusion(self, model: WindowClassifier, data: WindowData, t: int) -> np.ndarray:
        """s - s_occluded (window,): token t's window with each position's word id set to <unk>."""
        w = model.shape.window
        batch = _rows(data, np.full(w + 1, t))  # row w stays the original window
        batch.words[np.arange(w), np.arange(w)] = UNK_ID
        with no_grad():
            s = model.scores_from_inputs(_input_vectors(model, batch)).data[:, 0]
        delta = s[w] - s[:w]
        delta[data.words[t] == UNK_ID] = 0.0  # already <unk>: nothing to take away
        return delta


def _choose(
    n: int, locations: np.ndarray, indices: Sequence[int] | None, all_tokens: bool
) -> list[int]:
    """The token indices to explain, checked against the number of tokens."""
    if indices:
        bad = [i for i in indices if not 0 <= i < n]
        if bad:
            valid = f"0-{n - 1}" if n else "none: the text is empty"
            raise ExplainError(
                f"--token {bad[0]}: the text has {n} token(s) (valid indices: {valid})"
            )
        return list(dict.fromkeys(indices))
    if all_tokens:
        return list(range(n))
    return [int(i) for i in np.flatnonzero(locations)]


def _context(sentences: list[list[Token]], window: int) -> list[list[str | None]]:
    """Per token, the words of its window (None past a sentence edge)."""
    half, out = window // 2, []
    for sentence in sentences:
        words = [t.text for t in sentence]
        for i in range(len(words)):
            out.append(
                [words[j] if 0 <= j < len(words) else None for j in range(i - half, i + half + 1)]
            )
    return out


def _pad_word(offset: int) -> str:
    return PAD_START if offset < 0 else PAD_END


def _rows(data: WindowData, rows: np.ndarray) -> WindowData:
    """The windows `rows` of `data` (copies)."""
    extra = {k: v[rows] for k, v in data.extra.items()}
    return WindowData(
        data.words[rows], None if data.caps is None else data.caps[rows], data.lengths, extra
    )


def _input_vectors(model: WindowClassifier, data: WindowData) -> Tensor:
    """x (n, k) for the windows of `data`, recording a graph back to the tables."""
    return model.input_vectors(data.words, data.caps, data.extra)


def render_explanation(doc: DocumentExplanation, digits: int = 2) -> str:
    """The tokens with indices (locations in brackets), then one table per explained token."""
    marked = [
        f"{i}:[{t.text}]" if loc else f"{i}:{t.text}"
        for i, (t, loc) in enumerate(zip(doc.tokens, doc.locations))
    ]
    lines = ["tokens: " + " ".join(marked) if marked else "tokens: (none)"]
    if not doc.explained:
        lines.append("no token is tagged as a location; --all or --token N explains others")
    unknown = False
    for e in doc.explained:
        lines += ["", *_token_table(e, digits)]
        unknown = unknown or any(not p.known for p in e.positions)
    if doc.explained:
        columns = ", ".join(doc.explained[0].positions[0].contributions)
        lines += [
            "",
            f"{columns}: gradient x input of the logit s over that position's vectors; "
            "occlusion: s minus s with that word replaced by <unk>",
        ]
    if unknown:
        lines.append("* not in the vocabulary: the model reads it as <unk>")
    if doc.explained and doc.members > 1:
        lines.append(
            f"ensemble of {doc.members}: s and every part are the members' means; "
            "P(location) is the mean of their probabilities"
        )
    return "\n".join(lines)


def _token_table(e: TokenExplanation, digits: int) -> list[str]:
    """Header line and one row per window position for one explained token."""
    columns = list(e.positions[0].contributions)
    verdict = "location" if e.location else "not a location"
    parts = " + ".join(
        f"{name} {_num(sum(p.contributions[name] for p in e.positions), digits)}"
        for name in columns
    )
    rest = f" + rest {_num(e.remainder, digits)}" if abs(e.remainder) >= 0.5 * 10**-digits else ""
    head = (
        f"token {e.index} {e.token.text!r}: P(location) {e.probability:.3f} ({verdict}); "
        f"s {_num(e.score, digits)} = {parts} + bias {_num(e.bias, digits)}{rest}"
    )
    words = [
        p.word + ("" if p.known else "*") + (f" ({p.name})" if p.name not in (None, "O") else "")
        for p in e.positions
    ]
    width = max(4, *(len(w) for w in words))
    num = max(9, digits + 6, *(len(c) + 2 for c in columns))
    rows = [
        "  pos  "
        + "text".ljust(width)
        + "".join(f"{c:>{num}}" for c in columns)
        + f"{'occlusion':>{num + 2}}"
    ]
    for p, word in zip(e.positions, words):
        cells = "".join(f"{_num(p.contributions[c], digits):>{num}}" for c in columns)
        occl = "-" if p.occlusion is None else _num(p.occlusion, digits)
        offset = f"{p.offset:+d}" if p.offset else "0"
        rows.append(f"  {offset:>3}  {word.ljust(width)}{cells}{occl:>{num + 2}}")
    return [head, *rows]


def _num(value: float, digits: int) -> str:
    """value with `digits` decimals, never '-0.00'."""
    text = f"{value:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text
