"""The interval-based claim function: a difference is stated only when its interval excludes
zero; otherwise the claim says "within noise"."""

import numpy as np
import pytest

from nrdfer.report.claims import compare, paired_bootstrap, spread_interval, uar, war


def test_uar_and_war_by_hand():
    y = np.array([0, 0, 0, 1])
    p = np.array([0, 0, 1, 1])
    assert war(y, p) == pytest.approx(0.75)
    assert uar(y, p) == pytest.approx((2 / 3 + 1) / 2)


def test_a_large_paired_difference_is_stated():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 7, 400)
    good = y.copy()
    bad = np.where(rng.random(400) < 0.5, (y + 1) % 7, y)  # half the clips wrong
    claim = compare("A", "B", paired_bootstrap(y, good, bad))
    assert claim.verdict == "better"
    assert claim.interval.low > 0
    assert claim.text.startswith("A is better than B by ")
    assert compare("B", "A", paired_bootstrap(y, bad, good)).verdict == "worse"


def test_a_small_difference_on_few_clips_is_within_noise():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 7, 80)
    a = np.where(rng.random(80) < 0.2, (y + 1) % 7, y)
    b = a.copy()
    b[np.flatnonzero(a == y)[:2]] = (y[np.flatnonzero(a == y)[:2]] + 3) % 7  # B: 2 clips worse
    interval = paired_bootstrap(y, a, b, "WAR")
    assert interval.estimate == pytest.approx(2 / 80)
    claim = compare("A", "B", interval, "WAR")
    assert claim.verdict == "within noise"
    assert "within noise" in claim.text
    assert claim.interval.low <= 0 <= claim.interval.high


def test_identical_predictions_differ_by_exactly_zero():
    y = np.arange(50) % 7
    interval = paired_bootstrap(y, y, y)
    assert (interval.estimate, interval.low, interval.high) == (0.0, 0.0, 0.0)
    assert compare("A", "B", interval).verdict == "within noise"


def test_bootstrap_is_reproducible_and_seeded():
    rng = np.random.default_rng(3)
    y, a, b = rng.integers(0, 7, (3, 120))
    assert paired_bootstrap(y, a, b, seed=5) == paired_bootstrap(y, a, b, seed=5)
    assert paired_bootstrap(y, a, b, seed=5) != paired_bootstrap(y, a, b, seed=6)


def test_spread_interval_over_folds():
    consistent = spread_interval([2.0, 2.5, 1.8, 2.2, 2.1], "5 folds")
    assert consistent.excludes_zero and consistent.low > 0
    noisy = spread_interval([6.0, -5.0, 4.0, -3.0, 1.0], "5 folds")
    assert not noisy.excludes_zero
    assert compare("A", "B", noisy).verdict == "within noise"
    # t quantile for 4 degrees of freedom: mean 1 +- 2.776 * sd / sqrt(5)
    d = np.array([6.0, -5.0, 4.0, -3.0, 1.0])
    assert noisy.high - noisy.estimate == pytest.approx(2.776 * d.std(ddof=1) / np.sqrt(5))


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="at least two"):
        spread_interval([1.0], "1 fold")
    with pytest.raises(ValueError, match="equal"):
        paired_bootstrap([0, 1], [0, 1, 2], [0, 1])
    with pytest.raises(ValueError, match="equal"):
        paired_bootstrap([], [], [])


def _run(keys, labels, pred):
    return {"keys": np.asarray(keys), "labels": np.asarray(labels), "pred": np.asarray(pred)}


def test_table1_claims_need_more_than_one_training_per_setting():
    from nrdfer.report.claims import table1_claims

    rng = np.random.default_rng(4)
    keys = [f"c{i}" for i in range(140)]
    folds_good, folds_bad, folds_mid = [], [], []
    for mid_error in (0.02, 0.25, 0.06):  # three ablation folds; the full model errs 10 %
        y = rng.integers(0, 7, 140)
        folds_good.append(_run(keys, y, np.where(rng.random(140) < 0.1, (y + 1) % 7, y)))
        folds_bad.append(_run(keys, y, np.where(rng.random(140) < 0.6, (y + 2) % 7, y)))
        folds_mid.append(_run(keys, y, np.where(rng.random(140) < mid_error, (y + 3) % 7, y)))
    runs = {(True, True): folds_good, (False, False): folds_bad, (True, False): folds_mid}
    got = {(c.a, c.b): c for c in table1_claims(runs)}
    assert set(got) == {("DSF only", "baseline"), ("NR-DFERNet", "baseline"),
                        ("NR-DFERNet", "DSF only")}  # fmt: skip
    assert got[("NR-DFERNet", "baseline")].verdict == "better"
    assert got[("NR-DFERNet", "DSF only")].verdict == "within noise"
    assert "3 folds" in got[("NR-DFERNet", "baseline")].text
    # one fold: a large difference is reported, not claimed
    one = table1_claims({k: v[:1] for k, v in runs.items()})
    assert {c.verdict for c in one} == {"not established"}
    big = next(c for c in one if (c.a, c.b) == ("NR-DFERNet", "baseline"))
    assert big.difference > 0.3 and "not established" in big.text
    assert big.as_dict()["low"] is None
    runs[(False, False)] = [_run(keys[::-1], f["labels"], f["pred"]) for f in folds_bad]
    with pytest.raises(ValueError, match="different clips"):
        table1_claims(runs)


def test_filter_claim_over_folds_and_markdown():
    from nrdfer.report.claims import claims_markdown, filter_claim

    y = np.arange(70) % 7
    wrong = (y + 1) % 7
    folds = [{"labels": y, "pred_sf": y, "pred": np.where(np.arange(70) < k, wrong, y)}
             for k in (2, 9, 4, 15, 1)]  # fmt: skip
    claim = filter_claim(folds)
    assert claim.a == "NR-DFERNet with SF" and "5 folds" in claim.interval.method
    assert claim.verdict in {"better", "within noise"}
    same = filter_claim([{"labels": y, "pred_sf": y, "pred": y}] * 3)
    assert same.verdict == "within noise" and same.interval.estimate == 0
    page = claims_markdown({"SF": [claim], "empty": []})
    assert "## SF" in page and claim.text in page and "(no runs)" in page
