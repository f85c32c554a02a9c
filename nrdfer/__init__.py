"""nrdfer: NR-DFERNet (Li et al., ACM MM 2022) as a reproducible DVC pipeline."""

__version__ = "0.1.0"
