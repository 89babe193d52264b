"""The model: a window classifier and everything that holds or updates its parameters.

- classifier: WindowClassifier, h = f(x W + b), s = h u + c, p = sigmoid(s), on the engine
- sgd (with refcount): theta <- theta - lr * grad, row-sparse for embedding tables
- checks: whole-model gradient checks, numeric and against hand-derived formulas
- tagger: a model with its vocabulary and threshold, sentences to P(location)
- frozen: the precomputed first layer that scores a trained model's windows fast
- folder: the model folder on disk (weights.npz, vocab.txt, config.yaml, meta.json)

May import nerwin.engine, nerwin.data, nerwin.files and the top-level config and errors; never
nerwin.training, nerwin.tag or the face (api, cli, render).
"""
