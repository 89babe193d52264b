"""The config's corpora and data files: CoNLL files named by data.train/dev, ${name} filled in."""

from __future__ import annotations

import os
from pathlib import Path

from nerwin.config import PATH_VARIABLE, Config, data_file, path_variable
from nerwin.data.conll import Corpus, read_conll
from nerwin.errors import ConfigError, DataError
from nerwin.files.paths import resolve_data_path

PATH_HINTS = {  # where the shipped configs' data comes from (README: Getting CoNLL-2003 and GloVe)
    "conll2003": "; CoNLL-2003 English: see the README section 'Getting CoNLL-2003 and GloVe'",
    "glove": "; GloVe 6B (glove.6B.50d.txt.gz): see the README section "
    "'Getting CoNLL-2003 and GloVe'",
}


def read_corpus(path: str | tuple[str, ...], config: Config, key: str = "data") -> Corpus:
    """Read a CoNLL corpus (or several, joined) with the config's columns and scheme.

    Paths may use the config's ${name} variables; a missing file's error says where it is set.
    """
    d = config.data
    parts = [
        read_conll(
            data_path(name, config, key),
            word_column=d.word_column,
            tag_column=d.tag_column,
            scheme=d.scheme,
            keep_columns=False,
        )
        for name in ((path,) if isinstance(path, str) else path)
    ]
    if len(parts) == 1:
        return parts[0]
    schemes = {c.scheme for c in parts}
    if len(schemes) > 1:
        found = ", ".join(f"{c.path} is {c.scheme}" for c in parts)
        raise ConfigError(f"{key}: the files use different tag schemes ({found}); set data.scheme")
    sentences = tuple(s for c in parts for s in c.sentences)
    return Corpus(" + ".join(c.path for c in parts), sentences, parts[0].scheme)


def data_path(template: str, config: Config, key: str = "data") -> Path:
    """A config data file with its ${name} variables filled in; DataError with a hint if absent."""
    path = resolve_data_path(data_file(config, template))
    if path.exists():
        return path
    names = PATH_VARIABLE.findall(template)
    if not names:
        return path  # the reader reports a plain missing file
    name = names[0]
    hint = PATH_HINTS.get(name, "")
    variable = path_variable(name)
    if os.environ.get(variable):  # the environment wins over the config's paths section
        where = (
            f"${variable} = {os.environ[variable]}, which overrides paths.{name}; fix or unset it"
        )
    else:
        where = (
            f"paths.{name} = {dict(config.paths).get(name, '?')}; set {variable}=DIR or "
            f"--set paths.{name}=DIR"
        )
    raise DataError(f"{path}: file not found ({key} = {template}, {where}{hint})")
