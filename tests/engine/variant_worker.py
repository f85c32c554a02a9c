"""Train a small NR-DFERNet with the demo's training settings (params.yaml's ``train``
section) in its own process, so the caller can choose the process's float rounding
(``ATEN_CPU_CAPABILITY``, ``OMP_NUM_THREADS``); writes the test clips' probabilities as JSON.

Usage: python tests/engine/variant_worker.py OUT_JSON [--set train.KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from nrdfer.engine.rng_state import seed_everything  # noqa: E402
from nrdfer.engine.train import fit  # noqa: E402
from nrdfer.labels import CLASSES, NUM_CLASSES  # noqa: E402
from nrdfer.models import build_model  # noqa: E402
from nrdfer.params import load_params  # noqa: E402
from tests.engine.tiny_engine import PALETTE, BatchSource  # noqa: E402

FRAMES, SIZE = 8, 32


def clips(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Clips whose class shows as a faint colour in a few frames under strong noise, so that
    the task is learnt gradually, as the demo's is, not in a few steps."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % NUM_CLASSES
    colours = torch.tensor(PALETTE, dtype=torch.float32)[labels] - 128  # (n, 3)
    shown = (torch.rand(n, FRAMES, generator=g) < 0.5).float()  # (n, T): frames showing it
    base = 128 + 0.35 * colours[:, None, :, None, None] * shown[:, :, None, None, None]
    noise = torch.randn(n, FRAMES, 3, SIZE, SIZE, generator=g) * 60
    data = (base + noise).clamp(0, 255).to(torch.uint8)  # (n, T, 3, H, W)
    return data, labels, [f"c{i:03d}" for i in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--set", dest="sets", action="append", default=[])
    args = ap.parse_args()
    p = load_params(ROOT / "params.yaml", ["model", "train"], args.sets, flag="--set")
    model_p = dataclasses.replace(
        p["model"], frames=FRAMES, image_size=SIZE, widths=(8, 16, 32), spatial_mlp_dim=32,
        temporal_mlp_dim=64,
    )  # fmt: skip
    train_p = dataclasses.replace(p["train"], epochs=8, eval_every_epoch=False, precision="fp32")
    seed_everything(3)
    model = build_model(model_p)
    test = BatchSource(clips(70, seed=2), batch_size=35)
    result = fit(
        model,
        BatchSource(clips(112, seed=1), batch_size=16, seed=3),
        train_p,
        seed=3,
        device=torch.device("cpu"),
        checkpoint_path=args.out.with_suffix(".pt"),
        run_identity={"variant_worker": 1},
        classes=CLASSES,
        progress=False,
    )
    model.load_state_dict(result.model_state)
    model.eval()
    with torch.no_grad():
        probs = torch.cat(
            [model(x.float() / 255).logits_seq.softmax(-1) for x, _, _ in test.eval()]
        )
    labels = torch.cat([y for _, y, _ in test.eval()])
    args.out.write_text(
        json.dumps(
            {
                "probs": probs.tolist(),
                "labels": labels.tolist(),
                "train_acc": result.history[-1]["train_acc"],
            }
        )  # fmt: skip
    )


if __name__ == "__main__":
    main()
