"""Scoring with frozen weights: the first layer as precomputed rows, gathered instead of multiplied.

For fixed weights the first hidden layer of a window is a sum over its positions p,

    x W + b = sum_p (E[w_p] W_E,p + F[c_p] W_F,p + sum_t T_t[f_p] W_t,p) + b

(W_E,p: the rows of W that multiply position p's word vector, `WindowClassifier.input_blocks()`).
A token's word id and caps id (and its gazetteer id, for a model with one) together form its
*key*, `(name * vocab_size + word) * n_caps + caps`; each key has one row per position,
R_p[key] = E[word] W_E,p + F[caps] W_F,p + G[name] W_G,p (+ b at position 0), computed the first
time the key occurs and cached. A window then costs w gathers and additions of H floats
instead of a (w (d + k)) x H product. The extra tables (suffix, shape) have few rows: their
per-position rows are computed in full up front and gathered per window; the gazetteer's ids
join the key instead (most tokens are in no name, so a word rarely needs a second key), which
costs no gathers. Activation, further layers and the output are as in WindowClassifier, so
probabilities equal the matrix path's to float32 rounding (about 3e-7).

Cache policy. Each member has one row table, sized by a memory cap (`cache_bytes`, split evenly
over an ensemble's members; the taggers take `cache_mb`, default $NERWIN_TAG_CACHE_MB or 160
MB); pages are only touched as rows are written, so memory grows with the keys actually seen, up
to the cap. The members of an ensemble have the same shapes, so one slot map serves them all: a
key is looked up once per window and its rows sit at the same slot in every member's table. A
key stays cached once computed (vocabulary ids are ordered by training frequency, and when a
batch brings more new keys than there is room for, the most frequent words are kept). Keys that
find the cache full are computed once per batch of windows into a scratch area and forgotten
(a batch with more of them than the scratch holds is scored in smaller parts). When every
possible key fits in a few MB (tiny vocabularies), all are computed at once.

Only use this while the weights do not change: the rows are a snapshot of them.
"""

from __future__ import annotations

import numpy as np

from nerwin.data.gazetteer import GAZETTEER
from nerwin.engine import ACTIVATIONS, Tensor, no_grad
from nerwin.engine.activations import LEAKY_SLOPE
from nerwin.engine.loss import stable_sigmoid
from nerwin.model.classifier import WindowClassifier

Array = np.ndarray
CHUNK = 256  # windows per pass: the (CHUNK, H) buffers stay in the L2 cache (256 was fastest)
SLOT_BATCH = 16384  # windows whose cache slots are looked up together (bounds the int arrays)
COMPUTE_BLOCK = 2048  # keys whose rows are computed together
EAGER_BYTES = 8 << 20  # key spaces whose rows fit in this are computed all at once
# The gazetteer's ids join the key while the key space stays below this (a slot map of 4 bytes
# per key, mostly never touched: GeoNames' 14 values x 6 caps x 355,876 words = 29.9M keys);
# a gazetteer with many kinds of names is gathered per window like suffix and shape instead.
MAX_FOLDED_KEYS = 1 << 25


class FrozenClassifier:
    """One WindowClassifier's tables: first-layer rows by slot and position, and what follows.

    The slots are FrozenScorer's (`slots` rows, slot 0 unused); not thread-safe (the table and
    buffers are shared by calls): FrozenTagger serialises them.
    """

    def __init__(self, model: WindowClassifier, slots: int = 0):
        shape = model.shape
        self.model = model
        self.window = shape.window
        self.n_caps = shape.n_caps if shape.caps_dim else 1
        self.n_keys = shape.vocab_size * self.n_caps
        arrays = model.arrays()
        self.dtype = arrays["E"].dtype
        w1, self.hidden = arrays[_layer("W", 1, shape)], shape.hidden[0]
        blocks = {(name, position): cols for name, position, cols in model.input_blocks()}
        self._word_weights = [  # (d, H): the rows of W1 that multiply position p's word vector
            np.ascontiguousarray(w1[blocks["E", p]]) for p in range(self.window)
        ]
        self._embeddings = arrays["E"]
        bias = arrays[_layer("b", 1, shape)]
        self._caps_rows = [  # (n_caps, H) per position; the bias joins position 0
            (
                (arrays["F"] @ w1[blocks["F", p]] if shape.caps_dim else np.zeros((1, self.hidden)))
                + (bias if p == 0 else 0)
            ).astype(self.dtype)
            for p in range(self.window)
        ]
        self._extra_rows = {  # name -> (w, rows, H): every value's rows, per position
            name: np.stack([arrays[name] @ w1[blocks[name, p]] for p in range(self.window)])
            for name, _, _ in shape.extra
        }
        self.n_names = 1  # gazetteer values: they join the key (most tokens are in no name)
        self._name_rows = np.zeros((self.window, 1, self.hidden), self.dtype)
        names = self._extra_rows.get(GAZETTEER)
        if names is not None and self.n_keys * names.shape[1] <= MAX_FOLDED_KEYS:
            self._name_rows = self._extra_rows.pop(GAZETTEER).astype(self.dtype)
            self.n_names = self._name_rows.shape[1]
        self.extra_names = list(self._extra_rows)  # the tables still gathered per window
        self.words_caps = self.n_keys  # keys of one gazetteer value: word * n_caps + caps
        self.n_keys *= self.n_names
        self._layers = [  # (W, b, slope) of the hidden layers after the first
            (arrays[_layer("W", i, shape)], arrays[_layer("b", i, shape)], _slope(arrays, i, shape))
            for i in range(2, len(shape.hidden) + 1)
        ]
        self._slope1 = _slope(arrays, 1, shape)
        self.activation = shape.activation
        self._u = np.ascontiguousarray(arrays["u"][:, 0])
        self._c = arrays["c"][0]
        self.row_bytes = self.window * self.hidden * self.dtype.itemsize  # one slot
        self.fixed_bytes = sum(r.nbytes for r in self._extra_rows.values())
        self.slots = slots
        self._rows: Array | None = None  # (w, slots, H), allocated on first use
        self._buffers: tuple[Array, Array, Array] | None = None

    def table(self) -> Array:
        """The row table (untouched pages cost no memory)."""
        if self._rows is None:
            self._rows = np.empty((self.window, self.slots, self.hidden), self.dtype)
        return self._rows

    def compute(self, keys: Array, first: int) -> None:
        """Write the rows of `keys` (distinct) at slots first, first + 1, ... of every position."""
        rows = self.table()
        for start in range(0, len(keys), COMPUTE_BLOCK):  # bounded temporaries
            part = keys[start : start + COMPUTE_BLOCK]
            names, rest = np.divmod(part, self.words_caps)
            words, caps = np.divmod(rest, self.n_caps)
            vectors = self._embeddings[words]
            a = first + start
            for p in range(self.window):
                block = rows[p, a : a + len(part)]
                np.matmul(vectors, self._word_weights[p], out=block)
                block += self._caps_rows[p][caps]
                if self.n_names > 1:
                    block += self._name_rows[p][names]

    def logits(self, slots: Array, extra: dict[str, Array], out: Array) -> Array:
        """Scores (n,) into `out` of windows given their rows' slots (w, n) and extra ids (w, n)."""
        rows = self.table()
        if self._buffers is None:
            zero = np.zeros((CHUNK, self.hidden), self.dtype)
            self._buffers = (np.empty_like(zero), np.empty_like(zero), zero)
        z_buf, tmp_buf, zero_buf = self._buffers
        extra_rows = [(self._extra_rows[name], extra[name]) for name in self._extra_rows]
        n = slots.shape[1]
        first, others = rows[0].take, [r.take for r in rows[1 : self.window]]
        add = np.add
        for s in range(0, n, CHUNK):
            e = min(n, s + CHUNK)
            m = e - s
            chunk = slots[:, s:e]
            z, tmp = z_buf[:m], tmp_buf[:m]
            # take(mode="clip") writes straight into `out` (mode="raise" buffers a copy first)
            first(chunk[0], axis=0, out=z, mode="clip")
            for p, take in enumerate(others, start=1):
                take(chunk[p], axis=0, out=tmp, mode="clip")
                add(z, tmp, out=z)
            for table, ids in extra_rows:
                for p in range(self.window):
                    table[p].take(ids[p, s:e], axis=0, out=tmp, mode="clip")
                    add(z, tmp, out=z)
            h = self._activate(z, self._slope1, tmp, zero_buf[:m])
            for weight, bias, slope in self._layers:
                z2 = h @ weight
                z2 += bias
                h = self._activate(z2, slope, np.empty_like(z2), np.zeros_like(z2))
            np.dot(h, self._u, out=out[s:e])
        out += self._c
        return out

    def _activate(self, z: Array, slope: Array | None, tmp: Array, zero: Array) -> Array:
        """f(z), in place for the ReLU family and hard tanh (same values as the engine's ops)."""
        name = self.activation
        if name == "relu":
            return np.maximum(z, zero, out=z)
        if name in ("leaky_relu", "prelu"):  # max(z, 0) + a min(z, 0) == where(z > 0, z, a z)
            a = np.asarray(LEAKY_SLOPE, dtype=z.dtype) if slope is None else slope
            np.minimum(z, zero, out=tmp)
            np.multiply(tmp, a, out=tmp)
            np.maximum(z, zero, out=z)
            return np.add(z, tmp, out=z)
        if name == "hardtanh":
            return np.clip(z, -1.0, 1.0, out=z)
        op = ACTIVATIONS[name]
        with no_grad():
            args = (Tensor(z),) if slope is None else (Tensor(z), Tensor(slope))
            return op.apply(*args).data


class FrozenScorer:
    """P(location) of windows from one or more frozen models (an ensemble's mean).

    Slot 0 of every table is unused: the slot map starts as zeros (np.zeros: pages that are
    never written cost no memory), and a key's rows sit at slot 1 + the order it was cached in;
    the scratch slots follow the cached ones.
    """

    def __init__(self, models: tuple[WindowClassifier, ...], cache_bytes: int):
        self.members = [FrozenClassifier(m) for m in models]
        first = self.members[0]
        self.window, self.n_caps, self.extra_names = first.window, first.n_caps, first.extra_names
        self.n_keys, self.dtype, self.words_caps = first.n_keys, first.dtype, first.words_caps
        self.folds_names = first.n_names > 1  # the gazetteer's id is part of the key
        share = cache_bytes // max(1, len(models))  # bytes per member
        row_bytes = first.row_bytes
        fixed = max(m.fixed_bytes for m in self.members)
        self.scratch_rows = CHUNK * self.window  # the most distinct keys CHUNK windows hold
        budget = max(0, share - fixed) // row_bytes - self.scratch_rows - 1
        self.capacity = int(min(max(budget, 0), self.n_keys))  # keys that can be cached
        self.eager = self.n_keys * row_bytes <= min(EAGER_BYTES, share)
        self._slot_of = np.zeros(self.n_keys, np.int32)  # key -> its rows' slot, 0 = none
        self.cached = 0  # keys cached
        for member in self.members:
            member.slots = 1 + self.capacity + self.scratch_rows
        if self.eager and self.capacity >= self.n_keys:
            self._cache(np.arange(self.n_keys))

    @property
    def cached_rows(self) -> int:
        """Rows cached over all members (keys cached times members)."""
        return self.cached * len(self.members)

    def keys(self, words: Array, caps: Array | None, names: Array | None = None) -> Array:
        """Position-major keys (w, n) of windows of word ids (n, w), caps ids (n, w) and, for a
        model with a gazetteer, its ids (n, w): (name * vocab_size + word) * n_caps + caps."""
        keys = np.empty((words.shape[1], words.shape[0]), np.intp)
        np.multiply(words.T, self.n_caps, out=keys)
        if caps is not None and self.n_caps > 1:
            np.add(keys, caps.T, out=keys)
        if names is not None:
            keys += names.T.astype(np.intp) * self.words_caps
        return keys

    def probabilities(self, keys: Array, extra: dict[str, Array] | None = None) -> Array:
        """P(location) per window from position-major keys (w, n) and extra ids (w, n)."""
        n = keys.shape[1]
        probs = np.empty(n, self.dtype)
        scores = np.empty(min(n, SLOT_BATCH), self.dtype)
        start, size = 0, SLOT_BATCH
        while start < n:
            stop = min(n, start + size)
            slots = self._slots(keys[:, start:stop])
            if slots is None:  # more uncached keys than the scratch area holds: a smaller part
                size = max(CHUNK, size // 2)
                continue
            part_extra = {k: v[:, start:stop].astype(np.intp) for k, v in (extra or {}).items()}
            out = probs[start:stop]
            for i, member in enumerate(self.members):
                p = stable_sigmoid(member.logits(slots, part_extra, scores[: stop - start]))
                if i:
                    out += p
                else:
                    out[:] = p
            start = stop
        if len(self.members) > 1:
            probs /= probs.dtype.type(len(self.members))
        return probs

    # -- the slots -------------------------------------------------------------------------------

    def _cache(self, keys: Array) -> None:
        """Compute and keep rows for new `keys` (sorted, distinct), as many as there is room for."""
        keys = keys[: self.capacity - self.cached]
        if len(keys):
            first = 1 + self.cached
            for member in self.members:
                member.compute(keys, first)
            self._slot_of[keys] = np.arange(first, first + len(keys))
            self.cached += len(keys)

    def _slots(self, keys: Array) -> Array | None:
        """The slots (w, n) of keys (w, n): new keys are cached while there is room, the rest
        computed into the scratch area; None when they do not fit there."""
        slots = self._slot_of[keys]
        missing = slots == 0
        if not missing.any():
            return slots.astype(np.intp)
        if self.cached < self.capacity:
            self._cache(np.unique(keys[missing]))  # ascending: the most frequent words first
            slots = self._slot_of[keys]
            missing = slots == 0
            if not missing.any():
                return slots.astype(np.intp)
        new, inverse = np.unique(keys[missing], return_inverse=True)
        if len(new) > self.scratch_rows:
            return None
        first = 1 + self.capacity
        for member in self.members:
            member.compute(new, first)
        slots[missing] = first + inverse.reshape(-1)
        return slots.astype(np.intp)


def _layer(stem: str, layer: int, shape) -> str:
    return stem if len(shape.hidden) == 1 else f"{stem}{layer}"


def _slope(arrays: dict[str, Array], layer: int, shape) -> Array | None:
    return arrays.get(_layer("a", layer, shape))
