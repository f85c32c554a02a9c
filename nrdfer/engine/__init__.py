"""Training and evaluation: the loop (SGD, AMP, DDP, checkpoints, resume) and UAR/WAR metrics.

Modules: :mod:`~nrdfer.engine.metrics` (WAR, UAR, per-class recall, confusion matrix),
:mod:`~nrdfer.engine.device` (device, autocast, channels-last, compile),
:mod:`~nrdfer.engine.checkpoint` (random-number states of a run; the file format is
:mod:`nrdfer.io`'s),
:mod:`~nrdfer.engine.distributed` (torchrun / DistributedDataParallel),
:mod:`~nrdfer.engine.train` (the loop) and :mod:`~nrdfer.engine.evaluate` (predictions and
metric files). Heavy pieces (plotting, dvclive) are imported where they are used.
"""
