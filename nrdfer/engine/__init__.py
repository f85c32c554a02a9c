"""Training and evaluation: the loop (SGD, AMP, DDP, checkpoints, resume) and UAR/WAR metrics.

Modules: :mod:`~nrdfer.engine.metrics` (WAR, UAR, per-class recall, confusion matrix),
:mod:`~nrdfer.engine.precision` (precision, autocast, grad scaler, model on its device),
:mod:`~nrdfer.engine.rng_state` (random-number states of a run; the checkpoint file is
:mod:`nrdfer.checkpoint`'s),
:mod:`~nrdfer.engine.distributed` (torchrun / DistributedDataParallel),
:mod:`~nrdfer.engine.train` (the loop) and :mod:`~nrdfer.engine.evaluate` (predictions and
metric files). Heavy pieces (plotting, dvclive) are imported where they are used.
"""
