"""nrdfer.report.aggregate on hand-made fold files: which file is which fold (by what it
records), 5-fold mean ± population std, and one error naming a missing or repeated fold."""

from __future__ import annotations

import math

import pytest

from nrdfer.errors import UserError
from nrdfer.report.aggregate import (
    group,
    headline_summary,
    main_fold_details,
    mean_std,
    read_metrics,
    summarise_folds,
)
from tests.report.helpers import evaluation, write_result

UARS = (0.50, 0.52, 0.54, 0.56, 0.58)


def five_folds(root, folds=(1, 2, 3, 4, 5), uars=UARS):
    """Fold evaluations under folder names that say nothing about the fold."""
    for i, (fold, uar) in enumerate(zip(folds, uars, strict=True)):
        write_result(
            root / f"run{(i * 3) % 7}" / "evaluation.json",
            **evaluation(uar, uar + 0.1, sf=0.01, fold=fold, acc_Happy=0.8 + i / 100),
        )


def test_folds_are_found_by_recorded_fold_and_averaged(tmp_path):
    five_folds(tmp_path)
    write_result(tmp_path / "extra" / "evaluation.json", **evaluation(0.9, 0.9, fold=6))
    write_result(tmp_path / "run1" / "notes.json", fold=1, uar=0.0)  # not an evaluation file
    rows = main_fold_details(tmp_path, [1, 2, 3, 4, 5])
    assert sorted(r["fold"] for r in rows) == [1, 2, 3, 4, 5]
    summary = summarise_folds(rows)
    assert summary["folds"] == 5
    assert summary["fold_list"] == "1,2,3,4,5"
    assert summary["uar"] == pytest.approx(0.54)
    assert summary["uar_std"] == pytest.approx(math.sqrt(0.0008))  # population std
    assert summary["sf_war"] == pytest.approx(0.65)
    assert summary["acc_Happy"] == pytest.approx(0.82)
    assert "fold" not in summary and "fold_std" not in summary
    assert headline_summary(summary) == pytest.approx(
        {"uar": 0.54, "uar_std": math.sqrt(0.0008), "war": 0.64, "war_std": math.sqrt(0.0008),
         "sf_uar": 0.55, "sf_uar_std": math.sqrt(0.0008), "sf_war": 0.65,
         "sf_war_std": math.sqrt(0.0008)}
    )  # fmt: skip


def test_a_missing_fold_is_named_in_one_error(tmp_path):
    five_folds(tmp_path, folds=(1, 2, 4, 5), uars=UARS[:4])
    with pytest.raises(UserError) as err:
        main_fold_details(tmp_path, [1, 2, 3, 4, 5])
    message = str(err.value)
    assert "\n" not in message
    assert str(tmp_path) in message
    assert "folds.main ['1', '2', '3', '4', '5']" in message
    assert "found folds ['1', '2', '4', '5']" in message
    assert "dvc repro" in message


def test_a_fold_evaluated_twice_is_an_error(tmp_path):
    five_folds(tmp_path)
    write_result(tmp_path / "again" / "evaluation.json", **evaluation(0.1, 0.1, fold=3))
    with pytest.raises(UserError, match=r"found folds \['1', '2', '3', '3', '4', '5'\]"):
        main_fold_details(tmp_path, [1, 2, 3, 4, 5], key="folds.ablation")
    with pytest.raises(UserError, match="repeat a fold"):
        summarise_folds([{"fold": 1, "uar": 0.5}, {"fold": 1, "uar": 0.6}])


def test_no_directory_means_every_fold_missing(tmp_path):
    with pytest.raises(UserError, match=r"found folds \[\]"):
        main_fold_details(tmp_path / "absent", [1])


def test_mean_std_skips_missing_none_bool_and_unaveraged_keys():
    rows = [
        {"uar": 0.4, "acc_Fear": None, "best_on_test_uar": 0.5, "clips": 10, "sf_x": True},
        {"uar": 0.6, "acc_Fear": 0.2, "war": 0.7},
    ]
    out = mean_std(rows)
    assert out == pytest.approx(
        {"folds": 2, "uar": 0.5, "uar_std": 0.1, "acc_Fear": 0.2, "acc_Fear_std": 0.0,
         "best_on_test_uar": 0.5, "best_on_test_uar_std": 0.0, "war": 0.7, "war_std": 0.0}
    )  # fmt: skip


def test_the_best_on_test_note_is_carried_into_the_summary():
    rows = [{"fold": 2, "uar": 0.5}, {"fold": 1, "uar": 0.7, "best_on_test_note": "optimistic"}]
    out = summarise_folds(rows)
    assert out["best_on_test_note"] == "optimistic"
    assert out["fold_list"] == "1,2"
    assert "best_on_test_note" not in summarise_folds(rows[:1])


def test_group_averages_each_key_over_its_rows():
    rows = [{"m": "a", "uar": 0.2}, {"m": "b", "uar": 0.9}, {"m": "a", "uar": 0.4}]
    out = group(rows, lambda r: r["m"])
    assert out["a"] == pytest.approx({"folds": 2, "uar": 0.3, "uar_std": 0.1})
    assert out["b"]["folds"] == 1


def test_unreadable_result_files_are_errors_naming_them(tmp_path):
    absent = r"absent\.json: cannot read the metrics file \(not found\); re-run"
    with pytest.raises(UserError, match=absent):
        read_metrics([tmp_path / "absent.json"])
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(
        UserError, match=r"bad\.json: cannot read the metrics file \(not valid JSON"
    ):
        read_metrics([bad])
    listed = write_result(tmp_path / "list.json")
    listed.write_text("[0.5, 0.6]")
    with pytest.raises(UserError, match=r"list\.json: expected a flat JSON object"):
        read_metrics([listed])
    good = write_result(tmp_path / "good.json", uar=0.5)
    assert read_metrics([good]) == [{"uar": 0.5, "_path": str(good)}]
