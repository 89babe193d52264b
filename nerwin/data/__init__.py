"""Data: text files to integer arrays, and a report on a corpus before training.

- conll, schemes: CoNLL column files and their tag schemes (IOB1, IOB2, IOBES, IO), entity spans
- tokenize: raw text to sentences of tokens with character offsets
- vocab, caps, features: words, capitalisation and suffix/shape features to ids
- windows, encode: every token's window of ids, padded at sentence edges
- embeddings, vector_cache: pretrained vectors (GloVe, word2vec, fastText) and their npz cache
- report: what `nerwin data` prints

May import nerwin.engine, nerwin.files and the top-level config and errors; never the model,
training, tagging or face layers.
"""
