"""WindowClassifier: p(centre word is a location) from a window of word (and caps) vectors."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from nerwin.engine import ACTIVATIONS, Tensor, affine, no_grad, sigmoid_bce
from nerwin.engine.activations import LEARNABLE
from nerwin.engine.embedding import gather_concat
from nerwin.engine.loss import stable_sigmoid
from nerwin.engine.ops import dropout as drop_units

Array = np.ndarray
PRELU_INIT = 0.25


@dataclass(frozen=True)
class ModelShape:
    """Sizes that fix the parameter shapes of a WindowClassifier."""

    vocab_size: int
    embedding_dim: int = 50
    window: int = 5
    hidden: tuple[int, ...] = (300,)
    activation: str = "relu"
    caps_dim: int = 0
    n_caps: int = 0
    dtype: str = "float32"
    extra: tuple[tuple[str, int, int], ...] = ()  # more feature tables: (name, rows, dim)
    aux_types: tuple[
        str, ...
    ] = ()  # other entity types with a training-only head each (U_aux, c_aux)


@dataclass(frozen=True)
class AuxTargets:
    """0/1 labels (n, k) of the auxiliary entity types and the loss weight of each type's head."""

    labels: Array
    weight: float


@dataclass(frozen=True)
class Dropout:
    """Training-time dropout of hidden units: the chance to drop each, and where masks come from."""

    rate: float
    rng: np.random.Generator


class WindowClassifier:
    """h = f(x W + b) (one or more layers), s = h u + c, p = sigmoid(s); x = window vectors."""

    def __init__(self, shape: ModelShape, params: dict[str, Tensor]):
        self.shape = shape
        self.params = params
        self.n_layers = len(shape.hidden)
        self._act = ACTIVATIONS[shape.activation].apply
        self._layers = [
            (_name("W", i, shape), _name("b", i, shape), _name("a", i, shape))
            for i in range(1, self.n_layers + 1)
        ]  # parameter names of each hidden layer

    @classmethod
    def initialise(
        cls,
        shape: ModelShape,
        rng: np.random.Generator,
        embeddings: Array | None = None,
        embedding_init: float | None = None,
    ) -> WindowClassifier:
        """Random parameters (Glorot-uniform weights, zero biases); `embeddings` seeds E.

        Random word vectors are N(0, embedding_init**2), by default N(0, 1 / embedding_dim).
        """
        dtype = np.dtype(shape.dtype)
        arrays: dict[str, Array] = {}
        if embeddings is None:
            scale = 1.0 / np.sqrt(shape.embedding_dim) if embedding_init is None else embedding_init
            embeddings = rng.normal(0.0, scale, (shape.vocab_size, shape.embedding_dim))
        arrays["E"] = np.asarray(embeddings, dtype=dtype)
        for name, rows, dim in _feature_tables(shape):
            arrays[name] = rng.normal(0.0, 1.0 / np.sqrt(dim), (rows, dim))
        fan_in = shape.window * (
            shape.embedding_dim + sum(dim for _, _, dim in _feature_tables(shape))
        )
        for i, width in enumerate(shape.hidden, start=1):
            arrays[_name("W", i, shape)] = _glorot(rng, fan_in, width)
            arrays[_name("b", i, shape)] = np.zeros(width)
            if shape.activation in LEARNABLE:
                arrays[_name("a", i, shape)] = np.full(width, PRELU_INIT)
            fan_in = width
        arrays["u"] = _glorot(rng, fan_in, 1)
        arrays["c"] = np.zeros(1)
        if shape.aux_types:
            arrays["U_aux"] = _glorot(rng, fan_in, len(shape.aux_types))
            arrays["c_aux"] = np.zeros(len(shape.aux_types))
        params = {
            k: Tensor(np.ascontiguousarray(v, dtype=dtype), requires_grad=True, name=k)
            for k, v in arrays.items()
        }
        return cls(shape, params)

    def input_blocks(self) -> list[tuple[str, int, slice]]:
        """Where each (table name, window position) sits in x: e.g. ('E', 2, slice(100, 150))."""
        blocks, start = [], 0
        tables = [("E", self.shape.embedding_dim)] + [
            (n, d) for n, _, d in _feature_tables(self.shape)
        ]
        for name, dim in tables:
            for position in range(self.shape.window):
                blocks.append((name, position, slice(start, start + dim)))
                start += dim
        return blocks

    def input_vectors(
        self, words: Array, caps: Array | None = None, extra: dict[str, Array] | None = None
    ) -> Tensor:
        """Concatenated window vectors x: ids (n, w) -> (n, w * (d + caps_dim + extra dims))."""
        tables, ids = [self.params["E"]], [words]
        if self.shape.caps_dim:
            tables.append(self.params["F"])
            ids.append(caps)
        for name, _, _ in self.shape.extra:
            tables.append(self.params[name])
            ids.append(extra[name])
        return gather_concat(tables, ids)

    def scores_from_inputs(
        self, x: Tensor, pre_activations: list | None = None, dropout: Dropout | None = None
    ) -> Tensor:
        """Logits s (n, 1) from window vectors x (n, k); collects each layer's z if given a list.

        With `dropout` (training only), each hidden unit is dropped with chance dropout.rate.
        """
        return affine(self.hidden(x, pre_activations, dropout), self.params["u"], self.params["c"])

    def hidden(
        self, x: Tensor, pre_activations: list | None = None, dropout: Dropout | None = None
    ) -> Tensor:
        """The last hidden layer h (n, H) from window vectors x."""
        h = x
        for weight, bias, slope_name in self._layers:
            z = affine(h, self.params[weight], self.params[bias])
            if pre_activations is not None:
                pre_activations.append(z.data)
            slope = self.params.get(slope_name)
            h = self._act(z) if slope is None else self._act(z, slope)
            if dropout is not None:
                h = drop_units(h, dropout.rate, dropout.rng)
        return h

    def pre_activations(
        self, words: Array, caps: Array | None = None, extra: dict[str, Array] | None = None
    ) -> list[Array]:
        """Each hidden layer's z = x W + b (n, H), without recording a graph."""
        found: list[Array] = []
        with no_grad():
            self.scores_from_inputs(self.input_vectors(words, caps, extra), found)
        return found

    def forward(
        self, words: Array, caps: Array | None = None, extra: dict[str, Array] | None = None
    ) -> Tensor:
        """Logits s (n,) for windows of word ids (n, w), caps ids (n, w) and extra feature ids."""
        return self.scores_from_inputs(self.input_vectors(words, caps, extra)).reshape(-1)

    def loss(
        self,
        words: Array,
        caps: Array | None,
        labels: Array,
        weight: Array | None = None,
        extra: dict[str, Array] | None = None,
        dropout: Dropout | None = None,
        aux: AuxTargets | None = None,
    ) -> Tensor:
        """Mean (weighted) cross-entropy of sigmoid(forward) against 0/1 labels.

        With `aux` (and heads for aux types), plus aux.weight times each other type's cross-entropy.
        """
        h = self.hidden(self.input_vectors(words, caps, extra), dropout=dropout)
        logits = affine(h, self.params["u"], self.params["c"])  # (n, 1)
        loss = sigmoid_bce(
            logits, labels.reshape(-1, 1), None if weight is None else weight.reshape(-1, 1)
        )
        if aux is None or not self.shape.aux_types:
            return loss
        aux_loss = sigmoid_bce(affine(h, self.params["U_aux"], self.params["c_aux"]), aux.labels)
        scale = np.asarray(aux.weight * len(self.shape.aux_types), dtype=logits.data.dtype)
        return loss + aux_loss * Tensor(scale)  # the mean over n * k entries, times weight * k

    def predict_proba(
        self, words: Array, caps: Array | None = None, extra: dict[str, Array] | None = None
    ) -> Array:
        """P(location) per window, without recording a graph."""
        with no_grad():
            return stable_sigmoid(self.forward(words, caps, extra).data)

    def arrays(self) -> dict[str, Array]:
        """Parameter arrays by name (views, not copies)."""
        return {k: t.data for k, t in self.params.items()}

    def astype(self, dtype: str) -> WindowClassifier:
        """A copy of this model with parameters cast to `dtype` (float64 for checks)."""
        shape = replace(self.shape, dtype=dtype)
        params = {
            k: Tensor(t.data.astype(dtype), requires_grad=True, name=k)
            for k, t in self.params.items()
        }
        return WindowClassifier(shape, params)


def _feature_tables(shape: ModelShape) -> list[tuple[str, int, int]]:
    """The small tables besides E: caps (F) and the extra features, as (name, rows, dim)."""
    caps = [("F", shape.n_caps, shape.caps_dim)] if shape.caps_dim else []
    return caps + list(shape.extra)


def _name(stem: str, layer: int, shape: ModelShape) -> str:
    """W, b, a for one hidden layer; W1, W2, ... for several."""
    return stem if len(shape.hidden) == 1 else f"{stem}{layer}"


def _glorot(rng: np.random.Generator, fan_in: int, fan_out: int) -> Array:
    """Uniform(-r, r) with r = sqrt(6 / (fan_in + fan_out))."""
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, (fan_in, fan_out))
