"""The decision stage alone: Eq. 6 (snippet count), snippet cutting, Eq. 7 (the filter rule)."""

from __future__ import annotations

import math

import pytest
import torch

from nrdfer.labels import CLASSES, NEUTRAL
from nrdfer.models.decision import (
    SUPPRESSION_MARGIN,
    SnippetBasedFilter,
    cut_snippets,
    num_snippets,
    snippet_filter,
)

K = len(CLASSES)
HAPPY = CLASSES.index("Happy")
SAD = CLASSES.index("Sad")


def probs_to_logits(rows: list[dict[int, float]]) -> torch.Tensor:
    """(Ns, K) logits whose softmax is the given probabilities (rest spread evenly)."""
    out = []
    for row in rows:
        rest = (1.0 - sum(row.values())) / (K - len(row))
        out.append([math.log(row.get(k, rest)) for k in range(K)])
    return torch.tensor(out)


@pytest.mark.parametrize(
    ("tokens", "width", "stride", "expected"),
    # Table 2's six settings over the 15 frame tokens of a 16-frame clip
    [(15, 3, 1, 13), (15, 3, 2, 7), (15, 3, 3, 5), (15, 6, 1, 10), (15, 6, 2, 5), (15, 6, 3, 4)],
)
def test_num_snippets_eq6(tokens, width, stride, expected):
    assert num_snippets(tokens, width, stride) == expected


@pytest.mark.parametrize(("width", "stride"), [(0, 1), (16, 1), (3, 0)])
def test_num_snippets_rejects_bad_windows(width, stride):
    with pytest.raises(ValueError, match="snippet width"):
        num_snippets(15, width, stride)


@pytest.mark.parametrize(("n", "width", "stride"), [(15, 3, 2), (15, 6, 3), (7, 3, 1), (10, 4, 3)])
def test_snippets_equal_hand_cut_windows(n, width, stride):
    tokens = torch.randn(2, n, 5)
    snippets = cut_snippets(tokens, width, stride)
    starts = range(0, n - width + 1, stride)
    expected = torch.stack([tokens[:, s : s + width] for s in starts], dim=1)
    assert snippets.shape == (2, num_snippets(n, width, stride), width, 5)
    assert torch.equal(snippets, expected)


def test_paper_windows_at_defaults():
    tokens = torch.arange(15.0).reshape(1, 15, 1)  # frame token i holds the value i
    got = cut_snippets(tokens, 3, 2)[0, :, :, 0].tolist()
    assert got == [
        [0, 1, 2],
        [2, 3, 4],
        [4, 5, 6],
        [6, 7, 8],
        [8, 9, 10],
        [10, 11, 12],
        [12, 13, 14],
    ]


def run_filter(snippet_rows, mu1=0.7, mu2=0.05):
    logits_seq = torch.tensor([[0.1, 0.2, 3.0, 0.0, -0.5, 0.3, 0.4]])  # neutral wins
    snip = probs_to_logits(snippet_rows)[None]  # (1, Ns, K)
    return logits_seq, *snippet_filter(logits_seq, snip, mu1, mu2, NEUTRAL)


def test_one_clear_snippet_among_neutral_ones_fires():
    """Eq. 7, second case: one snippet clearly Happy (0.8), neutral 0.01; the others neutral."""
    neutral_snippet = {NEUTRAL: 0.9}
    logits_seq, logits, fired = run_filter(
        [neutral_snippet, {HAPPY: 0.8, NEUTRAL: 0.01}, neutral_snippet]
    )
    assert fired.tolist() == [True]
    probs = logits.softmax(-1)
    assert torch.isfinite(probs).all() and probs[0, NEUTRAL] == 0
    keep = [k for k in range(K) if k != NEUTRAL]
    assert torch.equal(logits[:, keep], logits_seq[:, keep])
    assert logits.argmax(-1).item() != NEUTRAL


@pytest.mark.parametrize(
    "row",
    [
        {HAPPY: 0.8, NEUTRAL: 0.06},  # confident but neutral probability above mu2
        {HAPPY: 0.6, NEUTRAL: 0.01},  # neutral low but max probability below mu1
        {NEUTRAL: 0.95},  # a clear NEUTRAL snippet is not a non-neutral one
        {HAPPY: 0.45, SAD: 0.45, NEUTRAL: 0.01},  # ambiguous
    ],
)
def test_no_clear_snippet_keeps_logits(row):
    """Eq. 7, first case: for all i, P_MAX < mu1 or P_NU > mu2 -> logits^seq unchanged."""
    logits_seq, logits, fired = run_filter([row, {NEUTRAL: 0.5}])
    assert fired.tolist() == [False]
    assert torch.equal(logits, logits_seq)


def test_thresholds_move_the_decision():
    row = {HAPPY: 0.8, NEUTRAL: 0.06}
    assert run_filter([row])[2].item() is False
    assert run_filter([row], mu2=0.07)[2].item() is True
    assert run_filter([row], mu1=0.85, mu2=0.07)[2].item() is False


def test_filter_is_per_clip():
    logits_seq = torch.randn(3, K)
    snip = torch.stack(
        [
            probs_to_logits([{SAD: 0.9, NEUTRAL: 0.001}]),
            probs_to_logits([{SAD: 0.5}]),
            probs_to_logits([{NEUTRAL: 0.2}]),
        ]
    )  # (3, 1, K)
    logits, fired = snippet_filter(logits_seq, snip, 0.7, 0.05, NEUTRAL)
    assert fired.tolist() == [True, False, False]
    assert torch.equal(logits[1:], logits_seq[1:])
    low = logits_seq[0, torch.arange(K) != NEUTRAL].min()
    assert logits[0, NEUTRAL] == low - SUPPRESSION_MARGIN - low.abs()
    assert logits[0, NEUTRAL] <= logits_seq[0].max() - SUPPRESSION_MARGIN


@pytest.mark.parametrize(("mu1", "mu2"), [(1.0, 0.05), (0.7, 0.0)])
def test_thresholds_that_never_fire_are_identity(mu1, mu2):
    torch.manual_seed(0)
    logits_seq = torch.randn(16, K) * 5
    snip = torch.randn(16, 7, K) * 20  # many very confident snippets
    logits, fired = snippet_filter(logits_seq, snip, mu1, mu2, NEUTRAL)
    assert not fired.any()
    assert torch.equal(logits, logits_seq)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16, torch.float64])
def test_suppressed_softmax_stays_finite(dtype):
    logits_seq = torch.randn(2, K).to(dtype)
    snip = probs_to_logits([{HAPPY: 0.99, NEUTRAL: 0.001}]).expand(2, 1, K).to(dtype)
    logits, fired = snippet_filter(logits_seq, snip, 0.7, 0.05, NEUTRAL)
    assert fired.all() and logits.dtype == dtype
    assert torch.isfinite(logits).all()
    for lower in (dtype, torch.float16, torch.float32):  # also after casts between dtypes
        probs = logits.to(lower).softmax(-1)
        assert torch.isfinite(probs).all() and (probs[:, NEUTRAL] == 0).all()
        assert torch.isfinite(logits.to(lower).log_softmax(-1)).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
@pytest.mark.parametrize("lead", [1.0e4, 1.0e9])
@pytest.mark.parametrize("others", ["zeros", "large negative", "random"])
def test_fired_filter_never_predicts_neutral(dtype, lead, others):
    """Eq. 7 exact in every regime: when the filter fires, neutral is never the prediction and
    its probability is exactly 0, even when neutral leads by 1e4 or 1e9 (+inf in float16)."""
    base = {
        "zeros": torch.zeros(4, K),
        "large negative": torch.full((4, K), -3.0e4) + torch.arange(K),
        "random": torch.randn(4, K, generator=torch.Generator().manual_seed(3)) * 30,
    }[others]
    logits_seq = base.clone()
    logits_seq[:, NEUTRAL] = base.max() + lead
    logits_seq = logits_seq.to(dtype)  # 1e9 is +inf in float16
    assert (logits_seq.argmax(-1) == NEUTRAL).all()
    snip = probs_to_logits([{HAPPY: 0.99, NEUTRAL: 0.001}]).expand(4, 1, K).to(dtype)
    logits, fired = snippet_filter(logits_seq, snip, 0.7, 0.05, NEUTRAL)
    assert fired.all() and logits.dtype == dtype
    assert (logits.argmax(-1) != NEUTRAL).all()
    probs = logits.float().softmax(-1)
    assert (probs[:, NEUTRAL] == 0).all() and torch.isfinite(probs).all()
    keep = torch.arange(K) != NEUTRAL
    assert torch.equal(logits[:, keep], logits_seq[:, keep])  # the other classes untouched


def test_suppression_changes_no_probability_in_the_trained_regime():
    """Logits of the size trained models give: the probabilities and predictions after the
    filter equal those of dropping neutral entirely (what any exact suppression gives)."""
    gen = torch.Generator().manual_seed(11)
    logits_seq = torch.randn(256, K, generator=gen) * 8
    snip = probs_to_logits([{SAD: 0.95, NEUTRAL: 0.001}]).expand(256, 1, K)
    logits, fired = snippet_filter(logits_seq, snip, 0.7, 0.05, NEUTRAL)
    assert fired.all()
    keep = torch.arange(K) != NEUTRAL
    dropped = logits_seq[:, keep].softmax(-1)
    assert torch.equal(logits.softmax(-1)[:, keep], dropped)
    expected = torch.arange(K)[keep][logits_seq[:, keep].argmax(-1)]
    assert torch.equal(logits.argmax(-1), expected)


def test_module_matches_function_and_validates():
    filt = SnippetBasedFilter(width=3, stride=2, mu1=0.7, mu2=0.05, neutral_index=NEUTRAL)
    tokens = torch.randn(2, 15, 4)
    assert torch.equal(filt.cut(tokens), cut_snippets(tokens, 3, 2))
    logits_seq, snip = torch.randn(2, K), torch.randn(2, 7, K) * 10
    a, fa = filt(logits_seq, snip)
    b, fb = snippet_filter(logits_seq, snip, 0.7, 0.05, NEUTRAL)
    assert torch.equal(a, b) and torch.equal(fa, fb)
    assert list(filt.parameters()) == []
    with pytest.raises(ValueError, match="probabilities"):
        SnippetBasedFilter(3, 2, 1.5, 0.05, NEUTRAL)
