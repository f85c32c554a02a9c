"""Official weight files (face detector, enhancement networks): their presence checked, their
repositories' formats loaded strictly."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

from torch import nn

from nrdfer.errors import UserError
from nrdfer.io import load_torch


def load_weights(path: str | Path, what: str) -> Any:
    """Read a downloaded weights file with ``torch.load(weights_only=True)``.

    A file that is not a torch checkpoint, is truncated, or carries pickled code (anything but
    tensors and plain containers) is refused without running any of it and raised as
    :class:`UserError` naming the file.
    """
    return load_torch(path, f"{what} weights file", "download the official file again")


def load_official_state_dict(model: nn.Module, state: dict, source: str) -> None:
    """Load a checkpoint saved in an official repository's format, strictly.

    Strips a ``module.`` prefix (DataParallel); BatchNorm ``num_batches_tracked`` buffers absent
    from old checkpoints are the only keys allowed to be missing. Any other missing or unexpected
    key raises :class:`UserError` naming the file and the first offending keys.
    """
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    clean = OrderedDict(
        (k[len("module.") :] if k.startswith("module.") else k, v) for k, v in state.items()
    )
    own = model.state_dict()
    missing = [k for k in own if k not in clean and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in clean if k not in own]
    if missing or unexpected:
        raise UserError(
            f"{source}: not a checkpoint of this network (missing keys {missing[:3]}, "
            f"unexpected keys {unexpected[:3]}); check the file"
        )
    for k in own:
        if k not in clean:  # num_batches_tracked of a pre-0.4 checkpoint
            clean[k] = own[k]
    try:
        model.load_state_dict(clean, strict=True)
    except RuntimeError as exc:
        raise UserError(f"{source}: tensor shapes do not match the network ({exc})") from None


# The weight files the paper's preprocessing needs (paper §4.1): nothing downloads them; a user
# supplies each and points its param at it. (param, selected when, file, where it comes from,
# the override that selects the offline fallback instead)
OFFICIAL_WEIGHTS = (
    (
        "detect_align.resnet50_weights",
        ("detect_align.backend", "resnet50"),
        "Resnet50_Final.pth",
        "RetinaFace-ResNet-50 of biubug6/Pytorch_Retinaface (its README's Google Drive link)",
        "-S detect_align.backend=tiny (the offline RetinaFace-MobileNet0.25)",
    ),
    (
        "enhance.enlightengan_weights",
        ("enhance.method", "enlightengan"),
        "200_net_G_A.pth",
        "EnlightenGAN generator of VITA-Group/EnlightenGAN (its README's Google Drive link)",
        "-S enhance.method=classical (CLAHE + gamma, no file)",
    ),
)


def missing_weights(sections: dict[str, Any]) -> list[str]:
    """One line per weights file the selected face detector / enhancer needs that is not a
    readable file: the file, where it comes from, the param that points to it and the override
    that selects the offline fallback instead. ``sections``: loaded params by section name."""
    lines = []
    for param, (switch, value), name, source, fallback in OFFICIAL_WEIGHTS:
        section, key = param.split(".")
        switch_section, switch_key = switch.split(".")
        if getattr(sections[switch_section], switch_key) != value:
            continue
        path = getattr(sections[section], key)
        if path and Path(path).is_file():
            continue
        where = f"{path} is missing" if path else f"{param} is empty"
        put = f"put it at {path} or set -S {param}=PATH" if path else f"set -S {param}=PATH"
        lines.append(
            f"{switch}: {value} needs {name} ({where}): get the {source}, {put}, or select the "
            f"fallback with {fallback}"
        )
    return lines


def check_weights(sections: dict[str, Any]) -> None:
    """Raise one UserError listing every missing weights file (see :func:`missing_weights`)."""
    lines = missing_weights(sections)
    if lines:
        raise UserError("weights files missing, nothing was run:\n  " + "\n  ".join(lines))
