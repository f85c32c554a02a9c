"""stages/evaluate.py's arguments: for the noise benchmark ``--models`` (every run folder of a
folder, one process) instead of ``--model`` and ``--record KEY=VALUE`` fields; for Table 2
``--snippet-grid`` (every L, S of params.yaml's ablation grid, one process)."""

from __future__ import annotations

import pytest

from nrdfer.errors import UserError
from tests.conftest import ROOT, load_stage_module

evaluate = load_stage_module("stages/evaluate.py")
BASE = ["--params", str(ROOT / "params.yaml"), "--shards", "s", "--fold", "1", "--details", "d"]


def test_records_are_typed_fields():
    records = evaluate._records(["noise=n1", "level=0.25", "seed=3", "level2=1e-3", "tag=a=b"])
    assert records == {"noise": "n1", "level": 0.25, "seed": 3, "level2": 0.001, "tag": "a=b"}
    with pytest.raises(UserError, match="KEY=VALUE"):
        evaluate._records(["level"])


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "either --model"),
        (["--model", "m.pt", "--models", "runs"], "either --model"),
        (["--models", "runs", "--metrics", "m.json"], "drop --metrics"),
        (["--models", "runs", "--snippet-len", "3"], "drop --snippet-len"),
        (["--model", "m.pt", "--snippet-grid", "--metrics", "m.json"], "drop --metrics"),
        (["--model", "m.pt", "--snippet-grid", "--snippet-len", "3"], "drop --snippet-len"),
    ],
)
def test_one_model_or_a_folder_of_runs(extra, message):
    with pytest.raises(UserError, match=message):
        evaluate.main(BASE + extra)


def test_a_folder_without_runs_is_named(tmp_path):
    with pytest.raises(UserError, match="no run folder with a model file"):
        evaluate.main(BASE + ["--models", str(tmp_path)])
