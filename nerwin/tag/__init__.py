"""Tagging: documents in, located entities out, with a trained model.

- pipeline: the library's LocationTagger (tag, tag_tokens, pipe) and its Document
- documents: the working form of a document and batched scoring of many
- inputs, formats: what `nerwin predict` reads (text, files, stdin, CoNLL) and prints
- explain: why a token scored as it did (gradient x input, occlusion)
- dask: tagging files on a Dask cluster into shards (the `dask` extra)

May import nerwin.engine, nerwin.data, nerwin.files, nerwin.model and the top-level config,
errors and metrics; never nerwin.training or the face (api, cli, render).
"""
