"""Data: DFEW/AFEW ingest, fold splits, U x V frame sampling, clip augmentation, WebDataset shards.

Modules: :mod:`manifest` (ingest), :mod:`folds`, :mod:`sampling` (paper §3.2),
:mod:`transforms` (clip augmentation), :mod:`shards` (writer and readers), ``synth`` (the generated
demo data set).
"""
