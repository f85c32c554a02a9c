"""Which table cell each result file of the report belongs to, read from what the file records
(fold, model switches, M/N, snippet L/S, baseline name), never from its name or folder; a cell
with no file is "–", a cell with two files per fold averages both, and a file whose setting
cannot be read is an error naming it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nrdfer.errors import UserError
from nrdfer.report import tables
from nrdfer.report.aggregate import group, metrics_in
from nrdfer.report.build import _table1_runs, load_features
from nrdfer.report.names import PAPER_NAMES
from tests.report.helpers import evaluation, write_result


def rows_by(table: tables.Table, *key_columns: str) -> dict:
    idx = [table.columns.index(c) for c in key_columns]
    return {tuple(row[i] for i in idx): dict(zip(table.columns, row, strict=True))
            for row in table.rows}  # fmt: skip


def test_table1_cells_come_from_the_recorded_switches(tmp_path):
    # folders named against their content: the report must not read them
    write_result(
        tmp_path / "dsf" / "f1" / "evaluation.json",
        **evaluation(0.40, 0.60, sf=0.02, model_dsf=False, model_dct=False, fold=1),
    )
    write_result(
        tmp_path / "dsf" / "f2" / "evaluation.json",
        **evaluation(0.44, 0.62, sf=0.02, model_dsf=False, model_dct=False, fold=2),
    )
    write_result(
        tmp_path / "none" / "f1" / "evaluation.json",
        **evaluation(0.50, 0.70, sf=0.01, model_dsf=True, model_dct=True, fold=1),
    )
    write_result(tmp_path / "none" / "f1" / "other.json",  # not an evaluation file: ignored
                 **evaluation(0.99, 0.99, model_dsf=True, model_dct=True, fold=1))  # fmt: skip
    table = tables.table1(metrics_in(tmp_path, "evaluation.json"))
    rows = rows_by(table, "setting")
    assert [r["setting"] for r in rows.values()] == list("abcdefgh")
    assert rows[("a",)]["UAR"] == pytest.approx(42.0)
    assert rows[("a",)]["WAR"] == pytest.approx(61.0)
    assert rows[("a",)]["folds"] == 2
    assert rows[("b",)]["UAR"] == pytest.approx(44.0)  # same runs, with the filter
    assert rows[("h",)]["UAR"] == pytest.approx(51.0)
    assert rows[("h",)]["folds"] == 1
    for missing in "cdef":  # DSF xor DCT: not run
        assert rows[(missing,)]["UAR"] is None and rows[(missing,)]["folds"] is None
        assert rows[(missing,)]["paper UAR"] is not None


def test_table2_cells_come_from_the_recorded_snippet_width_and_stride(tmp_path):
    for fold, sf_uar in ((1, 0.50), (2, 0.54)):
        write_result(tmp_path / f"x{fold}" / "L6.json", fold=fold, model_snippet_len=3,
                     model_snippet_stride=2, sf_uar=sf_uar, sf_war=0.7)  # fmt: skip
    write_result(tmp_path / "L3S2.json", fold=1, model_snippet_len=4, model_snippet_stride=2,
                 sf_uar=0.3, sf_war=0.4)  # fmt: skip
    table = tables.table2(metrics_in(tmp_path))
    rows = rows_by(table, "width L", "stride S")
    assert list(rows) == [(3, 1), (3, 2), (3, 3), (4, 2), (6, 1), (6, 2), (6, 3)]
    assert rows[(3, 2)]["UAR"] == pytest.approx(52.0)
    assert rows[(3, 2)]["paper UAR"] == 54.21
    assert rows[(3, 2)]["folds"] == 2
    # a setting the paper does not have gets its own row with no paper numbers
    assert rows[(4, 2)]["UAR"] == pytest.approx(30.0)
    assert rows[(4, 2)]["paper UAR"] is None
    assert rows[(6, 3)]["UAR"] is None and rows[(6, 3)]["paper WAR"] == 68.02


def test_table3_cells_come_from_the_recorded_layers(tmp_path):
    write_result(tmp_path / "M1N4" / "evaluation.json", model_M=2, model_N=6, fold=1,
                 sf_uar=0.51, sf_war=0.66)  # fmt: skip
    write_result(tmp_path / "M2N6" / "evaluation.json", model_M=1, model_N=4, fold=1,
                 sf_uar=0.49, sf_war=0.64)  # fmt: skip
    table = tables.table3(metrics_in(tmp_path, "evaluation.json"), {(2, 6): 7.5})
    rows = rows_by(table, "M", "N")
    assert list(rows) == [(1, 4), (2, 4), (3, 4), (1, 6), (2, 6), (3, 6)]  # by N, then M
    assert rows[(2, 6)]["UAR"] == pytest.approx(51.0)
    assert rows[(2, 6)]["GMACs"] == 7.5
    assert rows[(2, 6)]["paper GFLOPs"] == 7.44
    assert rows[(1, 4)]["WAR"] == pytest.approx(64.0)
    assert rows[(1, 4)]["GMACs"] is None
    assert rows[(3, 4)]["UAR"] is None


def test_baselines_are_grouped_by_the_recorded_model_name(tmp_path):
    for fold, (name, uar) in enumerate(
        (("resnet18_lstm", 0.5), ("c3d", 0.4), ("resnet18_lstm", 0.6), ("my_net", 0.3))
    ):
        write_result(tmp_path / f"c3d_{fold}" / "evaluation.json",
                     **evaluation(uar, uar + 0.1, model_name=name, fold=fold + 1))  # fmt: skip
    baselines = group(metrics_in(tmp_path, "evaluation.json"), lambda r: str(r["model_name"]))
    named = {PAPER_NAMES.get(str(k), str(k)): v for k, v in baselines.items()}
    assert set(named) == {"ResNet18+LSTM", "C3D", "my_net"}
    assert named["ResNet18+LSTM"]["folds"] == 2
    assert named["ResNet18+LSTM"]["uar"] == pytest.approx(0.55)
    table = tables.table5(named, {"ResNet18+LSTM": 7.0})
    ours = {r[0]: dict(zip(table.columns, r, strict=True)) for r in table.rows
            if r[1] == "ours (DS)"}  # fmt: skip
    assert ours["ResNet18+LSTM"]["UAR"] == pytest.approx(55.0)
    assert ours["ResNet18+LSTM"]["GMACs"] == 7.0
    assert ours["my_net"]["WAR"] == pytest.approx(40.0)  # not in the paper: a row of its own
    assert "C3D" in ours  # not a Table 5 row name (the paper's is "C3D (TI)"): its own row


def test_two_files_for_one_fold_of_a_cell_are_both_averaged(tmp_path):
    """A leftover evaluation of the same setting and fold is not detected: the cell averages
    both files and its ``folds`` column counts files, not distinct folds."""
    for name, uar in (("a", 0.40), ("b", 0.60)):
        write_result(tmp_path / name / "evaluation.json",
                     **evaluation(uar, uar, model_dsf=True, model_dct=True, fold=1))  # fmt: skip
    rows = rows_by(tables.table1(metrics_in(tmp_path, "evaluation.json")), "setting")
    assert rows[("g",)]["UAR"] == pytest.approx(50.0)
    assert rows[("g",)]["folds"] == 2


def test_no_result_files_leave_every_cell_empty(tmp_path):
    assert metrics_in(tmp_path / "not_run", "evaluation.json") == []
    table = tables.table3([], {})
    assert all(r[2] is None and r[8] is None for r in table.rows)
    assert "| 2 | 4 | – | – | – | 54.21 | 68.19 | 6.33 | – |" in table.markdown()


@pytest.mark.parametrize(
    ("settings", "shown"),
    [({"model_N": 4}, "'model_M'"), ({"model_M": "two", "model_N": 4}, "'two'"),
     ({"model_M": None, "model_N": 4}, "NoneType")],
)  # fmt: skip
def test_a_file_without_a_readable_setting_is_an_error_naming_it(tmp_path, settings, shown):
    write_result(tmp_path / "ok" / "evaluation.json", model_M=2, model_N=4, sf_uar=0.5)
    bad = write_result(tmp_path / "odd" / "evaluation.json", **settings, sf_uar=0.5)
    with pytest.raises(UserError) as err:
        tables.table3(metrics_in(tmp_path, "evaluation.json"), {})
    message = str(err.value)
    assert message.startswith(f"{bad}: cannot tell which table cell it belongs to")
    assert shown in message and "\n" not in message and message.endswith("(dvc repro)")


def features(path, meta: dict | None, labels: list[int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"labels": np.array(labels), "pred": np.array(labels)}
    if meta is not None:
        arrays["meta"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)


def test_features_are_paired_by_recorded_setting_and_common_folds(tmp_path):
    """Table 1's claims compare trainings over the folds every trained setting has, each
    features file placed by the settings in its ``meta``."""
    for n, (dsf, dct, fold) in enumerate(
        [(True, True, 2), (True, True, 1), (False, False, 1), (False, False, 3), (True, True, 3)]
    ):
        meta = {"model_dsf": dsf, "model_dct": dct, "fold": fold}
        features(tmp_path / f"r{n}" / "features.npz", meta, [n, fold])
    features(tmp_path / "old" / "features.npz", None, [9])  # no settings: in no cell
    loaded = load_features(tmp_path)
    assert len(loaded) == 6 and loaded[0]["meta"] == {}  # sorted by path: "old" first
    assert loaded[1]["labels"].tolist() == [0, 2]
    runs = _table1_runs(loaded)
    assert set(runs) == {(True, True), (False, False)}
    assert [r["labels"].tolist() for r in runs[(True, True)]] == [[1, 1], [4, 3]]
    assert [r["labels"].tolist() for r in runs[(False, False)]] == [[2, 1], [3, 3]]
    assert _table1_runs(loaded[:1]) == {}
