"""The window classifier, its SGD, gradient checks and the model folder."""
