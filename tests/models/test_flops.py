"""Parameter and MAC counts: the paper's Table 3 figures, the true count, the counting rules."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nrdfer.cli import main
from nrdfer.models import build_model
from nrdfer.models.flops import count_macs, count_params, model_cost
from tests.conftest import ROOT, paper_overrides

TABLE3 = {(1, 4): 6.20, (2, 4): 6.33, (3, 4): 6.46, (1, 6): 7.31, (2, 6): 7.44, (3, 6): 7.57}


@pytest.fixture(scope="module")
def costs(paper_params):
    return {mn: model_cost(dataclasses.replace(paper_params, M=mn[0], N=mn[1])) for mn in TABLE3}


@pytest.mark.parametrize("mn", list(TABLE3))
def test_paper_convention_matches_table3(costs, mn):
    got = costs[mn].macs_paper / 1e9
    assert abs(got - TABLE3[mn]) / TABLE3[mn] < 0.005, (mn, got)


def test_true_macs_and_params_at_default(costs):
    cost = costs[(2, 4)]
    assert abs(cost.macs / 1e9 - 5.09) / 5.09 < 0.005
    assert abs(cost.params / 1e6 - 31.3) / 31.3 < 0.01
    assert abs(costs[(1, 4)].params / 1e6 - 31.1) / 31.1 < 0.01
    assert abs(costs[(2, 6)].params / 1e6 - 44.0) / 44.0 < 0.01
    assert cost.macs < cost.macs_paper


def test_layer_increments(costs):
    """+0.126 G per spatial layer, +0.555 G per temporal layer (architecture.md)."""
    spatial = (costs[(3, 4)].macs_paper - costs[(1, 4)].macs_paper) / 2e9
    temporal = (costs[(2, 6)].macs_paper - costs[(2, 4)].macs_paper) / 2e9
    assert spatial == pytest.approx(0.126, abs=0.001)
    assert temporal == pytest.approx(0.555, abs=0.001)


def test_snippets_make_44_temporal_tokens(paper_params):
    """Temporal layer cost with the filter on / off = (16 + 7·4) / 16 tokens."""

    def per_layer(sf: bool) -> float:
        a, b = (model_cost(dataclasses.replace(paper_params, sf=sf, N=n)) for n in (4, 5))
        return b.macs_paper - a.macs_paper

    assert per_layer(True) / per_layer(False) == pytest.approx(44 / 16, rel=1e-3)


def test_meta_count_equals_real_count(tiny):
    p = tiny()
    real = model_cost(p, device="cpu")
    assert real == model_cost(p)
    torch.manual_seed(0)
    model = build_model(p)
    assert real.params == sum(q.numel() for q in model.parameters())


class Twice(nn.Module):
    paper_call_count = 2

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        return self.fc(x)


class Toy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 5, 3, padding=1)  # with bias: thop counts +1 per output
        self.bn = nn.BatchNorm2d(5)
        self.twice = Twice()
        self.fc = nn.Linear(8, 4, bias=False)

    def forward(self, x):  # x (1, 3, 4, 4)
        y = self.bn(self.conv(x))  # (1, 5, 4, 4)
        q = y.reshape(1, 5, 16)[..., :8]  # (1, 5, 8)
        att = F.scaled_dot_product_attention(q, q, q)  # functional: paper convention misses it
        return self.twice(att) + self.fc(att)


def test_counting_rules_on_a_toy_model():
    macs = count_macs(Toy(), torch.zeros(1, 3, 4, 4))
    conv = 5 * 16 * (3 * 9 + 1)
    bn = 2 * 5 * 16
    linear = 8 * 5 * 4
    assert macs.paper == conv + bn + 2 * linear + linear
    attention = 2 * 5 * 5 * 8  # q·kᵀ and attn·v
    assert macs.true == 5 * 16 * 3 * 9 + attention + 2 * linear
    assert count_params(Toy()) == 5 * 28 + 10 + 2 * 36 - 4


def test_flops_command_json(capsys):
    paper = [a for s in paper_overrides("model") for a in ("-S", s)]
    args = ["flops", "--params", str(ROOT / "params.yaml"), *paper, "-S", "model.M=3", "--json"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"params", "gmacs", "gmacs_paper"}
    assert out["gmacs_paper"] == pytest.approx(6.46, rel=0.005)


def test_flops_command_text_and_errors(capsys, tmp_path):
    paper = [a for s in paper_overrides("model") for a in ("-S", s)]
    assert main(["flops", "--params", str(ROOT / "params.yaml"), *paper]) == 0
    text = capsys.readouterr().out
    assert "31.32 M" in text and "6.330" in text
    assert main(["flops", "--params", str(tmp_path / "missing.yaml")]) == 2
    assert "params file not found" in capsys.readouterr().err
    assert main(["flops", "--params", str(ROOT / "params.yaml"), "--model", "nope"]) == 2
    assert "unknown model 'nope'" in capsys.readouterr().err
