"""Claims computed from intervals, never written by hand.

A sentence such as "the dynamic class token helps" is only as good as the interval behind it.
Every comparison the report states goes through :func:`compare`: it states a difference only
when the interval of the difference excludes zero, and otherwise says that the difference is
within noise. The intervals come from what varies in the comparison:

- :func:`spread_interval`: one difference measured several times (per fold, per seed or per
  numeric variant); a Student-t interval of the mean, which covers what varied between them,
  training noise included. The report uses it (Table 1 over the ablation folds, the filter over
  the main folds); a difference measured once is reported but "not established".
- :func:`paired_bootstrap`: two models' predictions on the same test clips; the clips are
  resampled with replacement (the same draw for both models), so the interval covers the luck
  of which clips are in the test set, not training noise (seeds, float rounding). On the demo a
  bootstrap over one fold called Table 1 differences "better" under one CPU kernel set and
  "within noise" under another (benchmarks/stability.py): use it only where the models
  compared are not retrained (e.g. one model evaluated two ways).

The bootstrap uses numpy's PCG64 generator, whose stream is the same on every platform, so a
report states the same interval on any machine given the same predictions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

Metric = Callable[[np.ndarray, np.ndarray], float]
"""(labels, predictions) -> a score in [0, 1]."""

# Two-sided Student-t quantiles t_{0.975, df} for df = 1..30 (beyond: the normal's 1.96).
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
         2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
         2.060, 2.056, 2.052, 2.048, 2.045, 2.042)  # fmt: skip


def war(labels: np.ndarray, pred: np.ndarray) -> float:
    """Weighted average recall: the share of clips classified correctly."""
    labels, pred = np.asarray(labels), np.asarray(pred)
    return float(np.mean(labels == pred)) if labels.size else math.nan


def uar(labels: np.ndarray, pred: np.ndarray) -> float:
    """Unweighted average recall: the mean over the classes present in ``labels`` of each
    class's recall."""
    labels, pred = np.asarray(labels), np.asarray(pred)
    classes = np.unique(labels)
    if not classes.size:
        return math.nan
    return float(np.mean([np.mean(pred[labels == c] == c) for c in classes]))


METRICS: dict[str, Metric] = {"UAR": uar, "WAR": war}


@dataclass(frozen=True)
class Interval:
    """A difference (A - B, in the metric's units) with its two-sided interval."""

    estimate: float
    low: float
    high: float
    method: str  # how the interval was obtained, in words
    level: float = 0.95

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def paired_bootstrap(
    labels: Sequence[int] | np.ndarray,
    pred_a: Sequence[int] | np.ndarray,
    pred_b: Sequence[int] | np.ndarray,
    metric: str = "UAR",
    *,
    resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Percentile interval of ``metric(A) - metric(B)`` over the same test clips, resampled
    with replacement ``resamples`` times (one draw of clip indices serves both models).

    Raises:
        ValueError: the three arrays differ in length, or hold no clip.
    """
    y, a, b = (np.asarray(v) for v in (labels, pred_a, pred_b))
    if not (y.shape == a.shape == b.shape) or y.ndim != 1 or not y.size:
        raise ValueError(
            f"paired bootstrap needs three equal, non-empty 1-D arrays; got {y.shape}, "
            f"{a.shape}, {b.shape}"
        )
    score = METRICS[metric]
    rng = np.random.Generator(np.random.PCG64(seed))
    idx = rng.integers(0, y.size, size=(resamples, y.size))  # (R, n) clip indices
    diffs = np.array([score(y[i], a[i]) - score(y[i], b[i]) for i in idx])  # (R,)
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(diffs, [tail, 100 - tail])
    return Interval(
        estimate=score(y, a) - score(y, b),
        low=float(low),
        high=float(high),
        method=f"paired bootstrap over {y.size} test clips, {resamples} resamples",
        level=level,
    )


def spread_interval(differences: Sequence[float], what: str) -> Interval:
    """95 % Student-t interval of the mean of repeated measurements of one difference (per
    fold, seed or numeric variant: ``what`` names them, e.g. "5 folds").

    Raises:
        ValueError: fewer than two measurements (a single number has no spread).
    """
    d = np.asarray(differences, dtype=float)
    if d.size < 2:
        raise ValueError(f"an interval over {what} needs at least two measurements, got {d.size}")
    mean = float(d.mean())
    t = _T975[d.size - 2] if d.size - 1 <= len(_T975) else 1.96
    half = t * float(d.std(ddof=1)) / math.sqrt(d.size)
    return Interval(mean, mean - half, mean + half, f"t-interval over {what}")


@dataclass(frozen=True)
class Claim:
    """What the report may say about "A vs B" on one metric. ``interval`` is None where the
    difference was measured once and nothing measured its noise: then no difference is
    claimed ("not established"), whatever its size."""

    a: str
    b: str
    metric: str
    interval: Interval | None
    difference: float | None = None  # A - B when measured once (interval None)
    scale: float = 100.0  # metric units -> the points printed (percent)

    @property
    def verdict(self) -> str:
        """``"better"``, ``"worse"``, ``"within noise"`` or ``"not established"``."""
        if self.interval is None:
            return "not established"
        if not self.interval.excludes_zero:
            return "within noise"
        return "better" if self.interval.estimate > 0 else "worse"

    @property
    def text(self) -> str:
        s = self.scale
        if self.interval is None:
            return (
                f"{self.a} vs {self.b}: {self.metric} {s * (self.difference or 0.0):+.1f} points "
                "from one training each; not established (one run has no interval for its "
                "training noise: train more folds or seeds)."
            )
        i = self.interval
        bounds = f"{s * i.low:+.1f} to {s * i.high:+.1f}"
        detail = f"{round(100 * i.level)} % interval {bounds} points, {i.method}"
        if self.verdict == "within noise":
            return (
                f"{self.a} vs {self.b}: {self.metric} {s * i.estimate:+.1f} points, within noise "
                f"({detail})."
            )
        return (
            f"{self.a} is {self.verdict} than {self.b} by {abs(s * i.estimate):.1f} "
            f"{self.metric} points ({detail})."
        )

    def as_dict(self) -> dict[str, object]:
        i = self.interval
        out: dict[str, object] = {"a": self.a, "b": self.b, "metric": self.metric}
        if i is None:
            out |= {"difference": round(self.scale * (self.difference or 0.0), 4), "low": None,
                    "high": None, "level": None, "method": "one run each"}  # fmt: skip
        else:
            out |= {
                "difference": round(self.scale * i.estimate, 4),
                "low": round(self.scale * i.low, 4),
                "high": round(self.scale * i.high, 4),
                "level": i.level,
                "method": i.method,
            }
        return out | {"verdict": self.verdict, "text": self.text}


def compare(a: str, b: str, interval: Interval, metric: str = "UAR") -> Claim:
    """The claim about ``a`` vs ``b`` that ``interval`` (of A - B) supports."""
    return Claim(a, b, metric, interval)


SETTINGS = {
    (True, True): "NR-DFERNet",
    (True, False): "DSF only",
    (False, True): "DCT only",
    (False, False): "baseline",
}
"""Table 1's (DSF, DCT) trainings by name."""

TABLE1_PAIRS = [
    ("DCT only", "baseline"),
    ("DSF only", "baseline"),
    ("NR-DFERNet", "baseline"),
    ("NR-DFERNet", "DCT only"),
    ("NR-DFERNet", "DSF only"),
]
"""The comparisons Table 1 is read for: each component alone, and both together."""


def table1_claims(
    runs: Mapping[tuple[bool, bool], Sequence[Mapping[str, np.ndarray]]],
) -> list[Claim]:
    """UAR claims between Table 1's trainings.

    Each setting is trained once per ablation fold, so the noise of a training is measured only
    across folds: with two or more folds, a Student-t interval of the per-fold differences (each
    fold a separate pair of trainings); with one fold, the difference is reported but not
    claimed. (A paired bootstrap over one fold's test clips would leave the training's own noise
    out, which on the demo moves one training by several UAR points.)

    Args:
        runs: (dsf, dct) -> one record per ablation fold, in the same fold order for every
            setting: ``keys``, ``labels``, ``pred`` (without the filter) of its evaluation.
            Missing settings are skipped.

    Raises:
        ValueError: two settings were evaluated on different clips.
    """
    by_name = {SETTINGS[k]: v for k, v in runs.items()}
    out = []
    for a, b in TABLE1_PAIRS:
        if a not in by_name or b not in by_name:
            continue
        diffs = []
        for ra, rb in zip(by_name[a], by_name[b], strict=True):
            if list(map(str, ra["keys"])) != list(map(str, rb["keys"])):
                raise ValueError(f"Table 1: {a} and {b} were evaluated on different clips")
            diffs.append(uar(ra["labels"], ra["pred"]) - uar(rb["labels"], rb["pred"]))
        out.append(paired_runs(a, b, diffs, "folds"))
    return out


def paired_runs(a: str, b: str, differences: Sequence[float], what: str) -> Claim:
    """The UAR claim from the differences A - B of paired runs (one per fold, seed or numeric
    variant: ``what`` names them): an interval from two runs on, none for a single run."""
    if len(differences) < 2:
        return Claim(a, b, "UAR", None, difference=float(differences[0]))
    return compare(a, b, spread_interval(differences, f"{len(differences)} {what}"))


def filter_claim(folds: Sequence[Mapping[str, np.ndarray]]) -> Claim:
    """UAR claim of the snippet-based filter: the same model with and without it, one
    difference per main fold (each fold its own training), a Student-t interval over them."""
    diffs = [uar(f["labels"], f["pred_sf"]) - uar(f["labels"], f["pred"]) for f in folds]
    return paired_runs("NR-DFERNet with SF", "NR-DFERNet without SF", diffs, "folds")


def claims_markdown(sections: Mapping[str, Sequence[Claim]]) -> str:
    """The claims as a Markdown page: a heading per section, one line per claim."""
    lines = [
        "# What the results support",
        "",
        "Each line compares two results by the interval of their difference (95 %); a difference "
        "is stated only where that interval excludes zero, otherwise it is within noise "
        "(`nrdfer.report.claims`).",
    ]
    for title, claims in sections.items():
        lines += ["", f"## {title}", ""]
        lines += [f"- {c.text}" for c in claims] or ["- (no runs)"]
    return "\n".join(lines) + "\n"
