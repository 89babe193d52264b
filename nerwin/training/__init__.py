"""Training: turning a config and a corpus into a saved model.

- loop: shuffled minibatch SGD epoch by epoch (Batch, Learner, Hooks), early stopping, TrainState
- run: TrainingRun, one model's run folder, resume, --init-from; ensemble: EnsembleRun of members
- rundir: the run folder's files and the checks that keep --force and --resume off others' files
- signals: SIGINT/SIGTERM as a stop request; threshold: the decision threshold tuned on dev
- diagnostics: per-epoch health figures; heap: glibc heap slack; curves, plot: learning curves

May import nerwin.engine, nerwin.data, nerwin.files, nerwin.model and the top-level config,
errors and metrics; never nerwin.tag, nerwin.api, nerwin.cli or nerwin.render.
"""
