"""The report's tables from a small set of results: numbers as percentages with two decimals
(Markdown) or four (CSV), the paper's numbers beside ours, "–" where nothing was run, and the
best-on-test numbers only in the columns labelled so."""

from __future__ import annotations

import pytest

from nrdfer.labels import DFEW, FERV39K
from nrdfer.report import paper, tables
from nrdfer.report.aggregate import mean_std


def as_dicts(table: tables.Table) -> list[dict]:
    return [dict(zip(table.columns, row, strict=True)) for row in table.rows]


def test_markdown_and_csv_format_each_kind_of_value(tmp_path):
    rows = [["x", 12.3456, None, True], ["y", 1.0, 3, False]]
    table = tables.Table("t", "T", ["a", "b", "c", "d"], rows, ["a note"])
    assert table.markdown() == (
        "# T\n\n| a | b | c | d |\n|---|---|---|---|\n| x | 12.35 | – | ✓ |\n"
        "| y | 1.00 | 3 |  |\n\n- a note\n"
    )
    assert table.csv() == "a,b,c,d\nx,12.3456,,True\ny,1.0,3,False\n"
    table.rows[0][1] = 12.345678
    assert table.csv().splitlines()[1] == "x,12.3457,,True"
    table.write(tmp_path / "out")
    assert (tmp_path / "out" / "t.md").read_text() == table.markdown()
    assert (tmp_path / "out" / "t.csv").read_text() == table.csv()


def test_table5_puts_our_row_under_the_papers_with_the_filter_and_best_on_test():
    fold = {f"sf_acc_{c}": 0.1 * (i + 1) for i, c in enumerate(DFEW.classes)}
    fold.update(uar=0.40, war=0.50, sf_uar=0.45, sf_war=0.55, best_on_test_sf_uar=0.47,
                best_on_test_sf_war=0.57, best_on_test_uar=0.01)  # fmt: skip
    summary = mean_std([fold, fold])
    table = tables.table5({"NR-DFERNet": summary, "NR-DFERNet*": None}, {"NR-DFERNet": 6.5})
    rows = as_dicts(table)
    assert len(rows) == len(paper.TABLE5) + 1  # one row of ours; NR-DFERNet* not run
    i = next(
        i for i, r in enumerate(rows) if r["method"] == "NR-DFERNet" and r["source"] == "ours (DS)"
    )
    paper_row, ours = rows[i - 1], rows[i]
    assert paper_row["source"] == "paper (DS)" and paper_row["method"] == "NR-DFERNet"
    assert (paper_row["UAR"], paper_row["WAR"], paper_row["GMACs"]) == (54.21, 68.19, 6.33)
    assert paper_row["best-on-test UAR (optimistic)"] is None
    assert ours["UAR"] == pytest.approx(45.0) and ours["WAR"] == pytest.approx(55.0)
    assert ours["Happy"] == pytest.approx(10.0) and ours["Fear"] == pytest.approx(70.0)
    assert ours["best-on-test UAR (optimistic)"] == pytest.approx(47.0)
    assert ours["best-on-test WAR (optimistic)"] == pytest.approx(57.0)
    assert ours["GMACs"] == 6.5 and ours["folds"] == 2
    line = table.markdown().splitlines()[4 + i]
    assert line == ("| NR-DFERNet | ours (DS) | 10.00 | 20.00 | 30.00 | 40.00 | 50.00 | 60.00 "
                    "| 70.00 | 45.00 | 55.00 | 6.50 | 2 | 47.00 | 57.00 |")  # fmt: skip
    assert not any(r["source"] == "ours (DS)" and r["method"] == "NR-DFERNet*" for r in rows)


def test_table4_reads_the_filter_for_ours_and_plain_numbers_for_baselines():
    afew = {"uar": 0.1, "war": 0.2, "sf_uar": 0.45, "sf_war": 0.52, "folds": 1,
            "best_on_test_sf_uar": 0.48, "best_on_test_sf_war": 0.55}  # fmt: skip
    c3d = {"uar": 0.40, "war": 0.44, "sf_uar": 0.9, "folds": 1}
    rows = {r["method"]: r for r in as_dicts(tables.table4(afew, {"C3D": c3d}, {"C3D": 38.0}))}
    assert list(rows) == list(paper.TABLE4)
    ours = rows["NR-DFERNet"]
    assert (ours["UAR"], ours["WAR"]) == (pytest.approx(45.0), pytest.approx(52.0))
    assert ours["paper UAR"] == 48.37 and ours["paper WAR"] == 53.54
    assert ours["best-on-test UAR (optimistic)"] == pytest.approx(48.0)
    assert ours["best-on-test WAR (optimistic)"] == pytest.approx(55.0)
    assert rows["C3D"]["UAR"] == pytest.approx(40.0) and rows["C3D"]["GMACs"] == 38.0
    assert rows["C3D"]["best-on-test UAR (optimistic)"] is None  # grid runs have none
    assert rows["I3D-RGB"]["UAR"] is None and rows["I3D-RGB"]["paper UAR"] == 41.86
    assert rows["EmotiW-2019 Baseline"]["paper UAR"] is None


def test_table4_without_our_afew_run_keeps_the_paper_numbers():
    rows = {r["method"]: r for r in as_dicts(tables.table4(None, {}, {}))}
    assert rows["NR-DFERNet"]["UAR"] is None and rows["NR-DFERNet"]["paper WAR"] == 53.54


@pytest.mark.parametrize("as_summary", [False, True])
def test_the_ferv39k_table_takes_one_evaluation_or_a_fold_summary(as_summary):
    details = {f"sf_acc_{c}": 0.5 for c in FERV39K.classes}
    details.update(sf_uar=0.35, sf_war=0.47, uar=0.0, fold=1)
    ours = mean_std([details]) if as_summary else details
    table = tables.ferv39k_table(ours)
    rows = as_dicts(table)
    assert table.name == "ferv39k"
    assert [r["method"] for r in rows] == [*paper.FERV39K, "NR-DFERNet"]
    assert [(r["UAR"], r["WAR"]) for r in rows[:-1]] == [v[:2] for v in paper.FERV39K.values()]
    assert rows[-1]["source"] == "ours (DS)"
    assert (rows[-1]["UAR"], rows[-1]["WAR"]) == (pytest.approx(35.0), pytest.approx(47.0))
    assert rows[-1]["Happy"] == pytest.approx(50.0) and rows[-1]["folds"] == 1
    assert rows[-1]["best-on-test UAR (optimistic)"] is None
    assert any("33.99 / 45.97" in n for n in table.notes)


def test_the_mafw_table_without_a_run_has_only_published_numbers():
    rows = as_dicts(tables.mafw_table(None))
    assert [r["method"] for r in rows] == ["Former-DFER", "NR-DFERNet"]
    assert rows[0]["UAR"] == 31.16 and rows[0]["source"] == "published"
    assert rows[1]["UAR"] is None and rows[1]["folds"] is None
