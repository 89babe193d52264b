"""Training: the loop, a run, ensembles, diagnostics."""
