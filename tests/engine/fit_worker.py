"""Run a small training in its own process (resume-after-SIGKILL test).

Usage: python tests/engine/fit_worker.py OUT_DIR [--hang-after-epoch N] [--reference DIR]
With --reference, first trains an uninterrupted run into DIR (one process start saved). With
--hang-after-epoch, prints ``CHECKPOINTED N`` once epoch N's checkpoint is written and then
sleeps, so the test can SIGKILL it at a known point.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402

from nrdfer.engine.rng_state import seed_everything  # noqa: E402
from nrdfer.engine.train import fit  # noqa: E402
from nrdfer.labels import CLASSES  # noqa: E402
from tests.engine.tiny_engine import BatchSource, TinyVideoNet, make_clips, train_params  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--hang-after-epoch", type=int, default=0)
    parser.add_argument("--reference", type=Path)
    args = parser.parse_args()
    if args.reference is not None:
        train(args.reference, 0)
    train(args.out, args.hang_after_epoch)


def train(out: Path, hang_after_epoch: int) -> None:
    params = train_params(epochs=4, eval_every_epoch=True)

    def on_epoch_end(record):
        if record["epoch"] == hang_after_epoch:
            print(f"CHECKPOINTED {record['epoch']}", flush=True)
            time.sleep(600)

    seed_everything(7)
    result = fit(
        TinyVideoNet(dropout=0.3),
        BatchSource(make_clips(24, seed=8), batch_size=8, seed=7),
        params,
        seed=7,
        device=torch.device("cpu"),
        checkpoint_path=out / "last.pt",
        run_identity={"worker": 1},
        classes=CLASSES,
        test_batches=BatchSource(make_clips(10, seed=9), batch_size=5).eval,
        progress=False,
        on_epoch_end=on_epoch_end,
    )
    torch.save(result.model_state, out / "final.pt")
    (out / "history.json").write_text(json.dumps(result.history))
    print(f"RESUMED_FROM {result.resumed_from_epoch}", flush=True)


if __name__ == "__main__":
    main()
