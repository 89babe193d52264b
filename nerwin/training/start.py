"""A run's first model: a new one (vocabulary, pretrained vectors, features) or --init-from's."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from nerwin.config import Config
from nerwin.data.caps import N_CAPS
from nerwin.data.conll import Corpus
from nerwin.data.corpus import data_path
from nerwin.data.embeddings import load_vectors
from nerwin.data.features import TokenFeature
from nerwin.data.gazetteer import GAZETTEER, Gazetteer
from nerwin.data.placenames import folder_text, load_gazetteer
from nerwin.data.vocab import Vocab, build_vocab, extend_with_vectors
from nerwin.engine import Tensor
from nerwin.errors import ConfigError
from nerwin.files.paths import cache_dir
from nerwin.model.classifier import ModelShape, WindowClassifier
from nerwin.model.folder import GAZETTEER_FILE, LIMITS, load_model
from nerwin.model.tagger import Tagger


def initial_tagger(
    config: Config,
    corpus: Corpus,
    rng: np.random.Generator,
    notes: list[str],
    init_from: str | Path | None = None,
) -> tuple[Tagger, Config]:
    """The run's first model (new, or --init-from's extended), and the config it trains with."""
    start = _Start(config, corpus, rng, notes)
    if init_from is not None:
        return start.continue_from(Path(init_from)), start.config
    vocab, embeddings = start.vocab_and_vectors()
    features = start.fit_features()
    gazetteer = start.gazetteer()
    model = start.new_model(vocab, embeddings, features, gazetteer)
    tagger = Tagger(model, vocab, config.train.threshold, features, gazetteer=gazetteer)
    return tagger, config


@dataclass
class _Start:
    """What building the first model reads: the config, the training corpus, the seeded RNG."""

    config: Config
    corpus: Corpus
    rng: np.random.Generator
    notes: list[str]

    def fit_features(self) -> dict[str, TokenFeature]:
        """Suffix and shape vocabularies from the training words, for the enabled features."""
        words = [w for s in self.corpus.sentences for w in s.words]
        dims = {"suffix": self.config.model.suffix_dim, "shape": self.config.model.shape_dim}
        return {kind: TokenFeature.fit(kind, words) for kind, dim in dims.items() if dim}

    def gazetteer(self) -> Gazetteer | None:
        """The place names of data.gazetteer (None when unset)."""
        d = self.config.data
        if not d.gazetteer_sources:
            return None
        gazetteer, record = load_gazetteer(
            d.gazetteer_sources,
            lambda source: data_path(source, self.config, "data.gazetteer"),
            d.gazetteer_lowercase,
        )
        _check_folder_size(gazetteer)
        sources = ", ".join(f"{r['source']} ({r['names']:,})" for r in record["sources"])
        self.notes.append(
            f"gazetteer: {len(gazetteer):,} names of {len(gazetteer.kinds)} kinds "
            f"({', '.join(gazetteer.kinds)}) from {sources}"
        )
        return gazetteer

    def vocab_and_vectors(self) -> tuple[Vocab, np.ndarray | None]:
        d = self.config.data
        vocab = build_vocab(
            (s.words for s in self.corpus.sentences),
            d.lowercase,
            d.digits,
            d.min_count,
            d.max_vocab,
        )
        if not d.vectors:
            self.notes.append(
                f"vocabulary: {len(vocab):,} words from {self.corpus.path}; random vectors"
            )
            return vocab, None
        vectors_path = data_path(d.vectors, self.config, "data.vectors")
        vectors = load_vectors(
            vectors_path,
            vocab.words,
            extra_top_n=d.vectors_extend,
            cache_dir=cache_dir(),
            seed=self.config.train.seed,
        )
        if vectors.dim != self.config.model.embedding_dim:
            raise ConfigError(
                f"model.embedding_dim: is {self.config.model.embedding_dim} but {vectors_path} "
                f"has {vectors.dim}-d vectors; set model.embedding_dim={vectors.dim}"
            )
        trained_words = len(vocab)
        vocab, matrix = extend_with_vectors(vocab, vectors.words, vectors.matrix)
        self.notes.append(vectors.coverage.summary())
        if vectors.coverage.found == 0:
            self.notes.append(
                f"warning: {vectors_path}: NO vocabulary word has a vector; check the file "
                "and data.lowercase"
            )
        self.notes.append(
            f"vocabulary: {len(vocab):,} words ({trained_words:,} from "
            f"{self.corpus.path}, {len(vocab) - trained_words:,} from {vectors_path})"
        )
        return vocab, matrix

    def new_model(
        self,
        vocab: Vocab,
        embeddings: np.ndarray | None,
        features: dict[str, TokenFeature],
        gazetteer: Gazetteer | None = None,
    ) -> WindowClassifier:
        m = self.config.model
        dims = {"suffix": m.suffix_dim, "shape": m.shape_dim}
        extra = tuple((name, len(f), dims[name]) for name, f in features.items())
        if gazetteer is not None:  # last: FrozenTagger appends its sentence-dependent id
            extra += ((GAZETTEER, gazetteer.n_values, m.gazetteer_dim),)
        shape = ModelShape(
            len(vocab),
            m.embedding_dim,
            m.window,
            tuple(m.hidden),
            m.activation,
            m.caps_dim,
            N_CAPS if m.caps_dim else 0,
            extra=extra,
            aux_types=self.aux_types(),
        )
        return WindowClassifier.initialise(shape, self.rng, embeddings, m.embedding_init)

    def aux_types(self) -> tuple[str, ...]:
        """The training corpus's other entity types, each given a head when train.aux_weight > 0."""
        if self.config.train.aux_weight == 0:
            return ()
        types = tuple(sorted(set(self.corpus.entity_types) - set(self.config.data.location_types)))
        if not types:
            self.notes.append(
                f"warning: {self.corpus.path}: no entity type besides the locations; "
                "train.aux_weight has nothing to learn from"
            )
        return types

    def continue_from(self, model_dir: Path) -> Tagger:
        """A trained model whose vocabulary is extended with the new training words."""
        tagger, old_config, _ = load_model(model_dir)
        if tagger.members:
            raise ConfigError(
                f"{model_dir}: an ensemble of {len(tagger.models)}; --init-from continues one "
                f"model, e.g. {model_dir.parent / 'members' / '1' / 'model'}"
            )
        self.config = replace(
            self.config,
            model=old_config.model,
            data=replace(
                self.config.data,
                lowercase=old_config.data.lowercase,
                digits=old_config.data.digits,
                gazetteer=old_config.data.gazetteer,
                gazetteer_lowercase=old_config.data.gazetteer_lowercase,
            ),
        )
        vocab = tagger.vocab.extend(w for s in self.corpus.sentences for w in s.words)
        old = tagger.model.params["E"].data
        new_rows = self.rng.normal(0.0, float(old.std()), (len(vocab) - len(old), old.shape[1]))
        params = dict(tagger.model.params)
        params["E"] = Tensor(
            np.concatenate([old, new_rows.astype(old.dtype)]), requires_grad=True, name="E"
        )
        shape = replace(tagger.model.shape, vocab_size=len(vocab))
        self.notes.append(
            f"continuing from {model_dir}: {len(vocab) - len(old):,} new words added "
            f"to its {len(old):,}; model settings taken from that model"
        )
        if self.config.train.aux_weight > 0 and not shape.aux_types:
            self.notes.append(
                f"warning: train.aux_weight is ignored: the model's heads come from "
                f"{model_dir}, which has no heads for other entity types"
            )
        return Tagger(
            WindowClassifier(shape, params),
            vocab,
            self.config.train.threshold,
            tagger.features,
            gazetteer=tagger.gazetteer,
        )


def _check_folder_size(gazetteer: Gazetteer) -> None:
    """ConfigError when the names would not fit in a model folder's gazetteer.txt."""
    limit = LIMITS[GAZETTEER_FILE]
    bound = sum(4 * len(t) + 1 for name in gazetteer.names for t in name) + 42 * len(gazetteer)
    if bound > limit and len(folder_text(gazetteer).encode("utf-8")) > limit:
        raise ConfigError(
            f"data.gazetteer: {len(gazetteer):,} names do not fit in a model folder "
            f"(gazetteer.txt holds at most {limit >> 20} MB)"
        )
