"""Fine-tune a baseline on AFEW from its DFEW fold-1 model and evaluate it on Val_AFEW (paper
Table 4: every model pre-trained on DFEW fd1, then fine-tuned): ``stages/ablate.py`` with the
``train_afew`` params section."""

from __future__ import annotations

from collections.abc import Sequence

import ablate
from _common import run

PARAMS = ("base", "data", "detect_align", "enhance", "model", "train_afew", "evaluate")
build_parser = ablate.build_parser


def main(argv: Sequence[str] | None = None) -> None:
    ablate.main(argv, params=PARAMS)


if __name__ == "__main__":
    run(main)
