"""Shared fixtures: a seeded rng, fixture paths and the optional shared corpora."""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # as the nerwin command does; must precede the numpy import

from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHARED_DATA = ROOT.parent / "shared" / "data"
CONLL_DIR = SHARED_DATA / "conll2003"
EMBEDDINGS_DIR = SHARED_DATA / "embeddings"


@pytest.fixture
def rng() -> np.random.Generator:
    """A generator seeded the same way for every test."""
    return np.random.default_rng(1234)


@pytest.fixture
def fixtures() -> Path:
    """The folder of small hand-written test files."""
    return FIXTURES


@pytest.fixture
def shared_conll() -> Path:
    """The CoNLL-2003 folder of ../shared/data, or skip when it is absent."""
    if not (CONLL_DIR / "train.txt").is_file():
        pytest.skip(f"CoNLL-2003 not found at {CONLL_DIR} (shared data is absent on this machine)")
    return CONLL_DIR


@pytest.fixture
def shared_embeddings() -> Path:
    """The embeddings folder of ../shared/data, or skip when it is absent."""
    if not (EMBEDDINGS_DIR / "minilm-50d.txt.gz").is_file():
        pytest.skip(f"pretrained vectors not found at {EMBEDDINGS_DIR} (shared data is absent)")
    return EMBEDDINGS_DIR


@pytest.fixture(scope="session")
def run(tmp_path_factory: pytest.TempPathFactory):
    """A small model trained once per session on the bundled corpus (see tests/_trained.py)."""
    from _trained import trained_run

    return trained_run(tmp_path_factory)


@pytest.fixture(scope="session")
def tagger(run):
    """The shared run's best model, loaded."""
    from nerwin.model.folder import load_model

    return load_model(run.model)[0]
