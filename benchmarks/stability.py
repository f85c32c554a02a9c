"""Do the demo's numbers survive a change of float rounding? Train and evaluate the demo's runs
under several numeric variants and measure how far their results move.

A numeric variant changes nothing but the rounding of the arithmetic: PyTorch's CPU kernels
(``ATEN_CPU_CAPABILITY=default``, the scalar kernels, or ``avx2``) and the number of torch
threads (which changes the order of reductions). Same code, data, params and seed. A result
that differs between variants is float noise, whatever it looks like on one machine.

Runs (each exactly as dvc.yaml runs it, through the stage scripts, under every variant):

- ``main``: the DFEW folds of ``folds.main`` (``stages/train.py`` + ``stages/evaluate.py``);
- ``table1``: the four DSF x DCT settings of Table 1 on the first ablation fold
  (``stages/ablate.py``);
- ``afew``: AFEW fine-tuning from the variant's own DFEW fold-1 model
  (``stages/train.py --train-section train_afew`` + ``stages/evaluate.py``).

Writes ``benchmarks/results/stability.json`` (every run; per run its range over the variants;
the 5-fold mean per variant and its range; the Table 1 and SF claims of each variant, computed by
``nrdfer.report.claims`` from that variant's predictions, and whether they agree) and
``stability.png``. Finished runs are kept in ``--work`` and not redone, so an interrupted
benchmark resumes. Needs the demo's shards: ``dvc repro shards@dfew shards@afew``.

    python benchmarks/stability.py [--variants default:1,default:2,avx2:1,avx2:2]
        [--runs main,table1,afew] [--set train.lr=1e-3 ...] [--work .stability] [--jobs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from nrdfer.io import write_text
from nrdfer.params import load_params
from nrdfer.report.claims import (
    SETTINGS,
    TABLE1_PAIRS,
    filter_claim,
    paired_runs,
    table1_claims,
)

ROOT = Path(__file__).resolve().parents[1]
SHARDS = {"dfew": "data/shards/dfew", "afew": "data/shards/afew"}
TABLE1 = [(True, True), (True, False), (False, True), (False, False)]
"""(DSF, DCT) settings of Table 1; the first is NR-DFERNet."""


def parse_variants(text: str) -> list[tuple[str, int]]:
    out = []
    for item in text.split(","):
        cap, _, threads = item.partition(":")
        if cap not in {"default", "avx2", "avx512"} or not threads.isdigit():
            raise SystemExit(f"--variants: {item!r} is not CAPABILITY:THREADS (e.g. avx2:2)")
        out.append((cap, int(threads)))
    return out


def variant_env(cap: str, threads: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        ATEN_CPU_CAPABILITY=cap,
        OMP_NUM_THREADS=str(threads),
        MKL_NUM_THREADS=str(threads),
        # idle OpenMP threads sleep instead of spinning: on a busy machine spinning threads
        # slowed 2-thread runs tenfold; the split of the work (and so the rounding) is the same
        OMP_WAIT_POLICY="PASSIVE",
        PYTHONHASHSEED="0",
        DVC_NO_ANALYTICS="1",
    )
    return env


def stage(script: str, *args: str, sets: list[str], env: dict[str, str], log: Path) -> None:
    """Run one stage script like dvc.yaml does; a failure stops the benchmark with its log."""
    cmd = [sys.executable, f"stages/{script}", *args]
    for s in sets:
        cmd += ["--set", s]
    with open(log, "a") as fh:
        fh.write("$ " + " ".join(cmd) + "\n")
        fh.flush()
        done = subprocess.run(cmd, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed (exit {done.returncode}); see {log}")


def sets_for(section_sets: list[str], sections: set[str]) -> list[str]:
    """The --set overrides a stage loading ``sections`` accepts."""
    return [s for s in section_sets if s.split(".", 1)[0] in sections]


def read_features(path: Path) -> dict[str, Any]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in ("keys", "labels", "pred", "pred_sf")}


def metrics_of(feats: dict[str, Any]) -> dict[str, float]:
    from nrdfer.report.claims import uar, war

    y = feats["labels"]
    return {
        "uar": 100 * uar(y, feats["pred"]),
        "war": 100 * war(y, feats["pred"]),
        "sf_uar": 100 * uar(y, feats["pred_sf"]),
        "sf_war": 100 * war(y, feats["pred_sf"]),
    }


def best_on_test(d: Path) -> dict[str, float]:
    """The labelled best-epoch-on-test UAR/WAR (with SF) of a run with per-epoch test
    evaluation (main folds, AFEW), from its training summary; empty for grid runs."""
    path = d / "summary.json"
    if not path.is_file():
        return {}
    s = json.loads(path.read_text())
    if "best_on_test_sf_uar" not in s:
        return {}
    return {
        "best_on_test_sf_uar": 100 * s["best_on_test_sf_uar"],
        "best_on_test_sf_war": 100 * s["best_on_test_sf_war"],
    }


def run_one(
    kind: str, item: str, d: Path, env, sets, afew_init: Path | None, table1_fold: str
) -> Path:
    """Train and evaluate one run into ``d``; returns its features npz."""
    feats = d / "features.npz"
    if feats.is_file():
        return feats
    d.mkdir(parents=True, exist_ok=True)
    log = d / "log.txt"
    train_sets = sets_for(sets, {"base", "data", "detect_align", "model", "train"})
    if kind == "table1":
        dsf, dct = item.split("-")
        stage(
            "ablate.py", "--shards", SHARDS["dfew"], "--fold", table1_fold,
            "--set", f"model.dsf={dsf}", "--set", f"model.dct={dct}", "--run", str(d / "run"),
            sets=sets_for(sets, {"base", "data", "detect_align", "evaluate", "model", "train"}),
            env=env, log=log,
        )  # fmt: skip
        (d / "run" / "features.npz").replace(feats)
        return feats
    if kind == "main":
        shards, fold, extra = SHARDS["dfew"], item, []
    else:
        shards, fold = SHARDS["afew"], "1"
        extra = ["--train-section", "train_afew", "--init", str(afew_init), "--enhanced"]
        train_sets = sets_for(
            sets, {"base", "data", "detect_align", "enhance", "model", "train", "train_afew"}
        )
    stage(
        "train.py", "--shards", shards, "--fold", fold, *extra,
        "--checkpoint", str(d / "last.pt"), "--model", str(d / "model.pt"),
        "--live-metrics", str(d / "live/metrics.json"),
        "--live-plots", str(d / "live/plots/metrics"), "--summary", str(d / "summary.json"),
        sets=train_sets, env=env, log=log,
    )  # fmt: skip
    stage(
        "evaluate.py", "--shards", shards, "--fold", fold, "--model", str(d / "model.pt"),
        "--details", str(d / "evaluation.json"), "--features", str(d / "eval_features.npz"),
        sets=sets_for(sets, {"base", "data", "evaluate"}), env=env, log=log,
    )  # fmt: skip
    (d / "eval_features.npz").replace(feats)
    return feats


def claims_of(results: dict[str, dict[str, Any]], folds: list[str]) -> list[dict[str, Any]]:
    """The report's claims from one variant's predictions (``nrdfer.report.claims``, the code
    the report runs): Table 1 on its single ablation fold (one training each: reported, not
    established) and the filter over the main folds."""
    t1 = {s: results.get(f"table1/{SETTINGS[s]}") for s in TABLE1}
    out = [c.as_dict() for c in table1_claims({s: [f] for s, f in t1.items() if f is not None})]
    main = [results.get(f"main/{f}") for f in folds]
    if all(m is not None for m in main):
        out.append(filter_claim(main).as_dict())
    return out


def across_variants(runs: list[dict[str, Any]], variants: list[str]) -> list[dict[str, Any]]:
    """Table 1's comparisons with the numeric variants as repeated trainings: a Student-t
    interval over the per-variant UAR differences (without SF), the noise of a training
    included."""
    uar = {(r["run"], r["variant"]): r["uar"] / 100 for r in runs}
    out = []
    for a, b in TABLE1_PAIRS:
        ka, kb = f"table1/{a}", f"table1/{b}"
        diffs = [uar[(ka, v)] - uar[(kb, v)] for v in variants if (ka, v) in uar and (kb, v) in uar]
        if diffs:
            out.append(paired_runs(a, b, diffs, "numeric variants").as_dict())
    return out


METRIC_KEYS = ("uar", "sf_uar", "war", "sf_war", "best_on_test_sf_uar", "best_on_test_sf_war")
"""What a run records (percent); the best-on-test pair only where the run evaluated every epoch."""


def summarise(runs: list[dict[str, Any]], variants: list[str], folds: list[str]) -> dict:
    def spread(values: list[float]) -> dict[str, float]:
        return {"min": min(values), "max": max(values), "range": max(values) - min(values)}

    def keys_of(rows: list[dict[str, Any]]) -> list[str]:
        return [k for k in METRIC_KEYS if all(k in r for r in rows)]

    by_run: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        by_run.setdefault(r["run"], []).append(r)
    ranges = {
        name: {key: spread([r[key] for r in rs]) for key in keys_of(rs)}
        for name, rs in by_run.items()
    }
    means = {}
    for v in variants:
        rows = [r for r in runs if r["variant"] == v and r["run"].startswith("main/")]
        if len(rows) == len(folds):
            means[v] = {key: float(np.mean([r[key] for r in rows])) for key in keys_of(rows)}
    mean_range = (
        {key: spread([m[key] for m in means.values()]) for key in keys_of(list(means.values()))}
        if means
        else {}
    )
    return {"per_run": ranges, "five_fold_mean": means, "five_fold_mean_range": mean_range}


def plot(path: Path, runs: list[dict[str, Any]], variants: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted({r["run"] for r in runs}, key=lambda n: (n.split("/")[0] != "main", n))
    fig, ax = plt.subplots(figsize=(max(6, 0.8 * len(names) + 2), 4))
    for j, v in enumerate(variants):
        xs, ys = [], []
        for i, n in enumerate(names):
            for r in runs:
                if r["run"] == n and r["variant"] == v:
                    xs.append(i + (j - (len(variants) - 1) / 2) * 0.12)
                    ys.append(r["sf_uar"])
        ax.plot(xs, ys, "o", label=v, alpha=0.8)
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_ylabel("UAR with SF (%)")
    ax.set_title("The same runs under numerically different variants")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(title="kernels:threads", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=100, metadata={"Software": None})
    plt.close(fig)
    tmp.replace(path)


def markdown_table(result: dict[str, Any]) -> str:
    """The per-run UAR (with SF) of every variant, the range, and the 5-fold mean, as
    Markdown (docs/engine.md quotes it)."""
    variants = result["variants"]
    cell = {(r["run"], r["variant"]): r for r in result["runs"]}
    names = sorted(result["per_run"], key=lambda n: (not n.startswith("main/"), n))
    lines = [
        "| run | " + " | ".join(variants) + " | range |",
        "|---|" + "---|" * (len(variants) + 1),
    ]
    for n in names:
        vals = [cell[(n, v)]["sf_uar"] if (n, v) in cell else None for v in variants]
        rng = result["per_run"][n]["sf_uar"]["range"]
        lines.append(
            f"| {n} | "
            + " | ".join("–" if x is None else f"{x:.1f}" for x in vals)
            + f" | {rng:.1f} |"
        )
    means = result.get("five_fold_mean", {})
    if means:
        mr = result["five_fold_mean_range"]["sf_uar"]["range"]
        lines.append(
            "| **5-fold mean** | "
            + " | ".join(f"{means[v]['sf_uar']:.2f}" if v in means else "–" for v in variants)
            + f" | {mr:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", default="default:1,default:2,avx2:1,avx2:2")
    ap.add_argument("--runs", default="main,table1,afew", help="which runs (comma-separated)")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--jobs", type=int, default=1, help="variants run side by side")
    ap.add_argument("--work", type=Path, default=ROOT / ".stability", help="run folders (kept)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/stability.json")
    ap.add_argument("--table", action="store_true", help="print --out as a Markdown table")
    args = ap.parse_args()
    if args.table:
        print(markdown_table(json.loads(args.out.read_text())), end="")
        return
    variants = parse_variants(args.variants)
    kinds = args.runs.split(",")
    for name, path in SHARDS.items():
        if (name == "dfew" or "afew" in kinds) and not (ROOT / path / "index.json").is_file():
            raise SystemExit(f"{path}: no shards; run `dvc repro shards@{name}` first")
    p = load_params(ROOT / "params.yaml", ["folds", "ablation"], [])
    folds = [str(f) for f in p["folds"].main]
    table1_fold = str(p["ablation"].folds[0])
    jobs: list[tuple[str, str]] = []
    if "main" in kinds or "afew" in kinds:
        jobs += [("main", f) for f in (folds if "main" in kinds else ["1"])]
    if "table1" in kinds:
        jobs += [("table1", f"{str(dsf).lower()}-{str(dct).lower()}") for dsf, dct in TABLE1]
    if "afew" in kinds:
        jobs.append(("afew", "val"))

    runs: list[dict[str, Any]] = []
    claims: dict[str, list[dict[str, Any]]] = {}
    started = time.time()
    bar = tqdm(total=len(jobs) * len(variants), desc="runs")
    tag = "-".join(s.replace("=", "") for s in args.sets) or "params"
    lock = threading.Lock()
    earlier_seconds = {}  # from an earlier --out of the same runs, for runs found finished
    if args.out.is_file():
        for r in json.loads(args.out.read_text()).get("runs", []):
            if "seconds" in r:
                earlier_seconds[(r["variant"], r["run"])] = r["seconds"]

    def one_variant(cap: str, threads: int) -> None:
        """Every run of one variant, in order (AFEW starts from this variant's fold 1)."""
        v = f"{cap}:{threads}"
        env = variant_env(cap, threads)
        results: dict[str, dict[str, Any]] = {}
        for kind, item in jobs:
            d = args.work / tag / f"{cap}-t{threads}" / kind / item
            init = args.work / tag / f"{cap}-t{threads}" / "main" / "1" / "model.pt"
            t0 = time.time()
            cached = (d / "features.npz").is_file()
            feats = read_features(run_one(kind, item, d, env, args.sets, init, table1_fold))
            name = (
                f"table1/{SETTINGS[tuple(s == 'true' for s in item.split('-'))]}"
                if kind == "table1"
                else f"{kind}/{item}"
            )
            results[name] = feats
            row = {"run": name, "variant": v, **metrics_of(feats), **best_on_test(d)}
            if not cached:  # wall time of a run done now (runs side by side share the cores)
                (d / "seconds.txt").write_text(f"{time.time() - t0:.0f}\n")
            if (d / "seconds.txt").is_file():
                row["seconds"] = int((d / "seconds.txt").read_text())
            elif (v, name) in earlier_seconds:
                row["seconds"] = earlier_seconds[(v, name)]
            with lock:
                runs.append(row)
                bar.update(1)
                bar.set_postfix_str(f"{v} {name} UAR {row['sf_uar']:.1f}")
        claims[v] = claims_of(results, folds)

    # Variants are independent processes with fixed thread counts: running them side by side
    # changes their speed, never their numbers.
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for future in [pool.submit(one_variant, c, t) for c, t in variants]:
            future.result()
    bar.close()
    order = {f"{c}:{t}": i for i, (c, t) in enumerate(variants)}
    runs.sort(key=lambda r: (order[r["variant"]], r["run"]))
    claims = {v: claims[v] for v in sorted(claims, key=order.get)}

    verdicts: dict[str, set[str]] = {}
    for cl in claims.values():
        for c in cl:
            verdicts.setdefault(f"{c['a']} vs {c['b']}", set()).add(str(c["verdict"]))
    result = {
        "what": "demo runs under numerically different variants (CPU kernels x torch threads)",
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "torch": __import__("torch").__version__,
        "overrides": args.sets,
        "variants": [f"{c}:{t}" for c, t in variants],
        "runs": runs,
        **summarise(runs, [f"{c}:{t}" for c, t in variants], folds),
        "claims": claims,
        "claims_agree": {k: len(v) == 1 for k, v in verdicts.items()},
        "table1_across_variants": across_variants(runs, [f"{c}:{t}" for c, t in variants]),
        "minutes_this_invocation": round(
            (time.time() - started) / 60, 1
        ),  # finished runs are reused
    }
    write_text(args.out, json.dumps(result, indent=1) + "\n")
    plot(args.out.with_suffix(".png"), runs, result["variants"])
    mr = result["five_fold_mean_range"]
    for name, r in result["per_run"].items():
        print(f"{name:22s} UAR {r['uar']['min']:.1f}-{r['uar']['max']:.1f}  "
              f"SF {r['sf_uar']['min']:.1f}-{r['sf_uar']['max']:.1f}")  # fmt: skip
    if mr:
        print(f"5-fold mean UAR {mr['uar']['min']:.2f}-{mr['uar']['max']:.2f} "
              f"(SF {mr['sf_uar']['min']:.2f}-{mr['sf_uar']['max']:.2f})")  # fmt: skip
    for k, agree in result["claims_agree"].items():
        print(f"claim {k}: {'same verdict under every variant' if agree else 'VERDICTS DIFFER'}")
    for c in result["table1_across_variants"]:
        print(c["text"])


if __name__ == "__main__":
    main()
