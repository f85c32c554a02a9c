"""Fine-tune on AFEW from a DFEW model (paper §4.2): ``stages/train.py`` with the
``train_afew`` params section (lr 3e-4, 30 epochs)."""

from __future__ import annotations

from collections.abc import Sequence

import train
from _common import run

PARAMS = ("base", "data", "detect_align", "enhance", "model", "train_afew")
build_parser = train.build_parser


def main(argv: Sequence[str] | None = None) -> None:
    train.main(argv, params=PARAMS)


if __name__ == "__main__":
    run(main)
