"""Models: NR-DFERNet in the paper's three stages, and (later) the baselines of Tables 4-5."""

from nrdfer.models.output import ModelOutput

__all__ = ["ModelOutput"]
