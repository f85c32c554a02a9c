"""Models: NR-DFERNet in the paper's three stages, and (later) the baselines of Tables 4-5.

``build_model(params)`` builds the model named by ``params.name`` (see :mod:`.registry`); every
model returns a :class:`ModelOutput`.
"""

from nrdfer.models.output import ModelOutput
from nrdfer.models.registry import available_models, build_model, load_weights, register

__all__ = ["ModelOutput", "available_models", "build_model", "load_weights", "register"]
